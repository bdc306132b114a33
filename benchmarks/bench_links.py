"""Flow changes per second on one saturated shared link: ``sim/links.py`` next to the algorithm it
replaced (issue 10), in one run.

Each case holds N concurrent flows (1,000 and 10,000) on one link whose capacity is a quarter of
their demand, with four distinct private rates (as a fleet has a few link types) and random sizes;
every flow that finishes is replaced at once by a new one, so N stays constant. A *flow change*
is one start or one end. Both networks replay the same flows; the simulated time at the same
number of changes is printed for both as a check that they agree.

- ``new``: :class:`dlora_sim.sim.links.FlowNetwork` (per-rate counts per link, a virtual clock per
  class of flows: O(distinct rates + log N) per change).
- ``old``: the previous algorithm, kept below (each change on a saturated link re-sorts all
  private rates and pushes every flow's new finish time: O(N log N) per change).

Not a test: timings depend on the machine and its load.

    .venv/bin/python benchmarks/bench_links.py            # 1,000 and 10,000 flows
    .venv/bin/python benchmarks/bench_links.py --flows 1000 10000 --seconds 2
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import time

import simpy

from dlora_sim.sim.links import FlowNetwork

RATES = (1.0e6, 2.5e6, 6.0e6, 1.2e7)  # private rates, bytes/s


# ----------------------------------------------------------------- the previous algorithm (baseline)


class OldFlow:
    def __init__(self, env, key, size_bytes, private_bps, links):
        self.key, self.size_bytes, self.remaining_bytes = key, size_bytes, size_bytes
        self.private_bps, self.links, self.rate = private_bps, links, private_bps
        self.last_t, self.done, self.version, self.active = env.now, env.event(), 0, True


class _OldLink:
    def __init__(self, capacity_bps):
        self.capacity_bps, self.flows, self.demand_bps, self.level = capacity_bps, {}, 0.0, math.inf


class OldNetwork:
    """``sim/links.py`` before issue 10: every change on a saturated link re-times every flow."""

    def __init__(self, env, capacities_bps):
        self.env = env
        self._links = {k: _OldLink(float(c)) for k, c in capacities_bps.items()}
        self._ids = self._seq = self._timer_version = self._active_flows = 0
        self._heap = []
        self._timer_at = None

    def transfer(self, size_bytes, private_bps, links=(), rebalance=True):
        self._ids += 1
        flow = OldFlow(self.env, self._ids, float(size_bytes), float(private_bps), tuple(links))
        self._active_flows += 1
        for link_id in flow.links:
            link = self._links[link_id]
            link.flows[flow.key] = flow
            link.demand_bps += flow.private_bps
        if rebalance:
            self._rebalance(flow.links, new=flow)
        return flow

    def _remove(self, flow):
        flow.active = False
        flow.version += 1
        self._active_flows -= 1
        for link_id in flow.links:
            link = self._links[link_id]
            del link.flows[flow.key]
            link.demand_bps -= flow.private_bps
        self._rebalance(flow.links, new=None)

    def _rebalance(self, link_ids, new):
        touched = {}
        for link_id in link_ids:
            link = self._links[link_id]
            level = _old_water_level(link)
            if level != link.level:
                touched.update(link.flows)
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
            flow.version += 1
            self._seq += 1
            heapq.heappush(self._heap, (now + flow.remaining_bytes / flow.rate, self._seq, flow.version, flow))
        self._arm()

    def _arm(self):
        heap = self._heap
        if len(heap) > 256 and len(heap) > 4 * self._active_flows:
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

    def _on_timer(self, version):
        if version != self._timer_version:
            return
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


def _old_water_level(link):
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


# --------------------------------------------------------------------------------------- the run


def churn(kind: str, n_flows: int, max_changes: int, max_seconds: float, seed: int = 0) -> tuple[int, float, float]:
    """Hold ``n_flows`` flows on one saturated link, replacing each that ends; stop after
    ``max_changes`` changes or ``max_seconds`` of wall time. Returns (changes, wall s, simulated s)."""
    rng = random.Random(seed)
    env = simpy.Environment()
    capacity = 0.25 * n_flows * sum(RATES) / len(RATES)
    net = FlowNetwork(env, {"L": capacity}) if kind == "new" else OldNetwork(env, {"L": capacity})
    state = {"changes": 0, "deadline": math.inf}
    stop = env.event()

    def draw():
        return rng.uniform(1e6, 5e7), RATES[rng.randrange(len(RATES))]

    def start(size, rate, rebalance=True):
        flow = net.transfer(size, rate, ("L",), rebalance) if kind == "old" else net.transfer(size, rate, ("L",))
        flow.done.callbacks.append(ended)

    def ended(_event):
        state["changes"] += 2  # this end and the start of its replacement
        if state["changes"] >= max_changes or time.perf_counter() > state["deadline"]:
            if not stop.triggered:
                stop.succeed()
            return
        start(*draw())

    # Set-up, not timed: the old network gets its flows in bulk and one rebalance (flow by flow
    # it would take minutes at 10,000 flows).
    for _ in range(n_flows):
        start(*draw(), rebalance=False)
    if kind == "old":
        for flow in net._links["L"].flows.values():
            flow.rate = -1.0  # "changed": the one rebalance schedules every flow
        net._rebalance(("L",), new=None)
    began = time.perf_counter()
    state["deadline"] = began + max_seconds
    env.run(until=stop)
    return state["changes"], time.perf_counter() - began, env.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--changes", type=int, default=20000, help="flow changes timed for the new network")
    parser.add_argument("--seconds", type=float, default=3.0, help="wall-time cap of each old-network run")
    args = parser.parse_args()
    print(f"{'flows':>7} {'old changes/s':>14} {'new changes/s':>14} {'ratio':>8}   check: simulated s at the old run's changes")
    for n in args.flows:
        old_changes, old_wall, old_sim = churn("old", n, args.changes, args.seconds)
        new_changes, new_wall, _ = churn("new", n, args.changes, math.inf)
        _, _, new_sim = churn("new", n, old_changes, math.inf)
        old_rate, new_rate = old_changes / old_wall, new_changes / new_wall
        agree = abs(new_sim - old_sim) / max(abs(old_sim), 1e-300)
        print(f"{n:>7,} {old_rate:>14,.0f} {new_rate:>14,.0f} {new_rate / old_rate:>7.0f}×   "
              f"old {old_sim:.9g} s, new {new_sim:.9g} s after {old_changes:,} changes (rel. diff {agree:.1e})")


if __name__ == "__main__":
    main()
