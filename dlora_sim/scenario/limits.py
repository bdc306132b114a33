"""How big a scenario may be: refused at validation, before any work starts, with the estimate.

A few characters of TOML can ask for 10^12 steps, 10^9 devices or outages every microsecond,
and the simulator would grow its memory until the machine gives up, or run for years. Before
anything is built, :func:`estimate` sizes the run per strategy in two currencies, each from the
scenario's numbers alone (a few products, well under a millisecond even for 10^9 devices):

- **memory**, from record sizes measured with ``tracemalloc`` (rounded up);
- **events**, the work the engine does: SimPy events for ``step`` and ``module`` granularity
  (counted on ``paper-default``: about 9 a device-step at ``step``, about 6 a round trip at
  ``module``), state changes for ``segment``.

Each granularity has its own small estimator (:data:`ESTIMATORS`), because what grows differs:

- ``step``: a record per device, per applied device-step, per timeline event of the sampled
  devices (about 8 a step) and per outage (every device's outages within the horizon are drawn
  before the run); events per device-step and per outage.
- ``module``: as ``step``, but a step is one exchange per round trip (about ``modules + 2`` of
  them), each several events, and the sampled timelines hold about 8 records per round trip.
- ``segment``: the fleet as columns (about 4 kB a device while a strategy runs, measured as the
  RSS slope from 500 to 8,000 devices, plus a few hundred bytes per strategy's results; outages
  are drawn in blocks as the devices reach them, so not held for the horizon); events are the
  state changes — each device's outages within the horizon, its KR rounds and checkpoints.

Links that follow a bandwidth trace (``bandwidth_trace``, ``network.link_traces``) add their
change points, which the engine applies while flows cross the link: a device link's changes per
second of its trace times the seconds it transfers (the job's bytes each way, from the cost
model, at the trace's mean rate, at most the horizon; a clipped trace at most its own change
points), a shared link's times the seconds any of its devices transfers (their sum, at most the
horizon), each change about :data:`EVENTS_PER_RATE_CHANGE` events (a shared link's more, for the
classes it re-times); and each trace row held in memory.

A scenario whose memory exceeds :func:`memory_limit_bytes` (half this machine's RAM, or of its
cgroup's limit if lower), or whose events exceed :data:`EVENT_LIMIT` (one day at an assumed rate
several times what the engine reaches), is refused with one line: the field that drives the
largest part (of a product, its larger factor) and the estimate. Outage intervals per device are
``horizon / (mean_online + mean_offline) + 1`` for ``markov`` availability, the trace's count for
``trace``.

Separately, building the network finds each group's path by a search over every group's access
network, so its time grows with groups²: :data:`MAX_GROUPS` keeps it well under a second.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dlora_sim.scenario import _files

if TYPE_CHECKING:
    from dlora_sim.scenario.bandwidth import BandwidthTraceSpec
    from dlora_sim.scenario.models import Scenario

MAX_GROUPS = 1_000

#: the share of the machine's memory a run may be estimated to hold
MEMORY_FRACTION = 0.5
#: the limit where the machine's memory cannot be read
FALLBACK_MEMORY_LIMIT_BYTES = 8 * 10**9

#: assumed SimPy events per second of the ``step``/``module`` engine: generous (measured
#: 2-5 x 10^4 on a 2-core machine, paper-default and phone-fleet-lte), so a refused run could not
#: finish within a day even on a machine several times faster
EVENTS_PER_S = 200_000
#: assumed state changes per second of the ``segment`` engine (vectorised over devices)
SEGMENT_EVENTS_PER_S = 2_000_000
#: the longest run accepted, in seconds of wall time at the assumed rates
MAX_RUN_S = 86_400
#: the most SimPy events a run may be estimated to take (a day at :data:`EVENTS_PER_S`)
EVENT_LIMIT = MAX_RUN_S * EVENTS_PER_S

# step and module granularity: memory
BYTES_PER_DEVICE = 5_000
BYTES_PER_DEVICE_STEP = 250
BYTES_PER_TIMELINE_EVENT = 300
TIMELINE_EVENTS_PER_STEP = 8
BYTES_PER_OUTAGE = 150
# step and module granularity: events
EVENTS_PER_STEP = 10  # measured 8.9 a device-step at step granularity
EVENTS_PER_ROUND_TRIP = 6  # module granularity: measured 6.1 (792 events a step, 130 round trips)
EVENTS_PER_OUTAGE = 4  # the interruption, the offline wait, the resumed session
# segment granularity (RSS slope of phone-fleet-lte from 500 to 8,000 devices, rounded up)
BYTES_PER_DEVICE_SEGMENT = 4_000  # one strategy's run at a time: columns, outage blocks, work arrays
BYTES_PER_DEVICE_RESULT_SEGMENT = 300  # each strategy's results row, kept to the end
SEGMENT_EVENTS_PER_OUTAGE = 2  # going offline, coming back
# traced links (step and module granularity)
EVENTS_PER_RATE_CHANGE = 2  # the timer and the flow's move to its new rate's class
EVENTS_PER_RETIMED_CLASS = 0.25  # a shared link's change re-times each class on it (a heap push)
BYTES_PER_TRACE_ROW = 100  # times and rates as arrays, merged, and as the schedule's lists


@dataclass(frozen=True)
class Part:
    """One part of an estimate: its amount (bytes or events), the field that drives it, how it arose."""

    amount: float
    field: str
    detail: str

    @property
    def bytes(self) -> float:  # the name of ``amount`` when only memory was estimated
        return self.amount


@dataclass(frozen=True)
class Estimate:
    """What a run would hold and do, in parts; ``events_per_s`` is the rate assumed for its events."""

    memory: tuple[Part, ...]
    events: tuple[Part, ...]
    events_per_s: float

    @property
    def total_bytes(self) -> float:
        return sum(part.amount for part in self.memory)

    @property
    def total_events(self) -> float:
        return sum(part.amount for part in self.events)

    @property
    def event_limit(self) -> float:
        return MAX_RUN_S * self.events_per_s


def too_many_groups(n_groups: int) -> str | None:
    """Why ``n_groups`` fleet groups are refused, or None."""
    if n_groups <= MAX_GROUPS:
        return None
    return (f"{n_groups:,} groups, more than {MAX_GROUPS:,}: each group is its own access network "
            f"and finding every group's path to the cloud grows with groups² (about {n_groups**2:.1e} "
            "steps here); merge groups that share device, link and region into one with a larger count")


def memory_limit_bytes() -> float:
    """:data:`MEMORY_FRACTION` of this machine's memory (its cgroup's limit where lower)."""
    return _memory_limit()[0]


@functools.cache
def _memory_limit() -> tuple[float, str]:
    """The limit and where it comes from, read once per process."""
    try:
        total = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        total = 0.0
    source = "this machine's memory"
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as file:
                text = file.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < (total or float("inf")):
            total, source = float(text), "this container's memory limit"
        break
    if total <= 0:
        return float(FALLBACK_MEMORY_LIMIT_BYTES), "the limit used where the machine's memory cannot be read"
    return MEMORY_FRACTION * total, f"{MEMORY_FRACTION:.0%} of {source}, {_size(total)}"


def memory_problem(scenario: Scenario) -> tuple[str, str] | None:
    """``(field, problem)`` when the run's estimated memory or events exceed their limits, else None."""
    found = estimate_run(scenario)
    limit, source = _memory_limit()
    total = found.total_bytes
    if total > limit:
        worst = max(found.memory, key=lambda part: part.amount)
        return worst.field, (f"the run would hold about {_size(total)} in memory, above the limit of "
                             f"{_size(limit)} ({source}); most of it from {worst.detail}")
    events, event_limit = found.total_events, found.event_limit
    if events > event_limit:
        worst = max(found.events, key=lambda part: part.amount)
        return worst.field, (f"the run would take about {events:.1e} events ({scenario.run.granularity} "
                             f"granularity), above the limit of {event_limit:.1e}: more than "
                             f"{MAX_RUN_S // 3600} hours even at an assumed {found.events_per_s:,.0f} events/s; "
                             f"most of them from {worst.detail}")
    return None


#: the reason a run is refused, under its more general name
size_problem = memory_problem


def estimate(scenario: Scenario) -> list[Part]:
    """The parts of the memory estimate of simulating ``scenario`` (every strategy)."""
    return list(estimate_run(scenario).memory)


def estimate_run(scenario: Scenario) -> Estimate:
    """Memory and events of simulating ``scenario`` (every strategy), by its granularity."""
    return ESTIMATORS.get(scenario.run.granularity, _step)(scenario)


# -------------------------------------------------------------------- one estimator per granularity


@dataclass(frozen=True)
class _Sizes:
    """The factors every estimator multiplies, and the fields they come from."""

    strategies: int
    devices: int
    steps: int
    sampled: int
    count_field: str
    steps_field: str

    @classmethod
    def of(cls, scenario: Scenario) -> _Sizes:
        job, fleet, run = scenario.job, scenario.fleet, scenario.run
        biggest = max(range(len(fleet.groups)), key=lambda i: fleet.groups[i].count)
        devices = fleet.device_count
        return cls(len(run.strategies), devices, job.total_steps, min(run.timeline_sample_devices, devices),
                   f"fleet.groups.{biggest}.count", "job.steps" if job.steps is not None else "job.target_accuracy")

    def device_steps(self) -> float:
        return float(self.strategies) * self.devices * self.steps

    def device_steps_field(self) -> str:
        return self.steps_field if self.steps >= self.devices else self.count_field

    def device_steps_detail(self) -> str:
        return (f"{self.steps:,} steps × {self.devices:,} devices × {self.strategies} strategies = "
                f"{self.device_steps():.2e} device-steps")


def _outage_parts(scenario: Scenario, per_outage: float, strategies: int) -> list[Part]:
    """``per_outage`` × (expected outages of each group within the horizon) × ``strategies``."""
    parts = []
    horizon_s = scenario.run.horizon_s
    for index, group in enumerate(scenario.fleet.groups):
        per_device = outages_per_device(group.availability, horizon_s)
        if per_device:
            parts.append(Part(strategies * group.count * per_device * per_outage, f"fleet.groups.{index}.availability",
                              f"{group.count:,} devices × about {per_device:.2e} outages each within "
                              f"run.horizon_s = {horizon_s:g} s{_cycle(group.availability)}"))
    return parts


def _per_step(scenario: Scenario, per_step: float, memory_per_event: float, events_per_step: float) -> Estimate:
    """``step`` and ``module``: one process per device, each step ``events_per_step`` events."""
    size = _Sizes.of(scenario)
    granularity = scenario.run.granularity
    timeline = float(size.strategies) * size.sampled * size.steps * per_step
    memory = [
        Part(size.strategies * size.devices * BYTES_PER_DEVICE, size.count_field,
             f"{size.devices:,} devices × {size.strategies} strategies"),
        Part(size.device_steps() * BYTES_PER_DEVICE_STEP, size.device_steps_field(), size.device_steps_detail()),
        Part(timeline * memory_per_event, size.steps_field if size.steps >= size.sampled else "run.timeline_sample_devices",
             f"the timeline of {size.sampled:,} sampled devices × {size.steps:,} steps × {size.strategies} "
             f"strategies at about {per_step:,.0f} records per step ({granularity} granularity)"),
        *_outage_parts(scenario, BYTES_PER_OUTAGE, 1),  # drawn once, shared by the strategies
    ]
    trace_memory, trace_events = _trace_parts(scenario)
    memory += trace_memory
    events = [
        Part(size.device_steps() * events_per_step, size.device_steps_field(),
             f"{size.device_steps_detail()} at about {events_per_step:,.0f} events each"),
        *_outage_parts(scenario, EVENTS_PER_OUTAGE, size.strategies),
        *trace_events,
    ]
    return Estimate(tuple(memory), tuple(events), EVENTS_PER_S)


def _busy_s(scenario: Scenario, bytes_per_s: float) -> dict[str, float]:
    """Per direction, the seconds one device transfers over all strategies at ``bytes_per_s``
    (each strategy's job bytes from the cost model, each at most the horizon)."""
    from dlora_sim import cost

    horizon_s = scenario.run.horizon_s
    spec = scenario.job.to_job_spec()
    out = {"up": 0.0, "down": 0.0}
    for strategy in scenario.run.strategies:
        totals = cost.job_totals(spec, strategy)
        for direction in out:
            moved = float(totals[f"bytes_{direction}"])
            out[direction] += min(horizon_s, moved / bytes_per_s) if bytes_per_s > 0 else horizon_s
    return out


def _changes_per_s(traces: tuple) -> float:
    """Mean change points per second over a file's traces (a constant trace: none)."""
    rates = [t.changes_per_period / t.duration_s for t in traces if t.duration_s > 0 and t.changes_per_period]
    return sum(rates) / len(traces) if rates else 0.0


def _trace_changes(scenario: Scenario, source: BandwidthTraceSpec, direction: str, busy_s: float, field: str,
                   rows: dict[str, tuple[int, str]]) -> tuple[float, float]:
    """Rate changes one direction of a trace makes while ``busy_s`` seconds of transfers run over
    it: (changes per second, changes); (0, 0) where that direction has no trace. A clipped trace
    stops changing after one period per strategy. The trace files met are noted in ``rows``
    (rows read, the first field naming them), for the memory estimate of loading them."""
    traces = source.traces(direction)
    if not traces:
        return 0.0, 0.0
    rows.setdefault(str(getattr(source, direction)), (sum(len(t.times_s) for t in traces), field))
    per_s = _changes_per_s(traces)
    changes = busy_s * per_s
    if source.mode == "clipped":
        changes = min(changes, len(scenario.run.strategies) * max(t.changes_per_period for t in traces))
    return per_s, changes


def _trace_parts(scenario: Scenario) -> tuple[list[Part], list[Part]]:
    """Memory of the trace rows, and events of the change points of every traced link."""
    memory: list[Part] = []
    events: list[Part] = []
    rows: dict[str, tuple[int, str]] = {}
    groups = scenario.fleet.groups
    busy_by_group: dict[int, dict[str, float]] = {}
    if not scenario.network.link_traces and all(g.bandwidth_trace is None for g in groups):
        return memory, events
    shares = _fair_shares_bps(scenario)
    for index, group in enumerate(groups):
        spec = group.bandwidth_trace
        goodput = 1.0 - group.link.loss_rate
        constant = {"up": group.link.up_bps, "down": group.link.down_bps}
        busy = {}
        for direction in ("up", "down"):
            mean_bps = spec.mean_bps(direction) if spec is not None else None
            rate = min((mean_bps if mean_bps is not None else constant[direction]) * goodput,
                       shares.get((group.name, direction), float("inf"))) / 8.0
            busy[direction] = _busy_s(scenario, rate)[direction]
        busy_by_group[index] = busy
        if spec is None:
            continue
        for direction in ("up", "down"):
            field = f"fleet.groups.{index}.bandwidth_trace.{direction}"
            per_s, per_device = _trace_changes(scenario, spec, direction, busy[direction], field, rows)
            if per_device:
                events.append(Part(group.count * per_device * EVENTS_PER_RATE_CHANGE, field,
                                   f"{group.count:,} devices × about {per_device:.2e} {direction} trace changes each "
                                   f"({busy[direction]:.2e} s transferring over the strategies × {per_s:.3g} changes/s, "
                                   f"{getattr(spec, direction).name} {spec.mode})"))
    for index, trace in enumerate(scenario.network.link_traces):
        crossing = [i for i, g in enumerate(groups) if _crosses(scenario, trace, g)]
        classes = sum(groups[i].count if groups[i].bandwidth_trace is not None else 1 for i in crossing)
        for direction in ("up", "down"):
            field = f"network.link_traces.{index}.{direction}"
            busy_s = min(scenario.run.horizon_s * len(scenario.run.strategies),
                         sum(groups[i].count * busy_by_group[i][direction] for i in crossing))
            per_s, changes = _trace_changes(scenario, trace, direction, busy_s, field, rows)
            if changes:
                per_change = EVENTS_PER_RATE_CHANGE + EVENTS_PER_RETIMED_CLASS * classes
                events.append(Part(changes * per_change, field,
                                   f"about {changes:.2e} {direction} changes of a shared link ({busy_s:.2e} s busy "
                                   f"over the strategies × {per_s:.3g} changes/s, {getattr(trace, direction).name} "
                                   f"{trace.mode}) × about {per_change:,.0f} events each"))
    for path, (n_rows, field) in rows.items():
        memory.append(Part(float(n_rows) * BYTES_PER_TRACE_ROW, field, f"{n_rows:,} rows of bandwidth trace {path}"))
    return memory, events


def _fair_shares_bps(scenario: Scenario) -> dict[tuple[str, str], float]:
    """Built-in tree: each group's share (bit/s) of its access and region links per direction, if
    every device of theirs transferred at once (a traced link at its mean); GraphML: none."""
    net = scenario.network
    if net.graphml is not None:
        return {}
    groups = scenario.fleet.groups
    per_access: dict[str, int] = {}
    per_region: dict[str, int] = {}
    for group in groups:
        per_access[group.access_node] = per_access.get(group.access_node, 0) + group.count
        per_region[group.region] = per_region.get(group.region, 0) + group.count
    traced = {(t.selector, t.access if t.selector == "access" else t.region): t for t in net.link_traces}
    out = {}
    for group in groups:
        for direction in ("up", "down"):
            caps = []
            for kind, name, capacity, count in (("access", group.access_node, net.access_capacity_bps, per_access),
                                                ("region", group.region, net.region_capacity_bps, per_region)):
                trace = traced.get((kind, name))
                mean = trace.mean_bps(direction) if trace is not None else None
                caps.append((mean if mean is not None else capacity) / count[name])
            out[(group.name, direction)] = min(caps)
    return out


def _crosses(scenario: Scenario, trace: object, group: object) -> bool:
    """Whether ``group``'s path to the cloud may cross the traced shared link (built-in tree:
    exactly; GraphML: every group, an upper bound that needs no path search)."""
    selector = getattr(trace, "selector")
    if selector == "access":
        return getattr(group, "access_node") == getattr(trace, "access")
    if selector == "region":
        return getattr(group, "region") == getattr(trace, "region")
    return True


def _step(scenario: Scenario) -> Estimate:
    """``step``: one aggregated exchange per step."""
    return _per_step(scenario, TIMELINE_EVENTS_PER_STEP, BYTES_PER_TIMELINE_EVENT, EVENTS_PER_STEP)


def _module(scenario: Scenario) -> Estimate:
    """``module``: an exchange per round trip — about one per PEFT module, plus the head and the
    embedding — each several events."""
    round_trips = scenario.job.module_count + 2
    return _per_step(scenario, TIMELINE_EVENTS_PER_STEP * scenario.job.module_count, BYTES_PER_TIMELINE_EVENT,
                     EVENTS_PER_ROUND_TRIP * round_trips + EVENTS_PER_STEP)


def _segment(scenario: Scenario) -> Estimate:
    """``segment``: columns per device; events are state changes (outages, KR rounds, checkpoints)."""
    size = _Sizes.of(scenario)
    job, sched = scenario.job, scenario.scheduler
    per_device = BYTES_PER_DEVICE_SEGMENT + size.strategies * BYTES_PER_DEVICE_RESULT_SEGMENT
    memory = [Part(float(size.devices) * per_device, size.count_field,
                   f"{size.devices:,} devices at about {per_device:,} bytes each (segment granularity: "
                   f"{BYTES_PER_DEVICE_SEGMENT:,} while a strategy runs, {BYTES_PER_DEVICE_RESULT_SEGMENT} "
                   f"per strategy's results × {size.strategies})")]
    kr_interval = getattr(job, "kr_interval_steps", None) or size.steps
    changes = size.steps / kr_interval + size.steps / sched.checkpoint_interval_steps + 1
    events = [
        Part(float(size.strategies) * size.devices * changes, size.device_steps_field(),
             f"{size.devices:,} devices × {size.strategies} strategies × about {changes:,.0f} KR rounds "
             f"and checkpoints each over {size.steps:,} steps"),
        *_outage_parts(scenario, SEGMENT_EVENTS_PER_OUTAGE, size.strategies),
    ]
    return Estimate(tuple(memory), tuple(events), SEGMENT_EVENTS_PER_S)


#: granularity -> its estimator (an unknown one is sized as ``step``)
ESTIMATORS: dict[str, Callable[[Scenario], Estimate]] = {"step": _step, "module": _module, "segment": _segment}


# --------------------------------------------------------------------------------------- helpers


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


def _cycle(availability: object) -> str:
    if getattr(availability, "kind", None) != "markov":
        return ""
    on, off = availability.mean_online_s, availability.mean_offline_s  # type: ignore[attr-defined]
    return f" (mean_online_s + mean_offline_s = {on:g} + {off:g} s)"


def _size(n_bytes: float) -> str:
    """``1.2e+04 TB``-style sizes: one significant unit, so absurd estimates stay readable."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{value:,.1f} {unit}" if value < 1e6 else f"{value:.1e} {unit}"
    return f"{n_bytes / 1e3:,.0f} kB"
