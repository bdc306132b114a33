"""What one device must do per step and per KR round, read from the cost model (and only there).

The cost model is the one source of truth for per-step bytes, FLOPs and round trips; this
module only reshapes its answers into the plain tuples the device process replays:
``step_exchanges`` for ``module`` granularity (one event per round trip) and their sum,
``step_cost``, for ``step`` granularity (one aggregated exchange carrying all round trips).

The one number the engine adds is ``weight_bytes`` of a cloud request, for the GPU roofline in
:mod:`dlora_sim.sim.cloud`: the frozen weights a request streams from GPU memory, taken as
``cloud_flops / (2 * tokens) * dtype_bytes`` (2 FLOPs per weight per token per pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dlora_sim import cost

__all__ = ["Exchange", "StepWork", "KRWork", "step_work", "kr_work", "NO_KR_STRATEGIES"]

#: strategies whose active set never changes (no KR rounds, no killed modules)
NO_KR_STRATEGIES = ("cloud-only", "edge-only", "dlora-all")


@dataclass(frozen=True)
class Exchange:
    """One round trip: edge computes, sends ``up_bytes``, the cloud computes, sends ``down_bytes``."""

    edge_flops: float
    up_bytes: float
    cloud_flops: float
    weight_bytes: float
    down_bytes: float
    round_trips: int


@dataclass(frozen=True)
class StepWork:
    """One training step as exchanges (``module`` granularity) and as one sum (``step``)."""

    exchanges: tuple[Exchange, ...]
    total: Exchange


@dataclass(frozen=True)
class KRWork:
    """KR's own cost at one round: the probe batch (with the norm FLOPs on the edge), as
    exchanges and as their sum, plus the weights uploaded per killed module (``offload``)."""

    probe: StepWork
    kill_upload_bytes: float


def _weight_bytes(cloud_flops: float, tokens: int, dtype_bytes: int) -> float:
    return cloud_flops / (2.0 * tokens) * dtype_bytes if tokens > 0 else 0.0


def _exchange(item: Any, tokens: int, dtype_bytes: int) -> Exchange:
    cloud_flops = float(item.cloud_flops)
    return Exchange(
        edge_flops=float(item.edge_flops),
        up_bytes=float(item.bytes_up),
        cloud_flops=cloud_flops,
        weight_bytes=_weight_bytes(cloud_flops, tokens, dtype_bytes),
        down_bytes=float(item.bytes_down),
        round_trips=int(item.round_trips),
    )


def step_work(job: Any, strategy: str, n_active: int | None) -> StepWork:
    """The step of ``strategy`` with ``n_active`` modules, from ``cost.step_exchanges``/``step_cost``."""
    return _step_work(job, strategy, n_active)


@lru_cache(maxsize=4096)
def _step_work(job: Any, strategy: str, n_active: int | None) -> StepWork:
    tokens = int(job.batch) * int(job.seq_len)
    dtype_bytes = int(job.dtype_bytes)
    parts = tuple(_exchange(e, tokens, dtype_bytes) for e in cost.step_exchanges(job, strategy, n_active=n_active))
    total = _exchange(cost.step_cost(job, strategy, n_active=n_active), tokens, dtype_bytes)
    return StepWork(parts, total)


def kr_work(job: Any, strategy: str) -> KRWork:
    """KR's per-round cost for ``strategy`` from ``cost.kr_round_cost`` (zero without KR)."""
    return _kr_work(job, strategy)


@lru_cache(maxsize=256)
def _kr_work(job: Any, strategy: str) -> KRWork:
    tokens = int(job.batch) * int(job.seq_len)
    dtype_bytes = int(job.dtype_bytes)
    if strategy in NO_KR_STRATEGIES:
        zero = Exchange(0.0, 0.0, 0.0, 0.0, 0.0, 0)
        return KRWork(StepWork((), zero), 0.0)
    rc = cost.kr_round_cost(job, strategy)
    parts = [_exchange(e, tokens, dtype_bytes) for e in rc.probe_exchanges]
    norm_flops = float(rc.norm_edge_flops)
    total = _exchange(rc.probe, tokens, dtype_bytes)
    # The norms are edge work of the round: add them to the probe's first exchange and its sum.
    if norm_flops:
        if parts:
            first = parts[0]
            parts[0] = Exchange(first.edge_flops + norm_flops, first.up_bytes, first.cloud_flops,
                                first.weight_bytes, first.down_bytes, first.round_trips)
        else:
            parts = [Exchange(norm_flops, 0.0, 0.0, 0.0, 0.0, 0)]
        total = Exchange(total.edge_flops + norm_flops, total.up_bytes, total.cloud_flops,
                         total.weight_bytes, total.down_bytes, total.round_trips)
    return KRWork(StepWork(tuple(parts), total), float(rc.kill_upload_bytes))
