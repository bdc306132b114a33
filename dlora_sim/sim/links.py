"""Transfers over shared links: each shared link is a pipe that flows split fairly.

Picture a motorway on-ramp: every phone has its own lane up to the ramp (its access link, never
shared), then all phones of a cell merge onto the same road (the access network's shared link),
then all cells onto the region's trunk to the cloud. While the road has room, each car drives
at the speed of its own lane; when the road is full, the road's capacity is split fairly.

The model (documented in docs/simulator.md):

- A flow has a size in bytes, a private rate (its device's link, bytes/s) and a list of shared
  link ids it crosses (each direction of a link is a separate id: links are full duplex).
- Each shared link computes a *fair level* by water-filling: if the private rates of its flows
  sum to at most its capacity the level is unlimited; otherwise the level ``L`` solves
  ``sum(min(rate_f, L)) = capacity``, so slow flows keep their rate and fast ones share the rest
  equally (max-min fairness on that link).
- A flow runs at ``min(private rate, level of each of its shared links)``. Levels are computed
  per link from the private rates (not the flows' rates on other links), an approximation of
  network-wide max-min fairness that is exact for one bottleneck per flow.
- Rates are recomputed when a flow starts, finishes or is cancelled, and only on the links it
  crosses; flows on unsaturated links are never touched, which keeps the common case cheap.

How it stays cheap on a saturated link with thousands of flows (each flow change costs
O(distinct private rates on its links + classes there × log + log flows), never O(flows)):

- A link keeps its flows' private rates as counts per distinct rate (a fleet has a few), so its
  water level is a pass over the distinct rates, not a sort of every flow.
- Flows with the same private rate and the same links form a *class*: at every instant they run
  at the same rate, ``min(private, levels)``. A class keeps a *virtual clock* ``V`` — the bytes
  each of its flows has moved since the clock started — and each flow its finish mark
  ``V(start) + size``. Flows of a class progress alike, so their order by finish mark never
  changes: a level change re-times the class (advance ``V``, one heap entry for its earliest
  flow), not each flow. A flow's remaining bytes are ``mark − V(now)``.
- One heap holds each class's earliest finish time (stale entries skipped when they surface)
  and one SimPy timer waits for the earliest of all.

Capacity that changes over time (a bandwidth trace, :mod:`dlora_sim.sim.rates`), shared exactly:

- A shared link may follow a :class:`~dlora_sim.sim.rates.RateSchedule`. While flows cross it,
  its next change point waits in a second heap (the same single timer serves both); at the
  change its capacity steps, its level is recomputed and the classes whose rate moved are
  re-timed (their virtual clocks advanced to the change first): O(distinct rates + classes on
  that link), never more than O(flows on it). An idle link keeps no change pending; the next
  flow finds where its schedule stands.
- A flow's private rate may follow a schedule too (a device's own traced link). At each change
  the flow moves, with its remaining bytes, to the class of its new private rate, a flow change
  on its links like a start or a finish. Between change points every rate is constant, so each
  flow's bytes are the integral of its rate, exactly, to float rounding.
- A rate of 0 (an outage in the trace) stalls the flows it limits until it rises again.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence

import simpy

from dlora_sim.sim.rates import Cursor, RateSchedule

__all__ = ["Flow", "FlowNetwork", "RateSchedule"]


class Flow:
    """One transfer in progress. ``done`` triggers (value: bytes delivered) when the last byte lands."""

    __slots__ = ("key", "size_bytes", "private_bps", "links", "done", "active", "_cls", "_mark", "_left", "_rate",
                 "_seq", "_cursor")

    def __init__(self, env: simpy.Environment, key: int, size_bytes: float, private_bps: float, links: tuple[str, ...]) -> None:
        self.key = key
        self.size_bytes = size_bytes
        self.private_bps = private_bps
        self.links = links
        self.done = env.event()
        self.active = True
        self._cls: _Class | None = None
        self._mark = 0.0  # the class's virtual clock when this flow's last byte lands
        self._left = size_bytes  # remaining bytes, once the flow is no longer active
        self._rate = private_bps  # its rate, once the flow is no longer active
        self._seq = 0  # its entry in its class's heap (older entries, from other classes, are stale)
        self._cursor: Cursor | None = None  # where its private rate's schedule stands, if it has one

    @property
    def rate(self) -> float:
        """Bytes per second it runs at now (the last rate it had, once finished or cancelled)."""
        return self._cls.rate if self.active and self._cls is not None else self._rate

    @property
    def remaining_bytes(self) -> float:
        """Bytes not yet delivered (0 once done)."""
        cls = self._cls
        if not self.active or cls is None:
            return self._left
        return max(0.0, self._mark - cls.clock_at(cls.env.now))


class _SharedLink:
    """One shared link: capacity, the private rates of its flows as counts, its level, its classes."""

    __slots__ = ("capacity_bps", "n_flows", "demand_bps", "counts", "rates", "level", "classes", "schedule",
                 "cursor", "version")

    def __init__(self, capacity_bps: float, schedule: RateSchedule | None = None) -> None:
        self.capacity_bps = capacity_bps
        self.schedule = schedule  # capacity over time (None: constant)
        self.cursor: Cursor | None = None  # where the schedule stands while flows cross the link
        self.version = 0  # invalidates the link's older entries in the network's change heap
        self.n_flows = 0
        self.demand_bps = 0.0
        self.counts: dict[float, int] = {}  # private rate -> flows at that rate
        self.rates: list[float] = []  # the distinct private rates, ascending
        self.level = math.inf
        self.classes: dict[int, _Class] = {}

    def add(self, rate: float) -> None:
        self.n_flows += 1
        self.demand_bps += rate
        count = self.counts.get(rate)
        if count:
            self.counts[rate] = count + 1
        else:
            self.counts[rate] = 1
            bisect.insort(self.rates, rate)

    def remove(self, rate: float) -> None:
        self.n_flows -= 1
        self.demand_bps = self.demand_bps - rate if self.n_flows else 0.0  # no drift once idle
        count = self.counts[rate] - 1
        if count:
            self.counts[rate] = count
        else:
            del self.counts[rate]
            del self.rates[bisect.bisect_left(self.rates, rate)]

    def water_level(self) -> float:
        """Max-min fair level: unlimited while the demand fits the capacity (one pass over the
        distinct private rates, ascending)."""
        if self.demand_bps <= self.capacity_bps:
            return math.inf
        if self.capacity_bps <= 0.0:
            return 0.0
        remaining = self.capacity_bps
        left = self.n_flows
        counts = self.counts
        for rate in self.rates:
            share = remaining / left
            if rate >= share:
                return share
            count = counts[rate]
            remaining -= rate * count
            left -= count
        return math.inf


class _Class:
    """The flows of one private rate over one list of links: they all run at ``rate``."""

    __slots__ = ("env", "key", "private_bps", "links", "rate", "clock", "t", "heap", "active", "version")

    def __init__(self, env: simpy.Environment, key: int, private_bps: float, links: tuple[_SharedLink, ...]) -> None:
        self.env = env
        self.key = key
        self.private_bps = private_bps
        self.links = links
        self.rate = _rate(private_bps, links)
        self.clock = 0.0  # bytes each flow of the class has moved since ``clock`` was last 0
        self.t = env.now  # when ``clock`` was last brought up to date (its rate changed)
        self.heap: list[tuple[float, int, Flow]] = []  # (finish mark, start order, flow)
        self.active = 0
        self.version = 0  # invalidates the class's older entries in the network's heap

    def clock_at(self, now: float) -> float:
        return self.clock + (now - self.t) * self.rate

    def advance(self, now: float) -> None:
        if now != self.t:
            self.clock += (now - self.t) * self.rate
            self.t = now


def _rate(private_bps: float, links: tuple[_SharedLink, ...]) -> float:
    rate = private_bps
    for link in links:
        if link.level < rate:
            rate = link.level
    return rate


class FlowNetwork:
    """All shared links of one simulation run, and the flows crossing them."""

    def __init__(self, env: simpy.Environment, capacities_bps: dict[str, float],
                 schedules: dict[str, RateSchedule] | None = None) -> None:
        """Args:
            env: the SimPy environment.
            capacities_bps: capacity of each shared link id in **bytes** per second.
            schedules: shared link ids whose capacity follows a schedule (bytes/s) instead;
                their ``capacities_bps`` entry is kept for links that are never crossed.

        Raises:
            ValueError: a capacity is not positive, or a schedule names an unknown link.
        """
        for link_id, cap in capacities_bps.items():
            if not cap > 0:
                raise ValueError(f"capacity of shared link {link_id!r} must be > 0, got {cap}")
        schedules = schedules or {}
        for link_id in schedules:
            if link_id not in capacities_bps:
                raise ValueError(f"schedule for unknown shared link {link_id!r}")
        self.env = env
        self._links = {link_id: _SharedLink(float(cap), schedules.get(link_id))
                       for link_id, cap in capacities_bps.items()}
        self._classes: dict[tuple[float, tuple[str, ...]], _Class] = {}
        self._ids = 0
        self._class_ids = 0
        self._seq = 0  # start order (class heaps) and scheduling order (the network's heap)
        self._heap: list[tuple[float, int, int, _Class]] = []  # (finish time, seq, class version, class)
        # (change time, seq, version, link or flow): the next change of each schedule in use
        self._changes: list[tuple[float, int, int, object]] = []
        self._stale_changes = 0  # entries left behind by ended flows and re-woken links (about)
        self._timer_at: float | None = None
        self._timer_version = 0
        self.peak_flows: dict[str, int] = dict.fromkeys(capacities_bps, 0)
        self.rate_changes = 0  # change points applied (links and flows), for the event estimate

    def transfer(self, size_bytes: float, private_bps: float | RateSchedule, links: Sequence[str] = ()) -> Flow:
        """Start a transfer now and return its flow (yield ``flow.done`` to wait for it).

        ``private_bps`` is the sender's own rate in bytes/s, or a :class:`RateSchedule` it
        follows (a traced device link; its rate may be 0 for a while).

        Raises:
            ValueError: negative size, non-positive private rate, or an unknown link id.
        """
        cursor = None
        if isinstance(private_bps, RateSchedule):
            cursor = Cursor(private_bps, self.env.now)
            rate = cursor.rate
        else:
            rate = private_bps
            if not private_bps > 0:
                raise ValueError(f"transfer needs size >= 0 and rate > 0, got {size_bytes}, {private_bps}")
        if size_bytes < 0:
            raise ValueError(f"transfer needs size >= 0 and rate > 0, got {size_bytes}, {private_bps}")
        for link_id in links:
            if link_id not in self._links:
                raise ValueError(f"unknown shared link {link_id!r}")
        self._ids += 1
        flow = Flow(self.env, self._ids, float(size_bytes), float(rate), tuple(links))
        if size_bytes == 0:
            flow.active = False
            flow._left = 0.0
            flow.done.succeed(0.0)
            return flow
        now = self.env.now
        for link_id in flow.links:
            link = self._links[link_id]
            if link.schedule is not None and link.n_flows == 0:
                self._wake(link, now)  # its capacity as the schedule stands now
        cls = self._join(flow, now)
        peak = self.peak_flows
        for link_id, link in zip(flow.links, cls.links):
            if link.n_flows > peak[link_id]:
                peak[link_id] = link.n_flows
        if cursor is not None and cursor.next_t < math.inf:
            flow._cursor = cursor
            self._push_change(cursor.next_t, 0, flow)
        self._rebalance(cls, now)
        return flow

    def _join(self, flow: Flow, now: float) -> _Class:
        """Put an active flow (its ``_left`` bytes to go) into the class of its private rate."""
        key = (flow.private_bps, flow.links)
        cls = self._classes.get(key)
        if cls is None:
            self._class_ids += 1
            cls = _Class(self.env, self._class_ids, flow.private_bps, tuple(self._links[i] for i in flow.links))
            self._classes[key] = cls
            for link in cls.links:
                link.classes[cls.key] = cls
        flow._cls = cls
        flow._mark = cls.clock_at(now) + flow._left
        self._seq += 1
        flow._seq = self._seq
        heapq.heappush(cls.heap, (flow._mark, self._seq, flow))
        cls.active += 1
        for link in cls.links:
            link.add(flow.private_bps)
        return cls

    def cancel(self, flow: Flow) -> float:
        """Stop a flow (its sender went offline); return the bytes it had put on the wire."""
        if flow.active:
            self._remove(flow, flow.remaining_bytes)
        return flow.size_bytes - flow._left

    # -- internals ---------------------------------------------------------------------------

    def _remove(self, flow: Flow, left: float) -> None:
        cls = self._leave(flow)
        flow._left = left
        flow._rate = cls.rate
        flow.active = False  # its class-heap entry is skipped when it surfaces
        if flow._cursor is not None:
            flow._cursor = None  # its pending rate change goes stale
            self._stale_changes += 1
        self._rebalance(cls, self.env.now)

    def _leave(self, flow: Flow) -> _Class:
        """Take a flow out of its class and links (the class is forgotten once empty)."""
        cls = flow._cls
        assert cls is not None
        cls.active -= 1
        for link in cls.links:
            link.remove(flow.private_bps)
        if not cls.active:  # forget an empty class (its heap entries go stale with it)
            cls.version += 1
            del self._classes[(cls.private_bps, flow.links)]
            for link in cls.links:
                del link.classes[cls.key]
        return cls

    # -- capacity over time --------------------------------------------------------------------

    def _push_change(self, when: float, version: int, target: object) -> None:
        self._seq += 1
        heapq.heappush(self._changes, (when, self._seq, version, target))

    def _change_live(self, entry: tuple[float, int, int, object]) -> bool:
        target = entry[3]
        if isinstance(target, Flow):
            return target.active and target._cursor is not None and target._cursor.next_t == entry[0]
        return entry[2] == target.version and target.n_flows > 0  # type: ignore[attr-defined]

    def _wake(self, link: _SharedLink, now: float) -> None:
        """An idle traced link gets its first flow: its capacity now, its next change pending."""
        cursor = Cursor(link.schedule, now)  # type: ignore[arg-type]
        link.cursor = cursor
        link.capacity_bps = cursor.rate
        link.version += 1
        self._stale_changes += 1  # its entry from an earlier busy spell, if one is left
        if cursor.next_t < math.inf:
            self._push_change(cursor.next_t, link.version, link)

    def _apply_change(self, target: object, now: float) -> None:
        """One change point: a link's capacity steps, or a flow's private rate does."""
        self.rate_changes += 1
        if isinstance(target, Flow):
            cursor = target._cursor
            assert cursor is not None
            cursor.advance()
            if cursor.next_t < math.inf:
                self._push_change(cursor.next_t, 0, target)
            else:
                target._cursor = None
            if cursor.rate != target.private_bps:
                self._reprice(target, cursor.rate, now)
            return
        link: _SharedLink = target  # type: ignore[assignment]
        cursor = link.cursor
        assert cursor is not None
        cursor.advance()
        if cursor.next_t < math.inf:
            self._push_change(cursor.next_t, link.version, link)
        link.capacity_bps = cursor.rate
        level = link.water_level()
        if level == link.level:
            return
        link.level = level
        for cls in list(link.classes.values()):
            if cls.active and self._retime(cls, now):
                self._schedule(cls)

    def _reprice(self, flow: Flow, rate: float, now: float) -> None:
        """Move an active flow, with the bytes it has left, to the class of its new private rate."""
        old = flow._cls
        assert old is not None
        key = (rate, flow.links)
        if old.active == 1 and key not in self._classes:
            # Alone in its class (the rule for a traced device link): the class takes the new
            # rate itself, its clock brought up to now first, the flow's mark unchanged.
            old.advance(now)
            del self._classes[(old.private_bps, flow.links)]
            for link in old.links:
                link.remove(old.private_bps)
                link.add(rate)
            old.private_bps = flow.private_bps = rate
            old.rate = _rate(rate, old.links)
            self._classes[key] = old
            self._rebalance(old, now)
            return
        flow._left = max(0.0, flow._mark - old.clock_at(now))
        self._leave(flow)
        flow.private_bps = rate
        cls = self._join(flow, now)
        self._rebalance(cls, now, also=old)

    def _rebalance(self, changed: _Class, now: float, also: _Class | None = None) -> None:
        """Recompute the levels of ``changed``'s links; re-time every class whose rate changed,
        and ``changed`` itself (its earliest flow may have changed), and ``also`` (a class on
        the same links that a flow left)."""
        touched: dict[int, _Class] | None = None
        for link in changed.links:
            level = link.water_level()
            if level != link.level:
                link.level = level
                if touched is None:
                    touched = dict(link.classes)
                else:
                    touched.update(link.classes)  # every class here may now run faster or slower
        if touched is None:
            if changed.active:
                self._schedule(changed)
            if also is not None and also.active:
                self._schedule(also)
        else:
            touched[changed.key] = changed
            if also is not None:
                touched[also.key] = also
            for cls in touched.values():
                if cls.active and (self._retime(cls, now) or cls is changed or cls is also):
                    self._schedule(cls)
        self._arm()

    @staticmethod
    def _retime(cls: _Class, now: float) -> bool:
        """Give a class the rate its links now allow, its clock brought up to ``now`` first; True
        when the rate changed (its finish time must then be scheduled again)."""
        rate = _rate(cls.private_bps, cls.links)
        if rate == cls.rate:
            return False
        cls.advance(now)
        cls.rate = rate
        return True

    def _schedule(self, cls: _Class) -> None:
        """Record the class's earliest finish time in the heap (stale entries are skipped lazily).

        A class at rate 0 (a traced capacity at 0) has no finish time until its rate rises."""
        cls.version += 1
        heap = cls.heap
        while not _live(heap[0]):
            heapq.heappop(heap)
        if len(heap) > 256 and len(heap) > 4 * cls.active:
            # Mostly cancelled flows: rebuild so the heap stays proportional to the live ones.
            heap[:] = [e for e in heap if _live(e)]
            heapq.heapify(heap)
        if cls.rate <= 0.0:
            return
        self._seq += 1
        # From the clock's last update, so that the same earliest flow at the same rate always
        # gets the same finish time, however often the class is re-timed.
        left = heap[0][0] - cls.clock
        heapq.heappush(self._heap, (cls.t + max(0.0, left) / cls.rate, self._seq, cls.version, cls))

    def _arm(self) -> None:
        """Keep one SimPy timer, at the earliest valid finish time or change point (not one
        timer per flow: SimPy events are far dearer than heap entries)."""
        heap = self._heap
        if len(heap) > 256 and len(heap) > 4 * len(self._classes):
            # Mostly stale entries: rebuild so the heap stays proportional to the live classes.
            heap[:] = [e for e in heap if e[2] == e[3].version]
            heapq.heapify(heap)
        while heap and heap[0][2] != heap[0][3].version:
            heapq.heappop(heap)
        changes = self._changes
        if self._stale_changes > 256 and 2 * self._stale_changes > len(changes):
            # Mostly entries of ended flows (a trace's next change may be far off): rebuild.
            changes[:] = [e for e in changes if self._change_live(e)]
            heapq.heapify(changes)
            self._stale_changes = 0
        while changes and not self._change_live(changes[0]):
            heapq.heappop(changes)
        if not heap and not changes:
            return
        due = min(heap[0][0] if heap else math.inf, changes[0][0] if changes else math.inf)
        if self._timer_at is not None and self._timer_at <= due:
            return
        self._timer_at = due
        self._timer_version += 1
        timer = self.env.timeout(max(0.0, due - self.env.now))
        timer.callbacks.append(lambda _event, v=self._timer_version, due=due: self._on_timer(v, due))

    def _on_timer(self, version: int, due: float) -> None:
        if version != self._timer_version:
            return  # superseded by an earlier timer
        self._timer_at = None
        now = self.env.now
        heap = self._heap
        while heap:
            finish_t, _, cls_version, cls = heap[0]
            if cls_version != cls.version:
                heapq.heappop(heap)
                continue
            if finish_t > now + 1e-9 * max(1.0, now):
                break
            heapq.heappop(heap)
            flow = heapq.heappop(cls.heap)[2]  # _schedule left a live flow on top
            self._remove(flow, 0.0)
            flow.done.succeed(flow.size_bytes)
        # change points at or before the time this timer was set for (``now`` may round below it)
        changes = self._changes
        limit = max(now, due)
        while changes and changes[0][0] <= limit:
            entry = heapq.heappop(changes)
            if self._change_live(entry):
                self._apply_change(entry[3], now)
        self._arm()


def _live(entry: tuple[float, int, Flow]) -> bool:
    """A class-heap entry is live while its flow is active and still in the class it was put in."""
    flow = entry[2]
    return flow.active and flow._seq == entry[1]
