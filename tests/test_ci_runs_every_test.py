"""Under ``CI=true`` the suite runs every test (issue 16): a skip of any kind fails the run,
naming the test and its reason; outside CI a skip stays a skip. Checked on a throwaway suite that
uses this suite's own ``conftest.py`` and ``_needs.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SUITE = {
    "test_some.py": (
        "import pytest\n"
        "def test_runs():\n    pass\n"
        "def test_skips():\n    pytest.skip('no chromium here')\n"
        "@pytest.mark.xfail(reason='known', strict=True)\n"
        "def test_expected_failure():\n    assert False\n"
    ),
    "test_extra.py": "import pytest\npytest.importorskip('no_such_extra_module')\n",
}


def _run(folder: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def suite(tmp_path: Path) -> Path:
    for name in ("conftest.py", "_needs.py"):
        shutil.copy(TESTS / name, tmp_path / name)
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_outside_ci_skips_stay_skips(suite):
    done = _run(suite, None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped under CI" not in done.stdout


def test_under_ci_every_skip_fails_the_run_by_name(suite):
    """Only passes, skips and an expected failure: no test failed, yet the run is red."""
    done = _run(suite, "true")
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    listed = out.split("skipped under CI (each one fails the run)", 1)[1]
    assert "test_some.py::test_skips: Skipped: no chromium here" in listed
    assert "test_extra.py: Skipped: could not import 'no_such_extra_module'" in listed
    assert "test_expected_failure" not in listed  # an xfail is not a skip


def test_under_ci_a_missing_system_package_fails_the_test_itself(suite):
    """``need`` (the browser and WordNet tests) fails the test, naming what CI must have."""
    (suite / "test_wordnet.py").write_text(
        "from _needs import need\ndef test_needs_wordnet():\n    need(False, 'WordNet 3.0 not installed')\n")
    done = _run(suite, "true")
    assert done.returncode == 1
    assert "FAILED test_wordnet.py::test_needs_wordnet - Failed: CI must have it: WordNet 3.0 not installed" in done.stdout
    assert _run(suite, None).returncode == 0  # outside CI it skips
