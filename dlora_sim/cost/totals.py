"""Whole-job accounting for one configuration, written plainly (the reference for CostModel).

A job is: warm-up steps with every module active, then steady-state steps with B active, plus
KR's own work at each round, plus one-off set-up transfers. :class:`~dlora_sim.cost.model.CostModel`
computes the same numbers for a whole grid at once; the tests hold the two together and the
benchmark times one against the other.

KR schedule (``I = kr_interval_steps``): warm-up lasts ``kr_warmup_rounds * I`` steps. The first
decision (at the end of warm-up) kills ``N - B`` modules; every later round, one per ``I`` steps
while steps remain, runs a probe batch and kills/revives ``churn`` modules. Norms are computed at
every decision round. Each decision round costs one round trip for its commands; under
``offload`` every kill uploads the module's weights.
"""

from __future__ import annotations

import math

from dlora_sim.cost.hardware import CloudGPU, EdgeDevice, Link
from dlora_sim.cost.job import JobSpec, check_strategy
from dlora_sim.cost.protocol import kr_round_cost, step_cost

# bytes of trainer state per trainable parameter besides the weight itself: fp32 master copy,
# AdamW m and v (4 + 4 + 4)
OPTIMIZER_STATE_BYTES_PER_PARAM = 12
METRICS = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "module_bytes")


def kr_schedule(job: JobSpec) -> dict[str, int]:
    """Step counts of the job: warm-up steps, steady steps, decision rounds, probe rounds."""
    warm = min(job.steps, job.kr_warmup_rounds * job.kr_interval_steps)
    steady = job.steps - warm
    later = max(0, math.ceil(steady / job.kr_interval_steps) - 1)
    return {"warm_steps": warm, "steady_steps": steady, "decisions": (1 + later) if steady else 0,
            "later_rounds": later}


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
    full = step_cost(job, strategy, n_active=job.table.n_modules) if strategy.startswith("dlora") \
        else step_cost(job, strategy)
    out = {m: job.steps * getattr(full, m) for m in METRICS}
    out["kr_bytes"] = 0.0
    out["kr_edge_flops"] = 0.0
    out["warmup_extra_bytes"] = 0.0
    out["warmup_extra_edge_flops"] = 0.0
    if strategy in ("dlora-kr", "dlora-random"):
        sched = kr_schedule(job)
        steady = step_cost(job, strategy)
        out = {m: sched["warm_steps"] * getattr(full, m) + sched["steady_steps"] * getattr(steady, m)
               for m in METRICS}
        kr = kr_round_cost(job, strategy)
        kills = (kr.first_kills if sched["decisions"] else 0) + sched["later_rounds"] * kr.churn_kills
        probe = kr.probe
        kr_up = kills * kr.kill_upload_bytes + sched["later_rounds"] * probe.bytes_up
        kr_down = sched["later_rounds"] * probe.bytes_down
        kr_edge = sched["later_rounds"] * probe.edge_flops + sched["decisions"] * kr.norm_edge_flops
        out["edge_flops"] += kr_edge
        out["cloud_flops"] += sched["later_rounds"] * probe.cloud_flops
        out["bytes_up"] += kr_up
        out["bytes_down"] += kr_down
        out["round_trips"] += sched["decisions"] + sched["later_rounds"] * probe.round_trips
        out["kr_bytes"] = kr_up + kr_down
        out["kr_edge_flops"] = kr_edge
        # what warm-up costs beyond the same steps at B active
        out["warmup_extra_bytes"] = sched["warm_steps"] * (full.bytes_total - steady.bytes_total)
        out["warmup_extra_edge_flops"] = sched["warm_steps"] * (full.edge_flops - steady.edge_flops)
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
