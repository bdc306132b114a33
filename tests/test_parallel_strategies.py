"""``run.workers``: strategies side by side in worker processes give the sequential results.

The strategies of a scenario share the fleet and its outages but no random generator, so
running them in two spawned processes must write the same results folder, byte for byte, as
running them one after another (the scenario echo differs only in ``run.workers`` itself).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlora_sim.errors import InputError
from dlora_sim.scenario import load_scenario
from dlora_sim.sim.engine import simulate
from dlora_sim.sim.results import write_results

REPO = Path(__file__).resolve().parents[1]
FLEET = REPO / "scenarios" / "fleet-100k.toml"  # Markov outages, shared links, a GPU pool


def _small_fleet(devices: int, steps: int, granularity: str, workers: int) -> object:
    """The 100k fleet cut to ``devices``, links and GPUs scaled alike (the same contention)."""
    base = load_scenario(FLEET)
    f = devices / base.fleet.device_count
    over: dict[str, object] = {"run.granularity": granularity, "run.workers": workers, "job.steps": steps,
                               "cloud.count": max(1, round(base.cloud.count * f)),
                               "network.access_capacity_bps": base.network.access_capacity_bps * f,
                               "network.region_capacity_bps": base.network.region_capacity_bps * f,
                               "run.timeline_sample_devices": 2}
    for i, group in enumerate(base.fleet.groups):
        over[f"fleet.groups.{i}.count"] = max(1, round(group.count * f))
    return load_scenario(FLEET, overrides=over)


def _written(scenario: object, out: Path, progress: bool = False) -> dict[str, bytes]:
    write_results(simulate(scenario, progress=progress), out)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize(("granularity", "devices", "steps"), [("segment", 2_000, 200), ("step", 40, 30)])
def test_two_workers_write_the_sequential_results(tmp_path, granularity, devices, steps):
    one = _written(_small_fleet(devices, steps, granularity, 1), tmp_path / "one")
    two = _written(_small_fleet(devices, steps, granularity, 2), tmp_path / "two", progress=True)
    assert one.keys() == two.keys()
    for name in one:
        if name != "scenario.json":
            assert one[name] == two[name], f"{name} differs between 1 and 2 workers"
    echo_one, echo_two = json.loads(one["scenario.json"]), json.loads(two["scenario.json"])
    assert (echo_one["run"]["workers"], echo_two["run"]["workers"]) == (1, 2)
    echo_two["run"]["workers"] = 1
    assert echo_one == echo_two
    summary = json.loads(one["summary.json"])
    assert summary["strategies"]["dlora-all"]["steps_done"] > 0  # the runs did work


def test_an_input_error_in_a_worker_reaches_the_caller(tmp_path):
    groups = len(load_scenario(FLEET).fleet.groups)
    scenario = load_scenario(FLEET, overrides={
        "run.workers": 2, "run.granularity": "segment", "job.steps": 20, "scheduler.admission_limit": 1,
        **{f"fleet.groups.{i}.count": 50 for i in range(groups)}})
    with pytest.raises(InputError, match="scheduler.admission_limit"):
        simulate(scenario)


def test_a_script_without_a_main_guard_runs_two_workers(tmp_path):
    """Forked workers (the caller runs one thread) do not re-import the caller's script, so a
    plain script that calls ``simulate`` at top level works as a sequential run does."""
    import subprocess
    import sys

    script = tmp_path / "plain.py"
    script.write_text(
        "from dlora_sim.scenario import load_scenario\n"
        "from dlora_sim.sim.engine import simulate\n"
        f"s = load_scenario({str(FLEET)!r}, overrides={{'run.workers': 2, 'job.steps': 20, "
        "**{f'fleet.groups.{i}.count': 30 for i in range(3)}})\n"
        "r = simulate(s)\n"
        "print(sorted(r.summary['strategies']))\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "dlora-all" in done.stdout
