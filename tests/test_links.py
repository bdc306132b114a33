"""The shared-link network (``sim/links.py``) against the algorithm it replaced (issue 10).

The reference below is the previous ``FlowNetwork``, kept verbatim in behaviour: every flow
change re-sorts the private rates of each saturated link it crosses and reschedules every flow
there. The new network keeps per-rate counts and a virtual clock per class of flows; both must
give the same finish times, the same bytes for cancelled flows and the same rates, to 1e-9.
"""

from __future__ import annotations

import heapq
import math

import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlora_sim.sim.links import FlowNetwork

# ----------------------------------------------------------------------- the reference (old) network


class RefFlow:
    def __init__(self, env, key, size_bytes, private_bps, links):
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


class _RefLink:
    def __init__(self, capacity_bps):
        self.capacity_bps = capacity_bps
        self.flows = {}
        self.demand_bps = 0.0
        self.level = math.inf


def _ref_water_level(link):
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


class RefNetwork:
    """The previous ``FlowNetwork``: O(flows on the link · log) per flow change once saturated."""

    def __init__(self, env, capacities_bps):
        self.env = env
        self._links = {link_id: _RefLink(float(cap)) for link_id, cap in capacities_bps.items()}
        self._ids = 0
        self._seq = 0
        self._heap = []
        self._timer_at = None
        self._timer_version = 0
        self._active_flows = 0
        self.peak_flows = dict.fromkeys(capacities_bps, 0)

    def transfer(self, size_bytes, private_bps, links=()):
        self._ids += 1
        flow = RefFlow(self.env, self._ids, float(size_bytes), float(private_bps), tuple(links))
        if size_bytes == 0:
            flow.active = False
            flow.done.succeed(0.0)
            return flow
        self._active_flows += 1
        for link_id in flow.links:
            link = self._links[link_id]
            link.flows[flow.key] = flow
            link.demand_bps += flow.private_bps
            self.peak_flows[link_id] = max(self.peak_flows[link_id], len(link.flows))
        self._rebalance(flow.links, new=flow)
        return flow

    def cancel(self, flow):
        if not flow.active:
            return flow.size_bytes - flow.remaining_bytes
        now = self.env.now
        flow.remaining_bytes = max(0.0, flow.remaining_bytes - (now - flow.last_t) * flow.rate)
        flow.last_t = now
        self._remove(flow)
        return flow.size_bytes - flow.remaining_bytes

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
            level = _ref_water_level(link)
            if level != link.level:
                touched.update(link.flows)
            link.level = level
        if new is not None:
            touched[new.key] = new
        now = self.env.now
        for flow in touched.values():
            rate = flow.private_bps
            for link_id in flow.links:
                rate = min(rate, self._links[link_id].level)
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


# ---------------------------------------------------------------------------------- the scenario

LINKS = ("a", "b", "c", "d")


def replay(network_class, capacities, flows, probes=()):
    """Start each flow ``(start_s, size, rate, links, cancel_after_s or None)`` at its time.

    Returns per flow ``("done", t)`` or ``("cancelled", t, bytes sent)``, the rate of every live
    flow at each probe time, and the peak flow counts.
    """
    env = simpy.Environment()
    net = network_class(env, capacities)
    outcome = {}
    live = {}
    rates = []

    def one(i, start_s, size, rate, links, cancel_after_s):
        yield env.timeout(start_s)
        flow = net.transfer(size, rate, links)
        live[i] = flow
        if cancel_after_s is None:
            yield flow.done
            outcome[i] = ("done", env.now)
        else:
            result = yield flow.done | env.timeout(cancel_after_s)
            if flow.done in result:
                outcome[i] = ("done", env.now)
            else:
                outcome[i] = ("cancelled", env.now, net.cancel(flow))
        del live[i]

    def probe(t):
        yield env.timeout(t)
        rates.append((t, {i: f.rate for i, f in sorted(live.items())}))

    for i, spec in enumerate(flows):
        env.process(one(i, *spec))
    for t in probes:
        env.process(probe(t))
    env.run()
    return [outcome[i] for i in range(len(flows))], rates, net.peak_flows


def _same(new, ref):
    (out_n, rates_n, peak_n), (out_r, rates_r, peak_r) = new, ref
    assert peak_n == peak_r
    for a, b in zip(out_n, out_r):
        assert a[0] == b[0]
        assert a[1:] == pytest.approx(b[1:], rel=1e-9, abs=1e-9)
    for (t_n, r_n), (t_r, r_r) in zip(rates_n, rates_r):
        assert t_n == t_r and r_n.keys() == r_r.keys()
        assert list(r_n.values()) == pytest.approx(list(r_r.values()), rel=1e-9)


rate_values = st.sampled_from([1.0, 2.5, 4.0, 10.0, 40.0])  # few distinct private rates, as in a fleet
flow_specs = st.tuples(
    st.floats(0.0, 20.0),                                    # start
    st.floats(0.5, 200.0),                                   # size
    st.one_of(rate_values, st.floats(0.5, 50.0)),            # private rate
    st.lists(st.sampled_from(LINKS), max_size=3, unique=True).map(tuple),  # path
    st.one_of(st.none(), st.floats(0.01, 30.0)),             # cancel after
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacities=st.lists(st.floats(2.0, 60.0), min_size=4, max_size=4),
    flows=st.lists(flow_specs, min_size=1, max_size=40),
    probes=st.lists(st.floats(0.0, 40.0), max_size=4),
)
def test_the_network_matches_the_previous_algorithm_on_random_flows(capacities, flows, probes):
    caps = dict(zip(LINKS, capacities))
    _same(replay(FlowNetwork, caps, flows, probes), replay(RefNetwork, caps, flows, probes))


def test_a_crowded_saturated_link_with_two_links_per_path_matches_the_previous_algorithm():
    """300 flows, three private rates, paths over an access link and a shared trunk, a third of
    them cancelled: the same finish times and bytes as the previous algorithm."""
    import random

    rng = random.Random(7)
    flows = []
    for i in range(300):
        path = (("a", "c"), ("b", "c"), ("c",))[i % 3]
        cancel = rng.uniform(0.5, 50.0) if i % 3 == 0 else None
        flows.append((rng.uniform(0, 30), rng.uniform(10, 500), rng.choice([5.0, 8.0, 20.0]), path, cancel))
    caps = {"a": 100.0, "b": 60.0, "c": 120.0, "d": 1.0}
    probes = [1.0, 10.0, 25.0, 40.0]
    _same(replay(FlowNetwork, caps, flows, probes), replay(RefNetwork, caps, flows, probes))


def test_flows_of_one_class_finish_in_order_of_their_marks_after_level_changes():
    """Three flows share a 10 B/s link; a fourth joins and leaves. Each flow's finish time is what
    fair sharing gives by hand: 3 flows at 10/3 B/s, then 4 at 2.5 B/s from t = 3 to t = 5."""
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 10.0})
    done = {}
    flows = [net.transfer(size, 100.0, ("L",)) for size in (20.0, 40.0, 60.0)]
    for i, flow in enumerate(flows):
        flow.done.callbacks.append(lambda _e, i=i: done.__setitem__(i, env.now))

    def intruder():
        yield env.timeout(3.0)
        flow = net.transfer(1000.0, 100.0, ("L",))
        yield env.timeout(2.0)
        assert flow.remaining_bytes == pytest.approx(1000.0 - 5.0)
        assert net.cancel(flow) == pytest.approx(5.0)

    env.process(intruder())
    env.run()
    # by t = 5 each of the three has moved 10 + 5 B; at 10/3 B/s flow 0's last 5 B land at 6.5,
    # then flows 1 and 2 (20 and 40 B left) share 5 B/s each, then flow 2 runs alone at 10 B/s.
    t0 = 5.0 + 5.0 / (10.0 / 3.0)
    t1 = t0 + (40.0 - 20.0) / 5.0
    t2 = t1 + (60.0 - 40.0) / 10.0
    assert [done[0], done[1], done[2]] == pytest.approx([t0, t1, t2])
    assert flows[0].remaining_bytes == 0.0 and not flows[0].active
