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
- Finish times live in one heap with one SimPy timer for the earliest; a rescheduled flow only
  pushes a new heap entry (the old one is skipped when it surfaces).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Any

import simpy

__all__ = ["Flow", "FlowNetwork"]


class Flow:
    """One transfer in progress. ``done`` triggers (value: bytes delivered) when the last byte lands."""

    __slots__ = ("key", "size_bytes", "remaining_bytes", "private_bps", "links", "rate", "last_t", "done", "version", "active")

    def __init__(self, env: simpy.Environment, key: int, size_bytes: float, private_bps: float, links: tuple[str, ...]) -> None:
        self.key = key
        self.size_bytes = size_bytes
        self.remaining_bytes = size_bytes
        self.private_bps = private_bps
        self.links = links
        self.rate = private_bps
        self.last_t = env.now
        self.done = env.event()
        self.version = 0
        self.active = True


class _SharedLink:
    __slots__ = ("capacity_bps", "flows", "demand_bps", "level")

    def __init__(self, capacity_bps: float) -> None:
        self.capacity_bps = capacity_bps
        self.flows: dict[int, Flow] = {}
        self.demand_bps = 0.0
        self.level = math.inf


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
        self._ids = 0
        self._seq = 0  # heap tie-break: equal finish times complete in scheduling order
        self._heap: list[tuple[float, int, int, Flow]] = []
        self._timer_at: float | None = None
        self._timer_version = 0
        self._active_flows = 0
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
            flow.done.succeed(0.0)
            return flow
        self._active_flows += 1
        for link_id in flow.links:
            link = self._links[link_id]
            link.flows[flow.key] = flow
            link.demand_bps += flow.private_bps
            if len(link.flows) > self.peak_flows[link_id]:
                self.peak_flows[link_id] = len(link.flows)
        self._rebalance(flow.links, new=flow)
        return flow

    def cancel(self, flow: Flow) -> float:
        """Stop a flow (its sender went offline); return the bytes it had put on the wire."""
        if not flow.active:
            return flow.size_bytes - flow.remaining_bytes
        self._advance(flow)
        self._remove(flow)
        return flow.size_bytes - flow.remaining_bytes

    # -- internals ---------------------------------------------------------------------------

    def _advance(self, flow: Flow) -> None:
        now = self.env.now
        flow.remaining_bytes = max(0.0, flow.remaining_bytes - (now - flow.last_t) * flow.rate)
        flow.last_t = now

    def _remove(self, flow: Flow) -> None:
        flow.active = False
        flow.version += 1  # invalidates its pending heap entry
        self._active_flows -= 1
        for link_id in flow.links:
            link = self._links[link_id]
            del link.flows[flow.key]
            link.demand_bps -= flow.private_bps
        self._rebalance(flow.links, new=None)

    def _rebalance(self, link_ids: tuple[str, ...], new: Flow | None) -> None:
        """Recompute the levels of ``link_ids``; reschedule every flow whose rate changed."""
        touched: dict[int, Flow] = {}
        for link_id in link_ids:
            link = self._links[link_id]
            level = _water_level(link)
            if level != link.level:
                touched.update(link.flows)  # every flow here may now run faster or slower
            link.level = level
        if new is not None:
            touched[new.key] = new
        now = self.env.now
        for flow in touched.values():
            rate = flow.private_bps
            for link_id in flow.links:
                level = self._links[link_id].level
                if level < rate:
                    rate = level
            if flow is not new and rate == flow.rate:
                continue
            if flow is not new:
                flow.remaining_bytes = max(0.0, flow.remaining_bytes - (now - flow.last_t) * flow.rate)
                flow.last_t = now
            flow.rate = rate
            self._schedule(flow, now)
        self._arm()

    def _schedule(self, flow: Flow, now: float) -> None:
        """Record the flow's new finish time in the heap (stale entries are skipped lazily)."""
        flow.version += 1
        self._seq += 1
        heapq.heappush(self._heap, (now + flow.remaining_bytes / flow.rate, self._seq, flow.version, flow))

    def _arm(self) -> None:
        """Keep one SimPy timer, at the earliest valid finish time (not one timer per flow:
        on a saturated link every start or end reschedules every flow, and SimPy events are
        far dearer than heap entries)."""
        heap = self._heap
        if len(heap) > 256 and len(heap) > 4 * self._active_flows:
            # Mostly stale entries: rebuild so the heap stays proportional to the live flows.
            heap[:] = [e for e in heap if e[3].active and e[2] == e[3].version]
            heapq.heapify(heap)
        while heap and (not heap[0][3].active or heap[0][2] != heap[0][3].version):
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
            finish_t, _, flow_version, flow = heap[0]
            if not flow.active or flow_version != flow.version:
                heapq.heappop(heap)
                continue
            if finish_t > now + 1e-9 * max(1.0, now):
                break
            heapq.heappop(heap)
            flow.remaining_bytes = 0.0
            flow.last_t = now
            self._remove(flow)
            flow.done.succeed(flow.size_bytes)
        self._arm()


def _water_level(link: Any) -> float:
    """Max-min fair level of one link: unlimited while the demand fits its capacity."""
    if link.demand_bps <= link.capacity_bps:
        return math.inf
    rates = sorted(f.private_bps for f in link.flows.values())
    remaining = link.capacity_bps
    n = len(rates)
    for i, rate in enumerate(rates):
        share = remaining / (n - i)
        if rate >= share:
            return share
        remaining -= rate
    return math.inf
