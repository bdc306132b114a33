"""``granularity = "segment"``: a fleet advanced in closed form between its state changes.

:func:`run_segment_strategy` has the ``step`` engine's signature and returns the same
:class:`~dlora_sim.sim.results.StrategyOutcome`, so results, dashboards and sweeps read either.
How it works: :mod:`.engine`; the job's exchanges as running sums: :mod:`.rows`; shares of a
contended GPU pool and shared links: :mod:`.fluid`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlora_sim import cost
from dlora_sim.errors import InputError
from dlora_sim.sim.capacity import fits_on_devices, memory_slot_count
from dlora_sim.sim.fleet import Fleet
from dlora_sim.sim.results import StrategyOutcome
from dlora_sim.sim.segment.engine import run_segment

__all__ = ["run_segment_strategy"]


def run_segment_strategy(scenario: Any, strategy: str, fleet: Fleet,
                         on_progress: Callable[[float], None] | None = None) -> StrategyOutcome:
    """Simulate one strategy on ``fleet`` at ``segment`` granularity.

    Raises:
        InputError: the scenario asks for what the segment engine does not model (a scheduler
            admission limit below the fleet, or GPU memory that cannot hold every session).
    """
    spec = scenario.job.to_job_spec()
    feasible = fits_on_devices(scenario, strategy, fleet.memory_bytes)
    n_live = int(feasible.sum())
    limit = scenario.scheduler.admission_limit
    if limit is not None and limit < n_live:
        raise InputError(f"scheduler.admission_limit: {limit} is below the {n_live:,} devices that run; "
                         'granularity = "segment" does not model waiting for admission (use "step")')
    slots = memory_slot_count(scenario, spec, strategy)
    if slots is not None and slots < n_live and scenario.cloud.memory_full == "recompute":
        raise InputError(f"cloud.memory_full: {strategy} fits {slots:,} sessions in GPU memory, fewer than the "
                         f"{n_live:,} devices that run; granularity = \"segment\" models waiting for memory "
                         '("queue") but not recomputing (use "step")')
    out = run_segment(scenario, strategy, fleet, feasible, slots, on_progress)
    gpu = scenario.cloud.gpu_spec
    schedule = out.schedule
    return StrategyOutcome(
        strategy=strategy,
        devices=fleet,
        counters=out.counters,
        completion_s=out.completion_s,
        feasible=feasible,
        schedule=schedule,
        pool_busy_s=out.pool_busy_s,
        pool_lost_s=out.pool_lost_s,
        pool_batches=out.pool_batches,
        pool_batched_requests=out.pool_batched_requests,
        usd_per_gpu_hour=float(gpu.usd_per_hour),
        n_gpus=scenario.cloud.count,
        end_s=out.end_s,
        queue_delivered=out.queue_delivered,
        queue_duplicates=out.queue_duplicates,
        queue_stale=0,
        steps_applied=out.steps_applied,
        memory_slots=slots,
        memory_peak_sessions=min(out.memory_peak, slots) if slots is not None else 0,
        session_bytes=cost.cloud_session_bytes(spec, strategy),
        weight_bytes_per_gpu=cost.cloud_weight_bytes(spec, strategy),
        peak_link_flows=out.peak_link_flows,
        timeline=[],
        steady_active=min((r.n_active for r in schedule.rounds), default=scenario.job.module_count),
    )
