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

__all__ = ["Exchange", "StepWork", "step_work", "kr_round_work", "sync_work", "with_recompute"]


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


def kr_round_work(job: Any, kr_round: Any) -> StepWork:
    """One KR round of the job's schedule, from ``cost.kr_round_exchanges`` (probe, norms, decision
    with its kill uploads)."""
    return _kr_round_work(job, kr_round)


@lru_cache(maxsize=1024)
def _kr_round_work(job: Any, kr_round: Any) -> StepWork:
    tokens = int(job.probe_samples) * int(job.seq_len)
    dtype_bytes = int(job.dtype_bytes)
    items = cost.kr_round_exchanges(job, kr_round)
    parts = tuple(_exchange(e, tokens, dtype_bytes) for e in items)
    total = _exchange(cost.StepCost.of(items), tokens, dtype_bytes)
    return StepWork(parts, total)


def sync_work(job: Any, strategy: str) -> StepWork | None:
    """The strategy's periodic exchange (a federated round), from its ``sync_exchanges``; None
    for strategies without one."""
    items = cost.get_strategy(strategy).sync_exchanges(job)
    if not items:
        return None
    tokens = int(job.batch) * int(job.seq_len)
    parts = tuple(_exchange(e, tokens, int(job.dtype_bytes)) for e in items)
    return StepWork(parts, _exchange(cost.StepCost.of(items), tokens, int(job.dtype_bytes)))


def with_recompute(work: StepWork, extra_cloud_flops: float) -> StepWork:
    """``work`` for a session that kept no activations: the cloud adds ``extra_cloud_flops``
    (the forward again), spread over the exchanges in proportion to their cloud work."""
    total = work.total.cloud_flops
    scale = 1.0 + extra_cloud_flops / total if total else 1.0

    def scaled(e: Exchange) -> Exchange:
        return Exchange(e.edge_flops, e.up_bytes, e.cloud_flops * scale, e.weight_bytes, e.down_bytes, e.round_trips)

    return StepWork(tuple(scaled(e) for e in work.exchanges), scaled(work.total))
