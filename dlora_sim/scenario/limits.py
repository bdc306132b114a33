"""How big a scenario may be: refused at validation, before any work starts, with the estimate.

A few characters of TOML can ask for 10^12 steps, 10^9 devices or outages every microsecond,
and the simulator would grow its memory until the machine gives up. What it holds grows with
four products, each estimated here per strategy from record sizes measured with ``tracemalloc``
on ``paper-default`` (rounded up):

- a record per device (its state, statistics and result rows);
- a record per applied device-step (the scheduler's update record and the KR rounds);
- a record per timeline event of the sampled devices (about 8 per step at ``step``
  granularity, about 8 per PEFT module per step at ``module`` granularity);
- an offline interval per outage, drawn once per device before the run.

A scenario whose estimate exceeds :data:`MEMORY_LIMIT_BYTES` is refused, naming the field that
drives the largest part (of a product, its larger factor). Separately, building the network finds each group's path by a search
over every group's access network, so its time grows with groups²: :data:`MAX_GROUPS` keeps it
well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dlora_sim.scenario import _files

if TYPE_CHECKING:
    from dlora_sim.scenario.models import Scenario

MEMORY_LIMIT_BYTES = 8 * 10**9
MAX_GROUPS = 1_000
BYTES_PER_DEVICE = 5_000
BYTES_PER_DEVICE_STEP = 250
BYTES_PER_TIMELINE_EVENT = 300
TIMELINE_EVENTS_PER_STEP = 8
BYTES_PER_OUTAGE = 150


@dataclass(frozen=True)
class Part:
    """One part of the memory estimate: its bytes, the field that drives it and how it arose."""

    bytes: float
    field: str
    detail: str


def too_many_groups(n_groups: int) -> str | None:
    """Why ``n_groups`` fleet groups are refused, or None."""
    if n_groups <= MAX_GROUPS:
        return None
    return (f"{n_groups:,} groups, more than {MAX_GROUPS:,}: each group is its own access network "
            f"and finding every group's path to the cloud grows with groups² (about {n_groups**2:.1e} "
            "steps here); merge groups that share device, link and region into one with a larger count")


def memory_problem(scenario: Scenario) -> tuple[str, str] | None:
    """``(field, problem)`` when the run's estimated memory exceeds the limit, else None."""
    parts = estimate(scenario)
    total = sum(part.bytes for part in parts)
    if total <= MEMORY_LIMIT_BYTES:
        return None
    worst = max(parts, key=lambda part: part.bytes)
    return worst.field, (f"the run would hold about {_size(total)} in memory, above the limit of "
                         f"{_size(MEMORY_LIMIT_BYTES)}; most of it from {worst.detail}")


def estimate(scenario: Scenario) -> list[Part]:
    """The parts of the memory estimate of simulating ``scenario`` (every strategy)."""
    job, fleet, run = scenario.job, scenario.fleet, scenario.run
    strategies, devices, steps = len(run.strategies), fleet.device_count, job.total_steps
    biggest = max(range(len(fleet.groups)), key=lambda i: fleet.groups[i].count)
    count_field = f"fleet.groups.{biggest}.count"
    steps_field = "job.steps" if job.steps is not None else "job.target_accuracy"
    sampled = min(run.timeline_sample_devices, devices)
    per_step = TIMELINE_EVENTS_PER_STEP * (job.module_count if run.granularity == "module" else 1)
    parts = [
        Part(strategies * devices * BYTES_PER_DEVICE, count_field,
             f"{devices:,} devices × {strategies} strategies"),
        Part(strategies * devices * steps * BYTES_PER_DEVICE_STEP,
             steps_field if steps >= devices else count_field,
             f"{steps:,} steps × {devices:,} devices × {strategies} strategies = "
             f"{strategies * devices * steps:.2e} device-steps"),
        Part(strategies * sampled * steps * per_step * BYTES_PER_TIMELINE_EVENT,
             steps_field if steps >= sampled else "run.timeline_sample_devices",
             f"the timeline of {sampled:,} sampled devices × {steps:,} steps × {strategies} "
             f"strategies at about {per_step:,} events per step ({run.granularity} granularity)"),
    ]
    for index, group in enumerate(fleet.groups):
        per_device = outages_per_device(group.availability, run.horizon_s)
        if per_device:
            parts.append(Part(group.count * per_device * BYTES_PER_OUTAGE, f"fleet.groups.{index}.availability",
                              f"{group.count:,} devices × about {per_device:.2e} outages each within "
                              f"run.horizon_s = {run.horizon_s:g} s"))
    return parts


def outages_per_device(availability: object, horizon_s: float) -> float:
    """Expected offline intervals of one device of a group within the horizon (0 if always on)."""
    kind = getattr(availability, "kind", "always")
    if kind == "markov":
        cycle_s = availability.mean_online_s + availability.mean_offline_s  # type: ignore[attr-defined]
        return horizon_s / cycle_s + 1.0
    if kind == "trace":
        traces = _files.load_trace_cached(availability.file)  # type: ignore[attr-defined]
        return sum(len(trace) + 1 for trace in traces) / len(traces)
    return 0.0


def _size(n_bytes: float) -> str:
    """``1.2e+04 TB``-style sizes: one significant unit, so absurd estimates stay readable."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{value:,.1f} {unit}" if value < 1e6 else f"{value:.1e} {unit}"
    return f"{n_bytes / 1e3:,.0f} kB"
