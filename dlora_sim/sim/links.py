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
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence

import simpy

__all__ = ["Flow", "FlowNetwork"]


class Flow:
    """One transfer in progress. ``done`` triggers (value: bytes delivered) when the last byte lands."""

    __slots__ = ("key", "size_bytes", "private_bps", "links", "done", "active", "_cls", "_mark", "_left", "_rate")

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

    __slots__ = ("capacity_bps", "n_flows", "demand_bps", "counts", "rates", "level", "classes")

    def __init__(self, capacity_bps: float) -> None:
        self.capacity_bps = capacity_bps
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
        self.demand_bps -= rate
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

    def __init__(self, env: simpy.Environment, capacities_bps: dict[str, float]) -> None:
        """Args:
            env: the SimPy environment.
            capacities_bps: capacity of each shared link id in **bytes** per second.

        Raises:
            ValueError: a capacity is not positive.
        """
        for link_id, cap in capacities_bps.items():
            if not cap > 0:
                raise ValueError(f"capacity of shared link {link_id!r} must be > 0, got {cap}")
        self.env = env
        self._links = {link_id: _SharedLink(float(cap)) for link_id, cap in capacities_bps.items()}
        self._classes: dict[tuple[float, tuple[str, ...]], _Class] = {}
        self._ids = 0
        self._class_ids = 0
        self._seq = 0  # start order (class heaps) and scheduling order (the network's heap)
        self._heap: list[tuple[float, int, int, _Class]] = []  # (finish time, seq, class version, class)
        self._timer_at: float | None = None
        self._timer_version = 0
        self.peak_flows: dict[str, int] = dict.fromkeys(capacities_bps, 0)

    def transfer(self, size_bytes: float, private_bps: float, links: Sequence[str] = ()) -> Flow:
        """Start a transfer now and return its flow (yield ``flow.done`` to wait for it).

        Raises:
            ValueError: negative size, non-positive private rate, or an unknown link id.
        """
        if size_bytes < 0 or not private_bps > 0:
            raise ValueError(f"transfer needs size >= 0 and rate > 0, got {size_bytes}, {private_bps}")
        for link_id in links:
            if link_id not in self._links:
                raise ValueError(f"unknown shared link {link_id!r}")
        self._ids += 1
        flow = Flow(self.env, self._ids, float(size_bytes), float(private_bps), tuple(links))
        if size_bytes == 0:
            flow.active = False
            flow._left = 0.0
            flow.done.succeed(0.0)
            return flow
        key = (flow.private_bps, flow.links)
        cls = self._classes.get(key)
        if cls is None:
            self._class_ids += 1
            cls = _Class(self.env, self._class_ids, flow.private_bps, tuple(self._links[i] for i in flow.links))
            self._classes[key] = cls
            for link in cls.links:
                link.classes[cls.key] = cls
        now = self.env.now
        flow._cls = cls
        flow._mark = cls.clock_at(now) + flow.size_bytes
        self._seq += 1
        heapq.heappush(cls.heap, (flow._mark, self._seq, flow))
        cls.active += 1
        peak = self.peak_flows
        for link_id, link in zip(flow.links, cls.links):
            link.add(flow.private_bps)
            if link.n_flows > peak[link_id]:
                peak[link_id] = link.n_flows
        self._rebalance(cls, now)
        return flow

    def cancel(self, flow: Flow) -> float:
        """Stop a flow (its sender went offline); return the bytes it had put on the wire."""
        if flow.active:
            self._remove(flow, flow.remaining_bytes)
        return flow.size_bytes - flow._left

    # -- internals ---------------------------------------------------------------------------

    def _remove(self, flow: Flow, left: float) -> None:
        cls = flow._cls
        assert cls is not None
        flow._left = left
        flow._rate = cls.rate
        flow.active = False  # its class-heap entry is skipped when it surfaces
        cls.active -= 1
        for link in cls.links:
            link.remove(flow.private_bps)
        if not cls.active:  # forget an empty class (its heap entries go stale with it)
            cls.version += 1
            del self._classes[(cls.private_bps, flow.links)]
            for link in cls.links:
                del link.classes[cls.key]
        self._rebalance(cls, self.env.now)

    def _rebalance(self, changed: _Class, now: float) -> None:
        """Recompute the levels of ``changed``'s links; re-time every class whose rate changed,
        and ``changed`` itself (its earliest flow may have changed)."""
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
        else:
            touched[changed.key] = changed
            for cls in touched.values():
                if not cls.active:
                    continue
                rate = _rate(cls.private_bps, cls.links)
                if rate != cls.rate:
                    cls.advance(now)
                    cls.rate = rate
                elif cls is not changed:
                    continue
                self._schedule(cls)
        self._arm()

    def _schedule(self, cls: _Class) -> None:
        """Record the class's earliest finish time in the heap (stale entries are skipped lazily)."""
        cls.version += 1
        heap = cls.heap
        while not heap[0][2].active:
            heapq.heappop(heap)
        if len(heap) > 256 and len(heap) > 4 * cls.active:
            # Mostly cancelled flows: rebuild so the heap stays proportional to the live ones.
            heap[:] = [e for e in heap if e[2].active]
            heapq.heapify(heap)
        self._seq += 1
        # From the clock's last update, so that the same earliest flow at the same rate always
        # gets the same finish time, however often the class is re-timed.
        left = heap[0][0] - cls.clock
        heapq.heappush(self._heap, (cls.t + max(0.0, left) / cls.rate, self._seq, cls.version, cls))

    def _arm(self) -> None:
        """Keep one SimPy timer, at the earliest valid finish time (not one timer per flow:
        SimPy events are far dearer than heap entries)."""
        heap = self._heap
        if len(heap) > 256 and len(heap) > 4 * len(self._classes):
            # Mostly stale entries: rebuild so the heap stays proportional to the live classes.
            heap[:] = [e for e in heap if e[2] == e[3].version]
            heapq.heapify(heap)
        while heap and heap[0][2] != heap[0][3].version:
            heapq.heappop(heap)
        if not heap:
            return
        due = heap[0][0]
        if self._timer_at is not None and self._timer_at <= due:
            return
        self._timer_at = due
        self._timer_version += 1
        timer = self.env.timeout(max(0.0, due - self.env.now))
        timer.callbacks.append(lambda _event, v=self._timer_version: self._on_timer(v))

    def _on_timer(self, version: int) -> None:
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
        self._arm()
