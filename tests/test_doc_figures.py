"""Every number in README.md and docs/cost.md comes from scripts/doc_figures.py, and they agree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "doc_figures.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_the_documents_hold_what_the_code_computes():
    """``--check`` passes on the committed README.md and docs/cost.md."""
    done = _run("--check")
    assert done.returncode == 0, done.stderr


def test_a_drifted_number_fails_the_check(tmp_path):
    """Change one figure in a copy of the README: ``--check`` exits 1 and names the block."""
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "cost.md", tmp_path / "docs" / "cost.md")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- figures:headline -->")
    row = readme.index("| per-module exchange bytes", start)
    cell = readme.index("87.5%", row)
    (tmp_path / "README.md").write_text(readme[:cell] + "88.5%" + readme[cell + 5:], encoding="utf-8")
    done = _run("--check", "--root", str(tmp_path), "--only", "headline")
    assert done.returncode == 1
    assert "block 'headline' differs" in done.stderr
