"""Atomic output: a result is fully written or not there at all."""

from __future__ import annotations

import os
import stat

import pytest

from dlora_sim.io import RESULTS_MARKER, atomic_directory, atomic_write_json, atomic_write_text


def test_failed_directory_leaves_nothing_behind(tmp_path):
    """An error inside ``atomic_directory`` removes the temporary folder and creates no target."""
    target = tmp_path / "results"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "summary.json").write_text("{}")
            raise RuntimeError("simulated crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_directory_replaces_previous_results_whole(tmp_path):
    """A successful rerun replaces the old (marked) folder; stale files from the old run disappear."""
    target = tmp_path / "results"
    with atomic_directory(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [RESULTS_MARKER, "new.txt"]


def test_json_is_byte_identical_for_equal_objects(tmp_path):
    """Key order does not change the bytes written, so equal results give identical files."""
    atomic_write_json(tmp_path / "a.json", {"b": 1, "a": [1.5, 2]})
    atomic_write_json(tmp_path / "b.json", {"a": [1.5, 2], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_written_file_has_umask_permissions(tmp_path):
    """Files are readable by others as a plain open() would make them, not owner-only."""
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "x.txt", "hello")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "x.txt").stat().st_mode)
    assert mode == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
