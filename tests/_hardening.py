"""Helpers of the hardening tests (issue 14): run the CLI, check the README's promise.

The promise for bad input: exit status 1, exactly one line naming the file (and field), no
traceback, nothing written and nothing removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
from pathlib import Path

from dlora_sim.cli import main

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
DEFAULT = SCENARIOS / "paper-default.toml"
PROFILE = REPO / "profiles" / "noun-supersense-lora-kr-b3-s0.json"

#: overrides that make paper-default simulate in well under a second
TINY = {"fleet.groups.0.count": 1, "fleet.groups.1.count": 1, "job.steps": 4, "job.kr_interval_steps": 2,
        "run.strategies": ["dlora-all", "dlora-kr"]}


def tiny_args() -> list[str]:
    """``--set`` options for :data:`TINY` (TOML values), plus ``--no-progress``."""
    return [arg for key, value in TINY.items()
            for arg in ("--set", f"{key}={toml_value(value)}")] + ["--no-progress"]


def toml_value(value: object) -> str:
    """``value`` written as a TOML value, as ``--set`` reads it (inline tables for dicts)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for every text JSON escapes
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(toml_value(v) for v in value) + "]"  # type: ignore[attr-defined]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``dlora-sim ARGV`` in this process: (exit status, stdout, stderr).

    Anything but ``SystemExit`` propagates, so a traceback fails the calling test.
    """
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def assert_refused(result: tuple[int, str, str], *words: str) -> str:
    """Exit 1 and one error line on stderr holding every word (nothing on stdout); returns it."""
    code, out, err = result
    assert "Traceback" not in out + err, err
    assert code == 1, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` (hidden ones too) with a digest of its bytes or link target."""
    state: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            state[key] = f"-> {path.readlink()}"
        elif path.is_file():
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[key] = "dir"
    return state


def scenario_text(**replace: str) -> str:
    """paper-default's TOML with an absolute profile path (so a copy runs from anywhere), and
    ``key = value`` lines replaced where the keyword names the key."""
    text = re.sub(r'profile = "[^"]*"', f'profile = "{PROFILE}"', DEFAULT.read_text())
    for key, value in replace.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert n == 1, key
    return text
