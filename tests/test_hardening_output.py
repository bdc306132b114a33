"""Issue 14, data loss: dlora-sim replaces only folders it wrote itself, and names are never paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _hardening import DEFAULT, assert_refused, run_cli, scenario_text, snapshot, tiny_args
from dlora_sim.errors import InputError
from dlora_sim.io import RESULTS_MARKER, atomic_directory, check_replaceable, is_results_folder


def _precious(folder: Path) -> dict[str, str]:
    """A folder of someone's own work, with a stray summary.json; returns its snapshot."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text('{"mine": true}')
    (folder / "thesis.tex").write_text("years of work")
    return snapshot(folder)


def test_out_dot_with_a_stray_summary_is_refused(tmp_path, monkeypatch):
    """`run -o .` where the current folder holds a summary.json: one line, nothing removed."""
    before = _precious(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert_refused(run_cli(["run", str(DEFAULT), "-o", ".", *tiny_args()]), "--out", "current folder")
    assert snapshot(tmp_path) == before


def test_folder_with_a_stray_summary_is_not_results(tmp_path):
    """A summary.json proves nothing: without the marker the folder is refused whole."""
    out = tmp_path / "mine"
    before = _precious(out)
    line = assert_refused(run_cli(["run", str(DEFAULT), "-o", str(out), *tiny_args()]), str(out), RESULTS_MARKER)
    assert "refusing to replace" in line
    assert snapshot(out) == before


def test_a_forged_marker_is_not_enough(tmp_path):
    """A marker file that is not dlora-sim's JSON does not make a results folder."""
    out = tmp_path / "mine"
    _precious(out)
    (out / RESULTS_MARKER).write_text("not json")
    assert not is_results_folder(out)
    with pytest.raises(InputError, match="refusing to replace"):
        check_replaceable(out)


def test_results_folder_is_marked_and_replaced_on_rerun(tmp_path):
    """A run writes the marker; a rerun replaces its own folder and leaves nothing beside it."""
    out = tmp_path / "results" / "pd"
    assert run_cli(["run", str(DEFAULT), "-o", str(out), *tiny_args()])[0] == 0
    marker = json.loads((out / RESULTS_MARKER).read_text())
    assert marker["tool"] == "dlora-sim" and "version" in marker
    (out / "stale.txt").write_text("from the earlier run")
    assert run_cli(["run", str(DEFAULT), "-o", str(out), *tiny_args()])[0] == 0
    assert not (out / "stale.txt").exists()
    assert [p.name for p in out.parent.iterdir()] == ["pd"]


@pytest.mark.parametrize("name", ['"../../x"', '"/tmp/elsewhere"', '"a/b"', '"..x"', '"[/bold]"', '""', '".hidden"'])
def test_scenario_name_is_never_a_path(tmp_path, monkeypatch, name):
    """`name` is validated: the error names the file and the field, and no folder appears."""
    scenario = tmp_path / "work" / "s.toml"
    scenario.parent.mkdir()
    scenario.write_text(f"name = {name}\n" + scenario_text())
    monkeypatch.chdir(scenario.parent)
    before = snapshot(tmp_path)
    assert_refused(run_cli(["run", str(scenario), *tiny_args()]), f"{scenario}: name: ")
    assert snapshot(tmp_path) == before


def test_default_name_from_an_odd_file_name_is_a_safe_folder(tmp_path, monkeypatch):
    """Without `name`, the file name becomes one; characters a name may not hold become '-'."""
    scenario = tmp_path / "my fleet [v2].toml"
    scenario.write_text(scenario_text())
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["run", str(scenario), *tiny_args()])
    assert code == 0, err
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["my-fleet-v2-"]


def test_out_symlink_is_refused_and_leaves_no_temporary_folder(tmp_path):
    """`-o LINK`: one line, the link and what it points to untouched, no hidden folder beside it."""
    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    before = snapshot(tmp_path)
    assert_refused(run_cli(["run", str(DEFAULT), "-o", str(link), *tiny_args()]), str(link), "symbolic link")
    assert snapshot(tmp_path) == before


def test_out_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("keep")
    assert_refused(run_cli(["run", str(DEFAULT), "-o", str(out), *tiny_args()]), str(out), "not a folder")
    assert out.read_text() == "keep"


def test_out_below_a_file_is_one_line(tmp_path):
    """A parent that is a file cannot hold the folder: one line, not an OSError."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot create"):
        with atomic_directory(tmp_path / "file" / "out"):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_folder_filled_meanwhile_is_not_replaced(tmp_path):
    """If someone puts files into OUT while results are computed, OUT is kept and the new
    results vanish: no temporary folder is left on this failure path either."""
    out = tmp_path / "out"
    with pytest.raises(InputError, match="refusing to replace"):
        with atomic_directory(out) as tmp:
            (tmp / "summary.json").write_text("{}")
            out.mkdir()
            (out / "mine.txt").write_text("mine")
    assert snapshot(tmp_path) == {"out": "dir", "out/mine.txt": snapshot(out)["mine.txt"]}


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_inside_keeps_the_previous_results(tmp_path, error):
    """An error (or Ctrl-C) while writing keeps the earlier results whole and leaves no temp."""
    out = tmp_path / "out"
    with atomic_directory(out) as tmp:
        (tmp / "summary.json").write_text("old")
    before = snapshot(tmp_path)
    with pytest.raises(error):
        with atomic_directory(out) as tmp:
            (tmp / "summary.json").write_text("new")
            raise error()
    assert snapshot(tmp_path) == before


def test_replacing_a_marked_folder_leaves_nothing_aside(tmp_path):
    """The old folder is moved aside and removed once the new one is in place."""
    out = tmp_path / "out"
    for text in ("old", "new"):
        with atomic_directory(out) as tmp:
            (tmp / "summary.json").write_text(text)
    assert (out / "summary.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
