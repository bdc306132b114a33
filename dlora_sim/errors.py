"""The one exception type for input a user can fix, and the one line that describes it.

Every boundary (scenario files, profile files, results folders, CLI options, catalog look-ups)
raises :class:`InputError` with a message that names the file and/or field and, where it helps,
the allowed values. ``dlora_sim.cli.main`` prints it as a single line and exits with status 1,
so a user never sees a traceback for a mistake in their own input.
"""

from __future__ import annotations

import re
from typing import Any


class InputError(ValueError):
    """Bad user input: a wrong scenario, a corrupt profile, an unknown name, impossible numbers."""


def first_problem(error: Any) -> str:
    """One line for a pydantic ``ValidationError`` of a JSON record: the first problem's field
    path (``traces.norms[3]``) and message, and how many more problems there are.

    Pydantic's ``or instance of <Model>`` is dropped: the reader of a JSON file never passes one.
    """
    problems = error.errors()
    first = problems[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    message = re.sub(r" or instance of \w+", "", first["msg"].removeprefix("Value error, "))
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    text = f"{where}: {message}{more}" if where else f"{message}{more}"
    return " ".join(text.split())
