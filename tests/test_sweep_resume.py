"""A sweep killed part-way (SIGKILL of the whole process group) resumes: nothing lost, nothing redone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dlora_sim.sweep import MARKER, load_spec

pytest.importorskip("distributed")

from test_sweep_run import tiny_sweep  # noqa: E402  (tests/ is on sys.path)

CLI = Path(sys.executable).with_name("dlora-sim")


def done_markers(out: Path) -> dict[str, int]:
    """Point id -> marker mtime (ns) for every finished point."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "points").glob(f"*/{MARKER}")}


def test_killed_sweep_resumes_without_loss_or_recompute(tmp_path):
    """Kill the sweep after 2 of 8 points; the rerun runs only the rest and the table lists each point once."""
    spec_path = tiny_sweep(tmp_path / "in", budgets=(1, 2, 3, 4), counts=(2, 3), steps=60)
    spec = load_spec(spec_path)
    out = tmp_path / "out"
    command = [str(CLI), "sweep", str(spec_path), "-o", str(out), "--workers", "1", "--no-progress"]
    # its own session: the kill reaches the CLI and its LocalCluster's worker processes at once
    first = subprocess.Popen(command, cwd=tmp_path, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(done_markers(out)) < 2 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    before = done_markers(out)
    assert 2 <= len(before) < len(spec.points), "the sweep must be killed part-way"
    assert not (out / "sweep.parquet").exists()

    rerun = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(spec.points) - len(before)} run now, {len(before)} already done" in rerun.stdout
    after = done_markers(out)
    assert set(after) == {p.point_id for p in spec.points}
    assert all(after[pid] == mtime for pid, mtime in before.items()), "finished points were recomputed"
    table = pq.read_table(out / "sweep.parquet").to_pylist()
    keys = [(r["point_id"], r["strategy"]) for r in table]
    assert len(keys) == len(set(keys)) == 2 * len(spec.points)
