"""One accounting: with nothing contending and no faults, the simulator's job totals are the cost model's.

Both read the same KR schedule (``cost.kr_schedule``) and the same exchange lists
(``cost.step_exchanges``, ``cost.kr_round_exchanges``); this holds them to each other on every
combination a planner can choose, so that a second copy of a formula cannot creep back in.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from _sim_scenarios import REPO, small

from dlora_sim.cost import job_totals, kr_schedule
from dlora_sim.sim.engine import build_devices, run_strategy

# a KR profile (measured churn) and an all-modules profile (no KR evidence: no churn)
PROFILES = {
    "kr-profile": REPO / "profiles" / "noun-supersense-lora-kr-b3-s0.json",
    "all-profile": REPO / "profiles" / "noun-supersense-lora-all-b3-s0.json",
}
DLORA_CASES = list(itertools.product(
    ("dlora-all", "dlora-kr", "dlora-random", "dlora-static-random"), ("activations", "weights"),
    ("offload", "edge-forward"),
    (1, 2, 3), (10, 50, 200), sorted(PROFILES),
))
CASES = [(s, "activations", "offload", 1, 50, "kr-profile")
         for s in ("cloud-only", "edge-only", "edge-only-int4", "fed-lora", "split-lora")] + DLORA_CASES
TOLERANCE = 0.005


def _scenario(exchange: str, policy: str, warmup: int, interval: int, profile: str, **extra):
    return small({
        "fleet.groups.0.count": 1, "job.steps": 700, "job.exchange": exchange, "job.killed_policy": policy,
        "job.kr_warmup_rounds": warmup, "job.kr_interval_steps": interval, "job.profile": str(PROFILES[profile]),
        "run.horizon_s": 1e9, **extra,
    })


def test_the_profiles_exist():
    """The comparison needs both kinds of profile among the committed ones."""
    assert all(Path(p).is_file() for p in PROFILES.values())


@pytest.mark.parametrize("strategy, exchange, policy, warmup, interval, profile", CASES)
def test_simulator_job_totals_equal_the_cost_model(strategy, exchange, policy, warmup, interval, profile):
    """Bytes up and down, edge and cloud FLOPs, round trips, KR rounds, probes, kills and revivals of
    one uncontended, never-failing device equal ``job_totals`` and ``kr_schedule`` within 0.5%."""
    scenario = _scenario(exchange, policy, warmup, interval, profile)
    spec = scenario.job.to_job_spec()
    stats = run_strategy(scenario, strategy, build_devices(scenario)).stats[0]
    assert stats.completion_s is not None
    expected = job_totals(spec, strategy)
    simulated = {
        "bytes_up": stats.up_received_bytes, "bytes_down": stats.down_received_bytes,
        "edge_flops": stats.edge_flops, "cloud_flops": stats.cloud_flops, "round_trips": stats.round_trips,
    }
    for metric, value in simulated.items():
        assert value == pytest.approx(expected[metric], rel=TOLERANCE, abs=1e-9), metric
    counts = kr_schedule(spec, strategy).counts()
    assert (stats.kr_rounds, stats.kr_probes, stats.kills, stats.revives) == (
        counts.rounds, counts.probes, counts.kills, counts.revives)


@pytest.mark.parametrize("head, side, blocks", [("edge", "both", 1), ("cloud", "edge", 3), ("edge", "edge", 5)])
def test_split_lora_simulates_what_the_cost_model_prices(head, side, blocks):
    """Split learning at block k, head on either side, LoRA on the device or both: one device's
    bytes, FLOPs and round trips are the cost model's."""
    scenario = _scenario("activations", "offload", 1, 50, "kr-profile", **{
        "job.head_placement": head, "job.split_lora": side, "job.split_blocks": blocks})
    stats = run_strategy(scenario, "split-lora", build_devices(scenario)).stats[0]
    expected = job_totals(scenario.job.to_job_spec(), "split-lora")
    for metric, value in (("bytes_up", stats.up_received_bytes), ("bytes_down", stats.down_received_bytes),
                          ("edge_flops", stats.edge_flops), ("cloud_flops", stats.cloud_flops),
                          ("round_trips", stats.round_trips)):
        assert value == pytest.approx(expected[metric], rel=TOLERANCE), metric


def test_total_churn_does_not_depend_on_the_kr_interval():
    """The profile's churn is spread over the job's rounds: the same revivals at every interval
    that leaves enough rounds to carry them."""
    revivals = set()
    for interval in (10, 20, 35, 50):
        spec = _scenario("activations", "offload", 1, interval, "kr-profile").job.to_job_spec()
        revivals.add(kr_schedule(spec, "dlora-kr").counts().revives)
    assert len(revivals) == 1 and revivals.pop() > 0


@pytest.mark.parametrize("strategy, exchange, policy", list(itertools.product(
    ("dlora-kr", "dlora-random"), ("activations", "weights"), ("offload", "edge-forward"))))
def test_module_granularity_prices_the_same_job(strategy, exchange, policy):
    """One event per round trip (``module``) moves the same bytes and FLOPs as one per step."""
    scenario = small({"fleet.groups.0.count": 1, "job.steps": 120, "job.exchange": exchange,
                      "job.killed_policy": policy, "run.granularity": "module", "run.horizon_s": 1e9})
    stats = run_strategy(scenario, strategy, build_devices(scenario)).stats[0]
    expected = job_totals(scenario.job.to_job_spec(), strategy)
    assert stats.up_received_bytes == pytest.approx(expected["bytes_up"], rel=TOLERANCE)
    assert stats.edge_flops == pytest.approx(expected["edge_flops"], rel=TOLERANCE)
    assert stats.round_trips == pytest.approx(expected["round_trips"], rel=TOLERANCE)


outages = st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.1, 400.0)), min_size=1, max_size=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# found by this test: a round kept with a checkpoint was run again after a later round's rollback
@example([(0.9375, 1.0)], 7, 2, "dlora-random", "step", 5.0)
@given(outages, st.integers(1, 7), st.integers(0, 2), st.sampled_from(["dlora-kr", "dlora-random"]),
       st.sampled_from(["step", "module"]), st.sampled_from([5.0, 1e6]))
def test_outages_never_add_or_lose_a_kr_round_or_a_step(trace, checkpoint, warmup, strategy, granularity,
                                                        timeout_s):
    """Random outage traces: a finished device applied exactly the KR rounds, probes, kills and
    revivals of the schedule, and the scheduler holds each of its steps once, at the attempt the
    device kept; every byte sent arrived or was lost in flight."""
    overrides = {"fleet.groups.0.count": 1, "job.steps": 40, "job.kr_interval_steps": 4,
                 "job.kr_warmup_rounds": warmup, "scheduler.checkpoint_interval_steps": checkpoint,
                 "scheduler.session_timeout_s": timeout_s, "run.granularity": granularity,
                 "run.horizon_s": 1e9}
    scenario = small(overrides)
    devices = build_devices(scenario)
    clean_s = run_strategy(scenario, strategy, devices).stats[0].completion_s
    offline, t = [], 0.0
    for at, length in trace:  # disjoint, ordered outages spread over the clean run
        start = max(t, at * clean_s)
        offline.append((start, start + length))
        t = start + length + 1e-3
    faulty = [dataclasses.replace(devices[0], offline=tuple(offline))]
    outcome = run_strategy(scenario, strategy, faulty)
    stats = outcome.stats[0]
    assert stats.completion_s is not None
    counts = kr_schedule(scenario.job.to_job_spec(), strategy).counts()
    assert (stats.kr_rounds, stats.kr_probes, stats.kills, stats.revives) == (
        counts.rounds, counts.probes, counts.kills, counts.revives)
    assert sorted(outcome.queue_applied) == [(0, s) for s in range(40)]
    assert stats.applied_steps == list(range(40))
    assert math.isclose(stats.up_sent_bytes, stats.up_received_bytes + stats.up_lost_bytes, rel_tol=1e-9)
    assert math.isclose(stats.down_sent_bytes, stats.down_received_bytes + stats.down_lost_bytes, rel_tol=1e-9)
