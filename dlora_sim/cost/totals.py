"""Whole-job accounting for one configuration, written plainly (the reference for CostModel).

A job is: warm-up steps with every module active, then steady-state steps with B active, plus
KR's own work at each round, plus one-off set-up transfers. :class:`~dlora_sim.cost.model.CostModel`
computes the same numbers for a whole grid at once; the tests hold the two together and the
benchmark times one against the other.

KR's timetable (warm-up windows, rounds, which rounds probe, kills and revivals) is the job's
:func:`~dlora_sim.cost.job.kr_schedule`, the same one the simulator replays; this module only
prices it: every training step at its active count, every round's own exchanges
(:func:`~dlora_sim.cost.protocol.kr_round_exchanges`), and the one-off set-up download.
"""

from __future__ import annotations

import math

from dlora_sim.cost.hardware import CloudGPU, EdgeDevice, Link
from dlora_sim.cost.job import DLORA_STRATEGIES, JobSpec, check_strategy, kr_schedule
from dlora_sim.cost.protocol import StepCost, kr_round_exchanges, step_cost

# bytes of trainer state per trainable parameter besides the weight itself: fp32 master copy,
# AdamW m and v (4 + 4 + 4)
OPTIMIZER_STATE_BYTES_PER_PARAM = 12
METRICS = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "module_bytes")


def setup_bytes_down(job: JobSpec, strategy: str) -> float:
    """One-off downloads: what the device must fetch before (or after) training.

    edge-only: the whole base model; DLoRA: the embedding table (+ the head if it is on the
    device); cloud-only: the trained PEFT weights at the end.
    """
    s, ds = job.shape, job.dtype_bytes
    head_dim = s.vocab if job.head_out_dim is None else job.head_out_dim
    if strategy == "edge-only":
        return float(s.base_params() * ds)
    if strategy == "cloud-only":
        return float(job.table.params.sum() * ds)
    head = head_dim * s.d_model if job.head_placement == "edge" else 0
    return float((s.vocab * s.d_model + head) * ds)


def edge_weight_bytes(job: JobSpec, strategy: str) -> float:
    """Weights + trainer state the device holds (activations not counted)."""
    trainable = float(job.table.params.sum()) * (job.dtype_bytes + OPTIMIZER_STATE_BYTES_PER_PARAM)
    if strategy == "cloud-only":
        return 0.0
    if strategy == "edge-only":
        return float(job.shape.base_params() * job.dtype_bytes) + trainable
    return setup_bytes_down(job, strategy) + trainable


def job_totals(job: JobSpec, strategy: str) -> dict[str, float]:
    """Per-job totals of ``strategy`` (hardware-independent quantities).

    Returns:
        ``edge_flops, cloud_flops, bytes_up, bytes_down, round_trips, module_bytes`` over the
        job, with ``kr_bytes`` and ``kr_edge_flops`` (probes, norms, kill uploads),
        ``warmup_extra_bytes``/``warmup_extra_edge_flops`` (warm-up beyond B active) and
        ``setup_bytes_down``.
    """
    check_strategy(strategy)
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
    setup = setup_bytes_down(job, strategy)
    out["bytes_down"] += setup
    out["round_trips"] += 1 if setup else 0
    out["setup_bytes_down"] = setup
    return out


def priced(totals: dict[str, float], device: EdgeDevice, link: Link, gpu: CloudGPU) -> dict[str, float]:
    """Seconds, energy and money for hardware-independent totals.

    ``energy_j`` is the device's compute energy; ``radio_energy_j`` its radio's (per Mbit moved plus
    active power over the link time); ``device_energy_j`` their sum.
    """
    edge_s = totals["edge_flops"] / device.flops_per_s
    link_s = (8 * totals["bytes_up"] / link.up_bps + 8 * totals["bytes_down"] / link.down_bps
              + totals["round_trips"] * link.rtt_s)
    gpu_s = totals["cloud_flops"] / gpu.flops_per_s
    energy = totals["edge_flops"] * device.joules_per_flop
    radio = (link.up_w_per_mbps * 8e-6 * totals["bytes_up"] + link.down_w_per_mbps * 8e-6 * totals["bytes_down"]
             + link.active_w * link_s)
    return {
        "edge_s": edge_s,
        "energy_j": energy,
        "radio_energy_j": radio,
        "device_energy_j": energy + radio,
        "link_s": link_s,
        "cloud_gpu_s": gpu_s,
        "usd": gpu_s / 3600.0 * gpu.usd_per_hour,
        "time_s": edge_s + link_s + gpu_s,
    }
