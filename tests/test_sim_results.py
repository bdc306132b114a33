"""The results folder: complete or absent, and what its summary promises."""

from __future__ import annotations

import dataclasses
import json

import pytest

from _sim_scenarios import small
from dlora_sim.errors import InputError
from dlora_sim.sim import read_results, simulate, write_results


def test_a_failed_write_leaves_no_results_folder(tmp_path):
    """If writing fails half-way (here: a NaN the JSON writer refuses), no folder is left behind."""
    result = simulate(small({"fleet.groups.0.count": 1}))
    broken = dataclasses.replace(result, summary={**result.summary, "bad": float("nan")})
    with pytest.raises(ValueError):
        write_results(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_does_not_change_the_numbers():
    """simulate(progress=True) shows a bar and returns the same summary as without one."""
    scenario = small({"fleet.groups.0.count": 1})
    assert simulate(scenario, progress=True).summary == simulate(scenario).summary


def test_summary_has_every_promised_figure_and_baseline_savings(tmp_path):
    """summary.json holds, per strategy, percentiles, totals, work lost and savings vs dlora-all
    (zero for the baseline itself)."""
    write_results(simulate(small()), tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["baseline"] == "dlora-all"
    for name, block in summary["strategies"].items():
        for key in ("completion_p50_s", "completion_p95_s", "completion_p99_s", "edge_flops", "energy_j",
                    "bytes_up", "bytes_down", "round_trips", "cloud_gpu_s", "money_usd", "work_lost"):
            assert key in block, (name, key)
    base = summary["strategies"]["dlora-all"]["savings_vs_baseline"]
    assert base["bytes_total"] == 0.0 and base["edge_flops"] == 0.0
    assert summary["strategies"]["dlora-kr"]["savings_vs_baseline"]["bytes_total"] > 0


def test_reading_a_folder_that_is_not_results_is_one_input_error(tmp_path):
    """read_results on an empty folder raises InputError naming the folder."""
    with pytest.raises(InputError, match=str(tmp_path)):
        read_results(tmp_path)


def test_results_are_byte_identical_across_processes_with_different_hash_seeds(tmp_path):
    """Two separate Python processes (different PYTHONHASHSEED) write byte-identical folders:
    no randomness comes from hash order or the process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parent
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from _sim_scenarios import small\n"
        "from dlora_sim.sim import simulate, write_results\n"
        "s = small({'fleet.groups.0.availability': {'kind': 'markov', 'mean_online_s': 300.0, 'mean_offline_s': 60.0},"
        " 'run.strategies': ['dlora-all', 'dlora-kr', 'dlora-random']})\n"
        "write_results(simulate(s), sys.argv[1])\n"
    ) % str(tests_dir)
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / seed)], check=True, env=env)
    for name in ("summary.json", "devices.parquet", "timeline.parquet", "scenario.json"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
