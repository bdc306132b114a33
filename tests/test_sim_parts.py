"""The engine's parts on their own: fair-shared links, the GPU pool, the queue, outages, KR scaling."""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from dlora_sim.sim.availability import complement, online_fraction
from dlora_sim.sim.fleet import OUTAGE_BLOCK, GroupOutages
from dlora_sim.sim.cloud import GpuPool
from dlora_sim.sim.links import FlowNetwork
from dlora_sim.sim.queue import UpdateQueue


@pytest.fixture
def env():
    return simpy.Environment()


def _finish_times(env, net, sizes, rates, links):
    done = {}
    for i, (size, rate, path) in enumerate(zip(sizes, rates, links)):
        flow = net.transfer(size, rate, path)
        flow.done.callbacks.append(lambda _e, i=i: done.__setitem__(i, env.now))
    env.run()
    return [done[i] for i in range(len(sizes))]


def test_an_unsaturated_shared_link_leaves_each_flow_at_its_own_rate(env):
    """Two 100 B flows at 10 B/s on a 100 B/s link finish at 10 s each: no sharing penalty."""
    net = FlowNetwork(env, {"L": 100.0})
    assert _finish_times(env, net, [100, 100], [10, 10], [("L",), ("L",)]) == pytest.approx([10, 10])


def test_a_saturated_link_is_shared_fairly_and_rates_are_recomputed_when_a_flow_ends(env):
    """Two flows on a 10 B/s link each get 5 B/s; when the 50 B one ends at 10 s, the other
    speeds up to 10 B/s and its remaining 50 B take 5 s more."""
    net = FlowNetwork(env, {"L": 10.0})
    assert _finish_times(env, net, [50, 100], [100, 100], [("L",), ("L",)]) == pytest.approx([10, 15])


def test_slow_flows_keep_their_rate_and_fast_ones_share_the_rest(env):
    """Water-filling (max-min fairness): on a 10 B/s link a 2 B/s flow keeps 2 B/s and two fast
    flows get 4 B/s each."""
    net = FlowNetwork(env, {"L": 10.0})
    flows = [net.transfer(1000, r, ("L",)) for r in (2.0, 50.0, 50.0)]
    assert [f.rate for f in flows] == pytest.approx([2.0, 4.0, 4.0])


def test_a_cancelled_flow_reports_the_bytes_it_had_sent(env):
    """Cancelling a 100 B flow at 10 B/s after 3 s reports 30 B sent and frees the link."""
    net = FlowNetwork(env, {"L": 10.0})
    flow = net.transfer(100, 10.0, ("L",))
    env.run(until=3.0)
    assert net.cancel(flow) == pytest.approx(30.0)
    assert not flow.done.triggered


def test_gpu_pool_batches_waiting_users_and_streams_weights_once(env):
    """Three requests arriving together with max_batch 3 run as one batch; a memory-bound batch
    takes the weight-streaming time once, not three times."""
    pool = GpuPool(env, n_gpus=1, flops_per_s=1e12, hbm_bytes_per_s=1e9, max_batch=3, window_s=0.1)
    requests = [pool.submit(i, flops=1e9, weight_bytes=1e9) for i in range(3)]
    env.run()
    assert pool.batches == 1 and pool.batched_requests == 3
    assert pool.busy_s == pytest.approx(1.0)  # max(3e9/1e12, 1e9/1e9)
    assert all(r.done.triggered for r in requests)


def test_gpu_pool_window_waits_for_a_batch_to_fill(env):
    """A lone request at an idle pool waits the batching window before it runs."""
    pool = GpuPool(env, n_gpus=1, flops_per_s=1e12, hbm_bytes_per_s=1e12, max_batch=4, window_s=0.5)
    request = pool.submit(0, flops=1e12, weight_bytes=0.0)
    finished = []
    request.done.callbacks.append(lambda _e: finished.append(env.now))
    env.run()
    assert finished == pytest.approx([1.5])


def test_a_cancelled_queued_request_never_runs(env):
    """A request cancelled while queued behind a busy GPU is dropped without GPU time."""
    pool = GpuPool(env, n_gpus=1, flops_per_s=1.0, hbm_bytes_per_s=1.0, max_batch=1, window_s=0.0)
    pool.submit(0, flops=10.0, weight_bytes=0.0)
    second = pool.submit(1, flops=10.0, weight_bytes=0.0)
    pool.cancel(second)
    env.run()
    assert pool.batches == 1 and pool.busy_s == pytest.approx(10.0)


def test_queue_applies_a_resent_message_once(env):
    """At-least-once delivery: the same (device, step) posted twice is applied once, acked twice."""
    queue = UpdateQueue(env, capacity=2)
    acks = []
    queue.register(7, lambda step, attempt: acks.append(step))
    queue.put(7, 0)
    queue.put(7, 0)
    queue.put(7, 1)
    env.run()
    assert queue.applied == {(7, 0): 1, (7, 1): 1}
    assert queue.duplicates == 1 and acks == [0, 0, 1]


def test_queue_keeps_only_the_attempt_the_device_kept(env):
    """After a rollback to step 1 the device redoes step 1 as attempt 2: the scheduler forgets
    attempt 1, applies attempt 2, and ignores a late copy of attempt 1."""
    queue = UpdateQueue(env, capacity=4)
    queue.register(3, lambda step, attempt: None)
    queue.put(3, 0)
    queue.put(3, 1)
    env.run()
    queue.discard(3, from_step=1)
    assert queue.applied == {(3, 0): 1}
    queue.put(3, 1, attempt=2)
    queue.put(3, 1, attempt=1)
    env.run()
    assert queue.applied == {(3, 0): 1, (3, 1): 2}
    assert queue.stale == 1


def test_a_full_queue_makes_the_sender_wait(env):
    """With capacity 1 and a slow scheduler, the second post is accepted only after the first is taken."""
    queue = UpdateQueue(env, capacity=1, service_s=1.0)
    queue.put(0, 0)
    env.run(until=0.5)  # the consumer holds message 0, the store is empty again
    queue.put(0, 1)
    third = queue.put(0, 2)
    assert not third.triggered
    env.run()
    assert third.triggered and queue.delivered == 3


def test_markov_outages_follow_their_means_and_streams_are_per_group():
    """A Markov device with 30 min on / 10 min off is online about 75% of a long horizon; its
    outages are the same whatever the size of its group or the other groups, and they chain
    across the blocks the segment engine draws them in."""
    class Model:
        kind = "markov"
        mean_online_s = 1800.0
        mean_offline_s = 600.0
        start_online = True

    horizon = 2_000_000.0
    a = GroupOutages(Model(), 3, 1, "phones").intervals(2, horizon)
    b = GroupOutages(Model(), 50, 1, "phones").intervals(2, horizon)
    other = GroupOutages(Model(), 3, 1, "laptops").intervals(2, horizon)
    assert a == b and a != other
    assert len(a) > 3 * OUTAGE_BLOCK
    assert online_fraction(a, horizon) == pytest.approx(0.75, abs=0.03)
    assert all(x[1] < y[0] for x, y in zip(a, a[1:]))


def test_trace_online_intervals_become_offline_gaps():
    """Online [10, 20] and [30, 40] leave the device offline on [0, 10], [20, 30] and after 40."""
    assert complement([(10.0, 20.0), (30.0, 40.0)], 100.0) == [(0.0, 10.0), (20.0, 30.0), (40.0, float("inf"))]


