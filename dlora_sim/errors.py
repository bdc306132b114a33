"""The one exception type for input a user can fix.

Every boundary (scenario files, profile files, CLI options, catalog look-ups) raises
:class:`InputError` with a message that names the file and/or field and, where it helps, the
allowed values. ``dlora_sim.cli.main`` prints it as a single line and exits with status 1, so a
user never sees a traceback for a mistake in their own input.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input: a wrong scenario, a corrupt profile, an unknown name, impossible numbers."""
