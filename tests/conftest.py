"""Under CI (``CI=true``, set by ``.ci/run``) the suite runs every test: a skip turns the run red.

:func:`_needs.need` already fails a test whose system package is missing, but a skip can come
from elsewhere too (an ``importorskip`` of an extra that did not install, a ``skipif`` on link
shaping, a missing ``dask`` command); CI installs everything, so any skip there is a broken
set-up, and a green run must mean that every test ran. On a developer's machine skips stay
skips, with their reasons.
"""

from __future__ import annotations

from typing import Any

import pytest
from _needs import under_ci

_SKIPPED: list[str] = []


def _note(report: Any) -> None:
    """Remember a skipped test or module with its reason (an expected failure is not a skip)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPPED.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note(report)  # a module-level importorskip skips the whole file at collection


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if under_ci() and _SKIPPED:
        terminalreporter.section("skipped under CI (each one fails the run)", red=True)
        for line in _SKIPPED:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if under_ci() and _SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
