"""Property tests (hypothesis) of the engine on small random scenarios built in code."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _sim_scenarios import small
from dlora_sim.cost import kr_schedule
from dlora_sim.sim.engine import build_devices, run_strategy
from dlora_sim.sim.work import step_work

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scenarios = st.fixed_dictionaries({
    "fleet.groups.0.count": st.integers(1, 4),
    "fleet.groups.0.link": st.sampled_from(["lte", "5g", "wifi"]),
    "fleet.groups.0.availability": st.sampled_from([
        {"kind": "always"},
        {"kind": "markov", "mean_online_s": 60.0, "mean_offline_s": 20.0},
        {"kind": "markov", "mean_online_s": 200.0, "mean_offline_s": 90.0},
    ]),
    "scheduler.checkpoint_interval_steps": st.integers(1, 7),
    "scheduler.session_timeout_s": st.sampled_from([5.0, 60.0, 1e6]),
    "cloud.batch_window_s": st.sampled_from([0.0, 0.01]),
    "run.seed": st.integers(0, 1000),
    "run.granularity": st.sampled_from(["step", "module"]),
    "job.steps": st.integers(5, 25),
})
strategy_names = st.sampled_from(["dlora-all", "dlora-kr", "dlora-random", "cloud-only"])


def _run(overrides, strategy, devices=None):
    scenario = small({**overrides, "run.horizon_s": 20_000.0})
    devices = devices if devices is not None else build_devices(scenario)
    return scenario, devices, run_strategy(scenario, strategy, devices)


@SETTINGS
@given(scenarios, strategy_names)
def test_every_step_is_applied_exactly_once(overrides, strategy):
    """Whatever the outages, the scheduler applies each (device, step) once, duplicates from
    re-sent notes are dropped, a finished device's state holds each step exactly once, and it
    applied exactly the KR rounds of the job's schedule (a retry or a redo never adds one)."""
    scenario, devices, outcome = _run(overrides, strategy)
    total = scenario.job.total_steps
    counts = kr_schedule(scenario.job.to_job_spec(), strategy).counts()
    for device, stats in zip(devices, outcome.stats):
        assert stats.applied_steps == list(range(stats.steps_done))
        applied = sorted(s for d, s in outcome.queue_applied if d == device.index)
        assert applied == sorted(set(applied)) and len(applied) <= stats.steps_done
        if stats.completion_s is not None:
            assert stats.steps_done == total and applied == list(range(total))
            assert (stats.kr_rounds, stats.kr_probes, stats.kills, stats.revives) == (
                counts.rounds, counts.probes, counts.kills, counts.revives)


@SETTINGS
@given(scenarios, strategy_names)
def test_bytes_sent_equal_bytes_received_plus_bytes_lost_in_flight(overrides, strategy):
    """Each direction of each device: every byte put on the wire either arrived or was lost with
    an aborted transfer."""
    _, _, outcome = _run(overrides, strategy)
    for stats in outcome.stats:
        assert math.isclose(stats.up_sent_bytes, stats.up_received_bytes + stats.up_lost_bytes, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(stats.down_sent_bytes, stats.down_received_bytes + stats.down_lost_bytes, rel_tol=1e-9, abs_tol=1e-6)


@SETTINGS
@given(scenarios, strategy_names)
def test_no_device_finishes_before_its_compute_and_transfers_allow(overrides, strategy):
    """A finished device took at least the sum, over its steps, of its edge compute, its transfers
    at its own link rate, its round-trip latencies and the cloud FLOPs at one GPU's full rate."""
    scenario, devices, outcome = _run(overrides, strategy)
    spec = scenario.job.to_job_spec()
    gpu_flops = scenario.cloud.gpu_spec.flops_per_s
    schedule = kr_schedule(spec, strategy)
    for device, stats in zip(devices, outcome.stats):
        if stats.completion_s is None:
            continue
        bound = 0.0
        for step in range(scenario.job.total_steps):
            n_active = schedule.n_active(step)
            w = step_work(spec, strategy, None if strategy in ("dlora-all", "cloud-only") else n_active).total
            bound += (w.edge_flops / device.flops_per_s + w.up_bytes / device.up_bytes_per_s
                      + w.down_bytes / device.down_bytes_per_s + w.round_trips * device.rtt_s
                      + w.cloud_flops / gpu_flops)
        assert stats.completion_s >= bound * (1 - 1e-9)


@SETTINGS
@given(st.floats(0.0, 0.999), st.floats(0.5, 400.0), st.integers(1, 6), strategy_names,
       st.sampled_from(["step", "module"]))
def test_disconnecting_at_any_moment_loses_no_committed_update(at, outage_s, interval, strategy, granularity):
    """One outage at any moment of the run: afterwards the device resumes from its last checkpoint,
    so it redoes fewer than ``checkpoint_interval`` steps, still applies every step exactly once
    and finishes the job."""
    overrides = {"fleet.groups.0.count": 1, "scheduler.checkpoint_interval_steps": interval,
                 "run.granularity": granularity, "job.steps": 12, "scheduler.session_timeout_s": 100.0}
    scenario, devices, clean = _run(overrides, strategy)
    t_off = at * clean.stats[0].completion_s
    faulty = [dataclasses.replace(devices[0], offline=((t_off, t_off + outage_s),))]
    _, _, outcome = _run(overrides, strategy, faulty)
    stats = outcome.stats[0]
    assert stats.disconnections == 1
    assert stats.redone_steps < interval
    assert stats.completion_s is not None and stats.applied_steps == list(range(12))
    assert sorted(outcome.queue_applied) == [(devices[0].index, s) for s in range(12)]
    assert stats.kr_rounds == len(kr_schedule(scenario.job.to_job_spec(), strategy).rounds)
    assert stats.completion_s >= clean.stats[0].completion_s
