"""The ``dlora-sim`` command line: one module per area, all attached to one typer app.

``main`` is the console-script entry point. It turns :class:`~dlora_sim.errors.InputError`
(and pydantic validation errors that escaped a boundary) into one line on stderr and exit
status 1, so bad input never shows a traceback.
"""

from __future__ import annotations

import sys

import click

from dlora_sim.cli.app import app
from dlora_sim.errors import InputError

# Importing a command module registers its commands on ``app``.
from dlora_sim.cli import cost as _cost  # noqa: E402,F401
from dlora_sim.cli import profile as _profile  # noqa: E402,F401
from dlora_sim.cli import run as _run  # noqa: E402,F401
from dlora_sim.cli import profiles as _profiles  # noqa: E402,F401

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map user errors to a one-line message and exit status 1."""
    try:
        app(args=argv, prog_name="dlora-sim", standalone_mode=False)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
