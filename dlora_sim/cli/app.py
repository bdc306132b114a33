"""The typer application object that every command module attaches to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="dlora-sim",
    help=(
        "Plan cloud-edge fine-tuning of language models with DLoRA and Kill-and-Revive: "
        "profile real training, price it with the cost model, simulate fleets, sweep and plot."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
