"""Whole-job accounting for one configuration, written plainly (the reference for CostModel).

A job is: warm-up steps with every module active, then steady-state steps with B active, plus
KR's own work at each round, plus one-off set-up transfers. :class:`~dlora_sim.cost.model.CostModel`
computes the same numbers for a whole grid at once; the tests hold the two together and the
benchmark times one against the other.

What a step, a KR round, a federated round or a download is comes from the strategy
(:mod:`dlora_sim.cost.strategies`); KR's timetable (warm-up windows, rounds, which rounds probe,
kills and revivals) is the job's :func:`~dlora_sim.cost.strategies.kr_schedule`, the same one the
simulator replays. This module only adds them up: every training step at its active count,
every round's own exchanges, the periodic exchanges, and the one-off downloads.
"""

from __future__ import annotations

from dlora_sim.cost.hardware import CloudGPU, EdgeDevice, Link, data_usd, gpu_usd, radio_energy_j
from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.strategies import (
    DLORA_STRATEGIES,
    StepCost,
    get_strategy,
    kr_round_exchanges,
    kr_schedule,
    step_cost,
)

METRICS = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "module_bytes")


def setup_bytes_down(job: JobSpec, strategy: str) -> float:
    """One-off downloads: what the device fetches before training and after it (the strategy's
    ``setup_bytes_down`` + ``final_bytes_down``)."""
    s = get_strategy(strategy)
    return s.setup_bytes_down(job) + s.final_bytes_down(job)


def sync_rounds(job: JobSpec, strategy: str) -> int:
    """How many periodic exchanges (federated rounds) the job runs: one after every
    ``sync_every``-th step, the last step included."""
    every = get_strategy(strategy).sync_every(job)
    return job.steps // every if every else 0


def job_totals(job: JobSpec, strategy: str) -> dict[str, float]:
    """Per-job totals of ``strategy`` (hardware-independent quantities).

    Returns:
        ``edge_flops, cloud_flops, bytes_up, bytes_down, round_trips, module_bytes`` over the
        job, with ``kr_bytes`` and ``kr_edge_flops`` (probes, norms, kill uploads),
        ``warmup_extra_bytes``/``warmup_extra_edge_flops`` (warm-up beyond B active) and
        ``setup_bytes_down``.
    """
    schedule = kr_schedule(job, strategy)
    steady = step_cost(job, strategy)
    steps = ([(count, step_cost(job, strategy, n_active=n)) for n, count in schedule.steps_by_active().items()]
             if strategy in DLORA_STRATEGIES else [(job.steps, steady)])
    out = {m: sum(count * getattr(cost, m) for count, cost in steps) for m in METRICS}
    out["warmup_extra_bytes"] = sum(count * (cost.bytes_total - steady.bytes_total) for count, cost in steps)
    out["warmup_extra_edge_flops"] = sum(count * (cost.edge_flops - steady.edge_flops) for count, cost in steps)
    kr = [StepCost.of(kr_round_exchanges(job, kr_round)) for kr_round in schedule.rounds]
    for m in METRICS:
        out[m] += sum(getattr(cost, m) for cost in kr)
    out["kr_bytes"] = sum(cost.bytes_total for cost in kr)
    out["kr_edge_flops"] = sum(cost.edge_flops for cost in kr)
    sync = StepCost.of(get_strategy(strategy).sync_exchanges(job))
    for m in METRICS:
        out[m] += sync_rounds(job, strategy) * getattr(sync, m)
    strategy_ = get_strategy(strategy)
    for once in (strategy_.setup_bytes_down(job), strategy_.final_bytes_down(job)):
        out["bytes_down"] += once
        out["round_trips"] += 1 if once else 0
    out["setup_bytes_down"] = setup_bytes_down(job, strategy)
    return out


def priced(totals: dict[str, float], device: EdgeDevice, link: Link, gpu: CloudGPU) -> dict[str, float]:
    """Seconds, energy and money for hardware-independent totals.

    ``energy_j`` is the device's compute energy; ``radio_energy_j`` its radio's (per Mbit moved plus
    active power over the link time); ``device_energy_j`` their sum; ``data_usd`` the mobile data
    the user pays their carrier for (:func:`.hardware.data_usd`).
    """
    edge_s = totals["edge_flops"] / device.flops_per_s
    link_s = (8 * totals["bytes_up"] / link.up_bps + 8 * totals["bytes_down"] / link.down_bps
              + totals["round_trips"] * link.rtt_s)
    gpu_s = totals["cloud_flops"] / gpu.flops_per_s
    energy = totals["edge_flops"] * device.joules_per_flop
    radio = radio_energy_j(totals["bytes_up"], totals["bytes_down"], link_s, link.up_w_per_mbps,
                           link.down_w_per_mbps, link.active_w)
    return {
        "edge_s": edge_s,
        "energy_j": energy,
        "radio_energy_j": radio,
        "device_energy_j": energy + radio,
        "link_s": link_s,
        "cloud_gpu_s": gpu_s,
        "usd": gpu_usd(gpu_s, gpu.usd_per_hour),
        "time_s": edge_s + link_s + gpu_s,
        "data_usd": data_usd(totals["bytes_up"] + totals["bytes_down"], link.data_usd_per_gb),
    }
