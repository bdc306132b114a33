"""`dlora-sim profiles table`: grouping over seeds, the markdown block, and bad folders.

The profiles here are synthetic TEST DATA built by ``test_profile_schema_builder.build_profile``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dlora_sim.cli import main
from dlora_sim.cli.profiles import END_MARKER, START_MARKER, group_profiles, replace_between_markers
from dlora_sim.errors import InputError
from dlora_sim.profile import save_profile
from test_profile_schema_builder import build_profile

ACCURACY = {("kr", 0): 0.80, ("kr", 1): 0.70, ("random", 0): 0.75, ("random", 1): 0.77, ("all", 0): 0.82}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("profiles")
    for (arm, seed), accuracy in ACCURACY.items():
        save_profile(build_profile(arm=arm, seed=seed, test_accuracy=accuracy), path / f"noun-{arm}-s{seed}.json")
    save_profile(build_profile(arm="kr", seed=0, method="adapter", test_accuracy=0.6), path / "noun-kr-adapter.json")
    (path / "notes.txt").write_text("not a profile, ignored")
    return path


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_groups_seeds_with_mean_and_range(folder):
    """Seeds of one (task, peft, arm, budget) form one row: mean and [min–max] of test accuracy."""
    from dlora_sim.cli.profiles import load_folder

    rows = group_profiles(load_folder(folder))
    keys = [(r.peft, r.arm, r.budget, len(r.seeds)) for r in rows]
    assert keys == [("adapter", "kr", 3, 1), ("lora", "all", 24, 1), ("lora", "kr", 3, 2), ("lora", "random", 3, 2)]
    kr = rows[2]
    assert kr.cells()[6] == "75.0 [70.0–80.0]"
    assert kr.kr_s_per_step == pytest.approx(1e-4 + 2e-3)
    assert rows[3].kr_s_per_step == pytest.approx(1e-4)


def test_random_arm_swaps_more_than_kr_in_test_data(folder):
    """swaps/round comes from the recorded active sets: random re-draws, static-free KR is lower."""
    from dlora_sim.cli.profiles import load_folder

    rows = {r.arm: r for r in group_profiles(load_folder(folder)) if r.peft == "lora"}
    assert rows["random"].swaps_per_round > 1.5          # 3 random of 24: ~2.6 new per round
    assert rows["all"].swaps_per_round == 0.0


def test_cli_prints_table(folder, capsys):
    """The command prints every group and says the spread is min–max."""
    code, out, _ = _run(["profiles", "table", str(folder)], capsys)
    assert code == 0
    assert "min–max" in out and "random" in out and "adapter" in out


def test_write_keeps_the_rest_of_the_readme(folder, tmp_path, capsys):
    """--write replaces only the block between the markers, and rewriting is byte-identical."""
    readme = tmp_path / "README.md"
    readme.write_text(f"# Profiles\n\nIntro kept.\n\n{START_MARKER}\nold table\n{END_MARKER}\n\nFooter kept.\n")
    assert _run(["profiles", "table", str(folder), "--write", str(readme)], capsys)[0] == 0
    text = readme.read_text()
    assert text.startswith("# Profiles\n\nIntro kept.\n\n" + START_MARKER) and text.endswith(END_MARKER + "\n\nFooter kept.\n")
    assert "old table" not in text
    assert "| noun-supersense | lora | kr | 3/24 | w20 wu1 norm-diff/sqrt-params global/all h0.1 p0.25 | 2 | 75.0 [70.0–80.0] |" in text
    assert _run(["profiles", "table", str(folder), "--write", str(readme)], capsys)[0] == 0
    assert readme.read_text() == text


def test_write_creates_or_appends_markers(folder, tmp_path, capsys):
    """A missing file is created with the markers; a file without markers gets them appended."""
    fresh = tmp_path / "new" / "README.md"
    assert _run(["profiles", "table", str(folder), "--write", str(fresh)], capsys)[0] == 0
    assert fresh.read_text().count(START_MARKER) == 1
    plain = tmp_path / "plain.md"
    plain.write_text("Hand-written notes.\n")
    assert _run(["profiles", "table", str(folder), "--write", str(plain)], capsys)[0] == 0
    assert plain.read_text().startswith("Hand-written notes.\n\n" + START_MARKER)


def test_broken_markers_are_an_input_error():
    """An end marker before the start marker is refused, naming the file."""
    with pytest.raises(InputError, match="README.md: needs exactly one"):
        replace_between_markers(f"{END_MARKER}\n{START_MARKER}\n", "x\n", "README.md")


def test_corrupt_profile_in_folder_is_one_line(folder, tmp_path, capsys):
    """A truncated profile among good ones: exit 1 with one stderr line naming that file."""
    bad = tmp_path / "bad"
    bad.mkdir()
    good = (folder / "noun-kr-s0.json").read_bytes()
    (bad / "a.json").write_bytes(good)
    (bad / "b.json").write_bytes(good[: len(good) // 2])
    code, _, err = _run(["profiles", "table", str(bad)], capsys)
    assert code == 1 and err.count("\n") == 1 and "b.json" in err and "Traceback" not in err


def test_missing_or_empty_folder_exits_1_without_traceback(tmp_path):
    """The console script reports a missing folder and an empty folder in one line each."""
    script = Path(sys.executable).with_name("dlora-sim")
    for target in (tmp_path / "nope", tmp_path):
        done = subprocess.run([str(script), "profiles", "table", str(target)], capture_output=True, text=True)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0 and str(target) in done.stderr


def test_runs_with_different_kr_settings_are_not_averaged(tmp_path):
    """Two kr runs that differ in hysteresis (or steps) form separate rows, each named by its settings."""
    save_profile(build_profile(arm="kr", seed=0), tmp_path / "a.json")
    save_profile(build_profile(arm="kr", seed=1, hysteresis=0.3), tmp_path / "b.json")
    save_profile(build_profile(arm="kr", seed=2, steps=100), tmp_path / "c.json")
    from dlora_sim.cli.profiles import load_folder

    rows = group_profiles(load_folder(tmp_path))
    assert len(rows) == 3 and all(len(r.seeds) == 1 for r in rows)
    assert sorted(r.settings.split()[-2] for r in rows) == ["h0.1", "h0.1", "h0.3"]
