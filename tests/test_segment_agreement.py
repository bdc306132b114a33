"""The segment engine against the step engine: exact where nothing contends, within 1% where
devices share a saturated GPU pool or link, with outages, rollbacks and session drops.

``step`` is the reference (a SimPy process per device, every exchange an event); ``segment``
advances each device in closed form between state changes. Their summaries must tell a planner
the same thing.
"""

from __future__ import annotations

import math

import pytest
from _sim_scenarios import small

from dlora_sim.errors import InputError
from dlora_sim.sim.engine import simulate

ALL = ["dlora-all", "dlora-kr", "dlora-random", "dlora-static-random", "cloud-only", "edge-only",
       "edge-only-int4", "fed-lora", "split-lora"]
FLAKY = {"kind": "markov", "mean_online_s": 200, "mean_offline_s": 100}

#: figures the segment engine reports as a bound or a fluid estimate, not event by event
#: (docs/simulator.md, "Segment granularity")
NOT_EVENT_BY_EVENT = ("peak_flows_per_shared_link",)
#: what a planner reads off a contended run; held to 1%
PLANNER_FIGURES = (
    "completion_p50_s", "completion_p95_s", "makespan_s", "finished_devices", "steps_done", "steps_applied",
    "edge_flops", "energy_j", "bytes_up", "bytes_down", "bytes_total", "cloud_flops", "cloud_gpu_s", "money_usd",
    "provisioned_usd", "kr_rounds", "kr_upload_bytes", "steady_step_bytes",
)


def _flat(block: dict, prefix: str = "") -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in block.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, bool) or isinstance(value, str) or isinstance(value, list):
            continue
        else:
            out[f"{prefix}{key}"] = None if value is None else float(value)
    return out


def _both(overrides: dict, strategies: list[str]) -> tuple[dict, dict]:
    runs = {}
    for granularity in ("step", "segment"):
        scenario = small({**overrides, "run.granularity": granularity, "run.strategies": strategies})
        runs[granularity] = simulate(scenario).summary["strategies"]
    return runs["step"], runs["segment"]


def _relative(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a == b else math.inf
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


def test_exact_where_nothing_contends():
    """Three flaky phones, a GPU each, no batching window: every summary figure of every
    strategy is the step engine's (to float rounding), outages, rollbacks, KR rounds, session
    drops, re-uploads and acknowledgements included."""
    over = {"fleet.groups.0.count": 3, "cloud.count": 3, "fleet.groups.0.availability": FLAKY,
            "job.steps": 120, "scheduler.session_timeout_s": 50.0, "job.killed_policy": "offload"}
    step, segment = _both(over, ALL)
    assert step.keys() == segment.keys()
    worst = []
    for strategy in step:
        a, b = _flat(step[strategy]), _flat(segment[strategy])
        assert a.keys() == b.keys()
        for key in a:
            if not key.startswith(NOT_EVENT_BY_EVENT):
                worst.append((_relative(a[key], b[key]), strategy, key))
    assert max(worst)[0] < 1e-9, max(worst)
    assert sum(step[s]["disconnections"] for s in step) > 20  # the outages did happen
    assert sum(step[s]["session_drops"] for s in step) > 0


def test_exact_when_the_horizon_cuts_the_run_and_devices_start_offline():
    """Devices that start in an outage, and a horizon before most finish: the same partial
    counts (what was finished when the clock stopped) in both engines."""
    over = {"fleet.groups.0.count": 4, "cloud.count": 4, "job.steps": 100, "run.horizon_s": 2_000.0,
            "fleet.groups.0.availability": {"kind": "markov", "mean_online_s": 100, "mean_offline_s": 500,
                                            "start_online": False}}
    step, segment = _both(over, ["dlora-all", "dlora-kr", "cloud-only"])
    for strategy in step:
        a, b = _flat(step[strategy]), _flat(segment[strategy])
        for key in a:
            if not key.startswith(NOT_EVENT_BY_EVENT):
                assert _relative(a[key], b[key]) < 1e-9, (strategy, key, a[key], b[key])
    assert step["dlora-all"]["finished_devices"] < 4


@pytest.mark.parametrize("flaky", [False, True])
def test_within_one_percent_on_a_saturated_gpu_pool(flaky):
    """Twenty laptops on one GPU (cloud-only saturates it, its memory holds 17 sessions): the
    planner's figures agree within 1%, with and without outages."""
    over = {"job.model": "llama-7b", "job.batch": 4, "job.seq_len": 256, "job.steps": 100, "job.budget": 16,
            "job.kr_interval_steps": 10, "fleet.groups.0.device": "laptop", "fleet.groups.0.link": "wifi",
            "fleet.groups.0.count": 20, "cloud.count": 1, "cloud.batch_max_users": 4, "run.horizon_s": 1e6,
            "scheduler.checkpoint_interval_steps": 5}
    if flaky:  # outages every few minutes of a cloud-only run that takes about five
        over["fleet.groups.0.availability"] = {"kind": "markov", "mean_online_s": 120, "mean_offline_s": 20}
    step, segment = _both(over, ["cloud-only"])
    a, b = step["cloud-only"], segment["cloud-only"]
    assert a["cloud_wait_s"] > 10 * a["completion_p50_s"]  # it did contend
    for key in PLANNER_FIGURES:
        assert _relative(a[key], b[key]) < 0.01, (key, a[key], b[key])
    waits = lambda s: s["cloud_wait_s"] + s["cloud_memory"]["memory_wait_s"]  # noqa: E731
    assert _relative(waits(a), waits(b)) < 0.05


def test_a_transfer_alone_runs_at_the_thinnest_shared_link():
    """One phone whose shared access link is thinner than its own radio: its transfers run at the
    link's capacity in both engines (exact: nothing else shares the link)."""
    over = {"fleet.groups.0.count": 1, "network.access_capacity_bps": 2e7, "job.steps": 60}
    step, segment = _both(over, ["dlora-all", "dlora-kr"])
    for strategy in step:
        a, b = _flat(step[strategy]), _flat(segment[strategy])
        for key in a:
            if not key.startswith(NOT_EVENT_BY_EVENT):
                assert _relative(a[key], b[key]) < 1e-9, (strategy, key, a[key], b[key])


def test_what_segment_does_not_model_is_refused_in_one_line():
    """An admission limit below the fleet is a queue the segment engine does not keep: it says
    so, naming the field, rather than answering something else."""
    scenario = small({"run.granularity": "segment", "fleet.groups.0.count": 5, "scheduler.admission_limit": 2})
    with pytest.raises(InputError, match=r"^scheduler\.admission_limit: .*segment"):
        simulate(scenario)


def _phones_on_a_backhaul(jitter_s: float) -> dict:
    """Forty 5G phones fine-tuning LLaMA-7B behind one 4 Gbit/s backhaul: on average a quarter
    used, but the 8 Gbit/s of their downloads at once would saturate it."""
    return {"job.model": "llama-7b", "job.batch": 1, "job.seq_len": 128, "job.steps": 40, "job.budget": 16,
            "fleet.groups.0.count": 40, "fleet.groups.0.device": "phone-high",
            "fleet.groups.0.link": {"name": "5g", "jitter_s": jitter_s}, "network.access_capacity_bps": 4e9,
            "cloud.count": 4, "cloud.batch_window_s": 0.005}


def test_within_one_percent_on_a_contended_link_when_rtts_differ():
    """Phones whose RTTs differ (by up to 20 ms, a per-device constant) drift apart in phase, and
    the fluid fair share of the backhaul is what the step engine's exact sharing gives them:
    the planner's figures agree within 1%."""
    step, segment = _both(_phones_on_a_backhaul(0.02), ["dlora-all"])
    a, b = step["dlora-all"], segment["dlora-all"]
    for key in PLANNER_FIGURES:
        assert _relative(a[key], b[key]) < 0.01, (key, a[key], b[key])



@pytest.mark.parametrize("online_s, offline_s", [(1800, 300), (900, 150), (300, 60)])
def test_totals_within_one_percent_on_a_contended_link_with_outages(online_s, offline_s):
    """The same backhaul with Markov outages (dozens to hundreds of disconnections): every total
    a planner reads agrees within 1%. The percentiles of forty devices (and the makespan, their 100th) are left out: one outage
    that catches a device in one engine's run and just misses it in the other's moves a device
    across a percentile, and among forty that is a jump of several percent."""
    over = {**_phones_on_a_backhaul(0.02), "scheduler.checkpoint_interval_steps": 5,
            "fleet.groups.0.availability": {"kind": "markov", "mean_online_s": online_s, "mean_offline_s": offline_s}}
    step, segment = _both(over, ["dlora-all"])
    a, b = step["dlora-all"], segment["dlora-all"]
    assert a["disconnections"] > 30
    for key in PLANNER_FIGURES:
        if not key.startswith(("completion_p", "makespan")):
            assert _relative(a[key], b[key]) < 0.01, (key, a[key], b[key])

def test_identical_phones_move_in_lockstep_and_the_fluid_misses_it():
    """The documented limit (docs/simulator.md): byte-identical links and negligible compute keep
    every phone in the same phase of its step, so all download at once and the backhaul saturates
    in bursts that the fluid's average never shows. The step engine is then slower by more than
    the 1% the fluid keeps elsewhere; use ``step`` for such fleets."""
    step, segment = _both(_phones_on_a_backhaul(0.0), ["dlora-all"])
    a, b = step["dlora-all"], segment["dlora-all"]
    assert a["completion_p50_s"] > 1.03 * b["completion_p50_s"]
