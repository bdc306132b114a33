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

__all__ = ["shared_capacities", "memory_slot_count", "fits_on_devices"]


def shared_capacities(scenario: Any) -> dict[str, float]:
    """Capacity of each direction of each shared link, in bytes/s."""
    topology = build_topology(scenario)
    out: dict[str, float] = {}
    for link in topology.links.values():
        out[f"{link.id}:up"] = link.capacity_bps / 8.0
        out[f"{link.id}:down"] = link.capacity_bps / 8.0
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
