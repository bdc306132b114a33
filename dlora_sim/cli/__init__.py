"""The ``dlora-sim`` command line: one module per area, all attached to one typer app.

``main`` is the console-script entry point. It turns :class:`~dlora_sim.errors.InputError`
into one line on stderr and exit status 1, so bad input never shows a traceback.
"""

from __future__ import annotations

import sys

from dlora_sim.cli.app import app
from dlora_sim.errors import InputError

# Importing a command module registers its commands on ``app``.
from dlora_sim.cli import cost as _cost  # noqa: E402,F401
from dlora_sim.cli import profile as _profile  # noqa: E402,F401
from dlora_sim.cli import run as _run  # noqa: E402,F401
from dlora_sim.cli import profiles as _profiles  # noqa: E402,F401
from dlora_sim.cli import profiles_compare as _profiles_compare  # noqa: E402,F401
from dlora_sim.cli import compare_runs as _compare_runs  # noqa: E402,F401
from dlora_sim.cli import dashboard as _dashboard, sweep as _sweep  # noqa: E402,F401
from dlora_sim.cli import live as _live  # noqa: E402,F401
from dlora_sim.cli import fed as _fed  # noqa: E402,F401
from dlora_sim.cli import privacy as _privacy  # noqa: E402,F401
from dlora_sim.cli import traces as _traces  # noqa: E402,F401
from dlora_sim.cli import plan as _plan  # noqa: E402,F401

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map user errors to a one-line message and exit status 1.

    Typer runs in standalone mode, so usage errors, ``--help`` and ``typer.Exit`` behave as
    usual (they end in ``SystemExit``); only :class:`InputError` escapes ``app`` and is printed
    here as one line, whatever line breaks the text it quotes (a file's, an OS error's) held.
    """
    try:
        app(args=argv, prog_name="dlora-sim")
    except InputError as error:
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        sys.exit(1)
