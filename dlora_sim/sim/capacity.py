"""What the cloud and the shared network can hold, as both engines need it before a run.

Shared-link capacities per direction, the number of sessions whose activations fit in the GPU
pool's memory, and which devices can hold what a strategy keeps on them: read from the
scenario and the cost model once, by the ``step`` engine (as SimPy resources) and by the
``segment`` engine (as plain numbers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlora_sim import cost
from dlora_sim.errors import InputError
from dlora_sim.sim.network import build_topology
from dlora_sim.sim.rates import RateSchedule

__all__ = ["shared_capacities", "shared_schedules", "memory_slot_count", "fits_on_devices"]


def shared_capacities(scenario: Any) -> dict[str, float]:
    """Capacity of each direction of each shared link, in bytes/s."""
    topology = build_topology(scenario)
    out: dict[str, float] = {}
    for link in topology.links.values():
        out[f"{link.id}:up"] = link.capacity_bps / 8.0
        out[f"{link.id}:down"] = link.capacity_bps / 8.0
    return out


def shared_schedules(scenario: Any) -> dict[str, RateSchedule]:
    """The shared link directions whose capacity follows a trace (``network.link_traces``), in
    bytes/s.

    A link trace names an access network or a region (built-in tree) or a GraphML edge, which is
    the link in whichever orientation the groups' paths cross it. A file of several traces gives
    the link one drawn with the run seed (stream: the link as named, purpose
    ``link-bandwidth-trace``), like a ``"random"`` offset (``link-bandwidth-offset``).
    """
    from dlora_sim.sim.fleet import group_stream

    traces = scenario.network.link_traces
    if not traces:
        return {}
    topology = build_topology(scenario)
    region_of = {group.access_node: group.region for group in scenario.fleet.groups}
    seed = scenario.run.seed
    out: dict[str, RateSchedule] = {}
    for spec in traces:
        if spec.selector == "access":
            name = f"access:{spec.access}"
            ids = [f"{name}->region:{region_of[spec.access]}"]
        elif spec.selector == "region":
            name = f"region:{spec.region}"
            ids = [f"{name}->cloud"]
        else:
            u, v = spec.edge
            name = f"edge:{u}|{v}"
            ids = [f"{u}->{v}", f"{v}->{u}"]
        ids = [i for i in ids if i in topology.links]
        pick = float(group_stream(seed, name, "link-bandwidth-trace").random())
        phase = float(group_stream(seed, name, "link-bandwidth-offset").random())
        factor = spec.scale * 1e6 / 8.0
        for direction in ("up", "down"):
            choices = spec.traces(direction)
            if not choices:
                continue
            k = min(int(pick * len(choices)), len(choices) - 1)
            trace = choices[k]
            offset = phase * trace.duration_s if spec.offset_s == "random" else float(spec.offset_s)
            schedule = RateSchedule.from_trace(trace, factor, spec.mode == "looped", offset,
                                               (str(getattr(spec, direction)), trace.name, factor, spec.mode, offset))
            for link_id in ids:
                out[f"{link_id}:{direction}"] = schedule
    return out


def memory_slot_count(scenario: Any, spec: Any, strategy: str) -> int | None:
    """Sessions that fit in the pool's GPU memory at once (None for edge-only: no cloud).

    Raises:
        InputError: not one session fits beside the frozen weights on a GPU.
    """
    if strategy == "edge-only":
        return None
    gpu = scenario.cloud.gpu_spec
    per_gpu = cost.sessions_per_gpu(spec, strategy, gpu)
    if per_gpu < 1:
        raise InputError(
            f"cloud.memory_gib: {strategy} needs {cost.cloud_weight_bytes(spec, strategy) / 2**30:.1f} GiB of "
            f"weights + {cost.cloud_session_bytes(spec, strategy) / 2**30:.1f} GiB per session on one GPU, "
            f"but a {gpu.name} has {gpu.memory_bytes / 2**30:.1f} GiB")
    return int(min(per_gpu * scenario.cloud.count, 2**31 - 1))


def fits_on_devices(scenario: Any, strategy: str, memory_bytes: Any) -> np.ndarray:
    """Which devices hold what the strategy keeps on them: weights and trainer state (the
    whole model for edge-only and fed-lora; activations not counted)."""
    needed_bytes = cost.edge_weight_bytes(scenario.job.to_job_spec(), strategy)
    return np.asarray(memory_bytes, dtype=float) >= needed_bytes
