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


def _print_version(value: bool) -> None:
    if value:
        from dlora_sim import __version__

        typer.echo(f"dlora-sim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Plan cloud-edge fine-tuning of language models with DLoRA and Kill-and-Revive."""
