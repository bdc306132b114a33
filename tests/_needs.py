"""What a test needs from the machine: skip without it on a developer's machine, fail under CI.

CI (``.ci/run`` sets ``CI=true``) installs every system package the suite uses, so a missing one
there is a broken set-up that must turn the run red, not a test quietly skipped.
"""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(available: bool, reason: str) -> None:
    """Go on if ``available``; otherwise skip with ``reason``, or fail with it under CI."""
    if available:
        return
    if under_ci():
        pytest.fail(f"CI must have it: {reason}")
    pytest.skip(reason)
