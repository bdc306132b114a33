"""``dlora-sim run``: broken scenarios fail cleanly and leave no results folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlora_sim.cli import main
from dlora_sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEFAULT = SCENARIOS / "paper-default.toml"

# The acceptance list: (case, edit of paper-default's text, field the message names)
BROKEN = [
    ("unknown-key", lambda t: t.replace("[job]\n", "[job]\nlearnig_rate = 1\n", 1), "job.learnig_rate"),
    ("wrong-type", lambda t: t.replace("rank = 8", 'rank = "eight"', 1), "job.rank"),
    ("negative-bandwidth", lambda t: t.replace('link = "5g"', "link = { up_bps = 1e6, down_bps = -1, rtt_s = 0.1 }", 1),
     "fleet.groups.0.link.down_bps"),
    ("budget-above-module-count", lambda t: t.replace("budget = 16 ", "budget = 129 ", 1), "job.budget"),
    ("missing-profile", lambda t: re.sub(r'profile = "[^"]*"', 'profile = "gone.json"', t), "job.profile"),
    ("malformed-toml", lambda t: t.replace("[run]", "[run", 1), None),
]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


@pytest.mark.parametrize(("case", "edit", "field"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_scenario_exits_1_with_one_line_and_no_folder(tmp_path, capsys, case, edit, field):
    """Exit status 1, one stderr line naming file (and field), no traceback, OUT not created."""
    profile = load_scenario(DEFAULT).job.profile
    text = re.sub(r'profile = "[^"]*"', f'profile = "{profile}"', DEFAULT.read_text())
    bad = tmp_path / f"{case}.toml"
    bad.write_text(edit(text))
    out = tmp_path / "results" / "x"
    code, stdout, stderr = _run(["run", str(bad), "-o", str(out)], capsys)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert str(bad) in lines[0]
    if field is not None:
        assert f"{bad}: {field}: " in lines[0]
    assert "Traceback" not in stderr + stdout
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary folder left


def test_bad_set_override_is_one_line(tmp_path, capsys):
    """--set without '=' or with an impossible value fails like a bad file."""
    out = tmp_path / "o"
    code, _, stderr = _run(["run", str(DEFAULT), "-o", str(out), "--set", "job.budget=0"], capsys)
    assert code == 1 and "job.budget" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = _run(["run", str(DEFAULT), "-o", str(out), "--set", "job.budget"], capsys)
    assert code == 1 and "FIELD=VALUE" in stderr
    assert not out.exists()


def test_refuses_to_replace_a_folder_that_is_not_results(tmp_path, capsys):
    """OUT that holds other files is never deleted: the command refuses before simulating."""
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    code, _, stderr = _run(["run", str(DEFAULT), "-o", str(out)], capsys)
    assert code == 1 and "refusing to replace" in stderr
    assert (out / "thesis.tex").read_text() == "years of work"


def test_missing_scenario_file_is_one_line(tmp_path, capsys):
    """A scenario path that does not exist: exit 1, one line naming it."""
    code, _, stderr = _run(["run", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and "nope.toml: scenario file not found" in stderr


TINY = ["--set", "fleet.groups.0.count=1", "--set", "fleet.groups.1.count=1", "--set", "job.steps=4",
        "--set", "job.kr_interval_steps=2", "--no-progress"]


def test_run_writes_the_results_folder_and_replaces_it(tmp_path, capsys):
    """A good run exits 0, writes the four result files, prints a summary; a rerun replaces it whole."""
    out = tmp_path / "results" / "pd"
    code, stdout, stderr = _run(["run", str(DEFAULT), "-o", str(out), *TINY], capsys)
    assert code == 0, stderr
    assert {p.name for p in out.iterdir()} >= {"summary.json", "devices.parquet", "timeline.parquet", "scenario.json"}
    assert "dlora-kr" in stdout and str(out) in stderr.replace("\n", "")
    first = (out / "summary.json").read_bytes()
    (out / "stale.txt").write_text("from an earlier run")
    code, _, _ = _run(["run", str(DEFAULT), "-o", str(out), *TINY], capsys)
    assert code == 0
    assert not (out / "stale.txt").exists()
    assert (out / "summary.json").read_bytes() == first
    assert [p.name for p in out.parent.iterdir()] == ["pd"]  # no temporary folder left beside it
