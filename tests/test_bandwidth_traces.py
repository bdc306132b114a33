"""Issue 15, bandwidth over time: the trace readers, links that follow a trace, and the engine
sharing the time-varying capacity exactly (bytes = the integral of the capacity)."""

from __future__ import annotations

import bisect
import math
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import simpy
from _hardening import assert_refused, run_cli
from _sim_scenarios import REPO, small
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlora_sim.errors import InputError
from dlora_sim.scenario import load_scenario, scenario_from_dict
from dlora_sim.sim.capacity import shared_schedules
from dlora_sim.sim.engine import build_devices, run_strategy
from dlora_sim.sim.links import FlowNetwork
from dlora_sim.sim.rates import Cursor, RateSchedule
from dlora_sim.traces import bandwidth
from dlora_sim.traces.bandwidth import load_bandwidth, read_mahimahi, read_pensieve, to_csv, to_parquet

TRACES = REPO / "scenarios" / "traces"
LTE_DOWN, LTE_UP = TRACES / "synthetic-lte-down.csv", TRACES / "synthetic-lte-up.csv"
SHIPPED = REPO / "scenarios" / "trace-bandwidth.toml"


def _write(tmp_path: Path, text: str, name: str = "bw.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------- readers


def test_a_csv_trace_reads_as_rates_from_each_row_to_the_next(tmp_path):
    """Rows are change points; the first is time 0; the last row holds for the step before it;
    repeated rates are one change; several traces may share a file."""
    path = _write(tmp_path, "trace,time_s,mbit_s\na,100,8\na,101,8\na,102,0\na,104,16\nb,0,1\n")
    a, b = load_bandwidth(path)
    assert a.name == "a" and list(a.times_s) == [0, 1, 2, 4] and a.duration_s == 6.0
    assert [list(x) for x in a.changes] == [[0, 2, 4], [8, 0, 16]]
    assert a.mean_mbit_s == pytest.approx((8 * 2 + 0 * 2 + 16 * 2) / 6)
    assert b.duration_s == 0.0 and b.mean_mbit_s == 1.0 and b.changes_per_period == 0
    plain = _write(tmp_path, "time_s,mbit_s\n0,5\n0.5,6\n", "plain.csv")
    (only,) = load_bandwidth(plain)
    assert only.name == "" and only.duration_s == 1.0


def test_parquet_and_csv_read_the_same(tmp_path):
    csv_path = _write(tmp_path, "trace,time_s,mbit_s\nx,0,3\nx,1,0\nx,2.5,7\n")
    pq_path = tmp_path / "bw.parquet"
    pq_path.write_bytes(to_parquet(load_bandwidth(csv_path)))
    assert load_bandwidth(pq_path) == load_bandwidth(csv_path)
    assert load_bandwidth(_write(tmp_path, to_csv(load_bandwidth(csv_path)), "again.csv")) == load_bandwidth(csv_path)


@pytest.mark.parametrize("text, words", [
    ("", "empty file"),
    ("time_s,mbit_s\n", "no rows"),
    ("time,mbit_s\n0,1\n", "missing column(s) time_s"),
    ("time_s,mbit_s,kbit\n0,1,2\n", "unknown column(s) kbit"),
    ("time_s,mbit_s\n0,1\n2,3\n1,4\n", "line 4: time_s: 1 is not after the previous row's 2"),
    ("time_s,mbit_s\n0,1\n0,3\n", "line 3: time_s: 0 is not after"),
    ("time_s,mbit_s\n0,1\n1e-9,3\n", "line 3: time_s: 1e-09 is less than 1e-06 s after"),
    ("time_s,mbit_s\n0,1\n1,-2\n", "line 3: mbit_s: -2 is not 0 or in"),
    ("time_s,mbit_s\n0,1\n1,nan\n", "line 3: mbit_s: nan is not 0 or in"),
    ("time_s,mbit_s\n0,1\n1,inf\n", "line 3: mbit_s: inf"),
    ("time_s,mbit_s\n0,1\n1,1e10\n", "line 3: mbit_s: 1e+10 is not 0 or in"),
    ("time_s,mbit_s\n0,1\n1,fast\n", "line 3: mbit_s: 'fast' is not a number"),
    ("time_s,mbit_s\n-1,1\n", "line 2: time_s: -1 is not a time"),
    ("time_s,mbit_s\n1e16,1\n", "line 2: time_s: 1e+16 is not a time"),
    ("time_s,mbit_s\n0,1,2\n", "line 2: 3 fields, the header has 2"),
    ("time_s,mbit_s\n0,0\n1,0\n", "line 2: mbit_s: trace '' is 0 throughout"),
    ("trace,time_s,mbit_s\n,0,1\n", "line 2: trace: empty id"),
])
def test_a_broken_csv_trace_is_one_line_naming_file_row_and_column(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as caught:
        load_bandwidth(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and words in message and "\n" not in message


def test_absurd_sizes_are_refused_before_parsing(tmp_path, monkeypatch):
    path = _write(tmp_path, "time_s,mbit_s\n" + "".join(f"{i},1\n" for i in range(20)))
    monkeypatch.setattr(bandwidth, "MAX_ROWS", 10)
    with pytest.raises(ValueError, match=r"line 12: more than 10 rows"):
        load_bandwidth(path)
    monkeypatch.setattr(bandwidth, "MAX_BYTES", 50)
    with pytest.raises(ValueError, match=r"bytes, above the 50 a bandwidth trace may have"):
        load_bandwidth(path)
    with pytest.raises(ValueError, match="cannot read"):
        load_bandwidth(tmp_path / "missing.csv")


@pytest.mark.parametrize("table, words", [
    ({"time_s": [0.0, 2.0, 1.0], "mbit_s": [1.0, 2.0, 3.0]}, "row 2: time_s: 1 is not after"),
    ({"time_s": [0.0, 1.0], "mbit_s": [1.0, None]}, "row 1: mbit_s: missing value"),
    ({"time_s": [0.0, 1.0], "mbit_s": ["1", "2"]}, "mbit_s: a column of string, not numbers"),
    ({"time_s": [0.0, 1.0], "rate": [1.0, 2.0]}, "missing column(s) mbit_s"),
    ({"time_s": [0.0, 1.0], "mbit_s": [1.0, -1.0]}, "row 1: mbit_s: -1"),
])
def test_a_broken_parquet_trace_is_one_line_naming_file_row_and_column(tmp_path, table, words):
    path = tmp_path / "bw.parquet"
    pq.write_table(pa.table(table), path)
    with pytest.raises(ValueError) as caught:
        load_bandwidth(path)
    assert str(caught.value).startswith(str(path)) and words in str(caught.value)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        load_bandwidth(tmp_path / "junk.parquet")


def test_a_pensieve_trace_reads_and_a_broken_one_is_named(tmp_path):
    good = _write(tmp_path, "0.0 1.5\n1.0\t2.5\n\n2.0 0\n", "fcc-1.log")
    trace = read_pensieve(good)
    assert trace.name == "fcc-1" and list(trace.mbit_s) == [1.5, 2.5, 0] and trace.duration_s == 3.0
    for text, words in (("0 1\n1 2 3\n", "line 2: 3 fields"), ("0 1\n0.5 x\n", "line 2: mbit_s: 'x'"),
                        ("1 1\n0 1\n", "line 2: time_s: 0 is not after"), ("", "no rows")):
        bad = _write(tmp_path, text, "bad.log")
        with pytest.raises(ValueError) as caught:
            read_pensieve(bad)
        assert str(caught.value).startswith(str(bad)) and words in str(caught.value)


def test_a_mahimahi_trace_becomes_the_rate_of_its_packets_per_bin(tmp_path):
    """Packets at ms 0, 0, 10, 20..90 and period 100 ms: bins of 50 ms carry 7 and 5 packets;
    the converted trace delivers each period exactly the packets' bytes."""
    stamps = [0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    path = _write(tmp_path, "\n".join(map(str, stamps)) + "\n", "cell.up")
    trace = read_mahimahi(path, bin_s=0.05)
    assert trace.duration_s == 0.1 and list(trace.times_s) == [0.0, 0.05]
    # ms 100 is the next period's 0: bin 0 holds 0, 0, 10, 20, 30, 40 and 100
    assert list(trace.mbit_s) == pytest.approx([7 * 1500 * 8 / 0.05 / 1e6, 5 * 1500 * 8 / 0.05 / 1e6])
    assert trace.mean_mbit_s * 1e6 / 8 * trace.duration_s == pytest.approx(len(stamps) * 1500)
    wide = read_mahimahi(path, bin_s=0.07)  # round(100 / 70) = 1 bin: whole bins fill the period
    assert len(wide.times_s) == 1 and wide.mean_mbit_s == pytest.approx(12 * 1500 * 8 / 0.1 / 1e6)
    for text, words in (("0\n5\n3\n", "line 3: 3 ms is before the previous line's 5 ms"),
                        ("0\n1.5\n", "line 2: '1.5' is not a millisecond"), ("\n", "no packet lines"),
                        ("0\n0\n", "the last millisecond is 0")):
        bad = _write(tmp_path, text, "bad.trace")
        with pytest.raises(ValueError) as caught:
            read_mahimahi(bad, 0.1)
        assert str(caught.value).startswith(str(bad)) and words in str(caught.value)
    with pytest.raises(ValueError, match="bin width"):
        read_mahimahi(path, 1e-4)


def test_the_cli_converts_pensieve_and_mahimahi_traces(tmp_path):
    fcc = [_write(tmp_path, "0 1\n1 2\n", f"fcc-{i}.log") for i in range(2)]
    code, out, err = run_cli(["traces", "bandwidth", *map(str, fcc), "-o", str(tmp_path / "fcc.csv")])
    assert code == 0, err
    assert [t.name for t in load_bandwidth(tmp_path / "fcc.csv")] == ["fcc-0", "fcc-1"]
    mm = _write(tmp_path, "\n".join(str(i * 3) for i in range(1, 400)), "lte.down")
    code, out, err = run_cli(["traces", "bandwidth", str(mm), "--format", "mahimahi", "--bin-ms", "100",
                              "-o", str(tmp_path / "lte.parquet")])
    assert code == 0, err
    (trace,) = load_bandwidth(tmp_path / "lte.parquet")
    assert trace.duration_s == pytest.approx(1.197) and trace.mean_mbit_s == pytest.approx(399 * 12000 / 1.197 / 1e6)
    assert_refused(run_cli(["traces", "bandwidth", str(tmp_path / "nope.log"), "-o", str(tmp_path / "x.csv")]),
                   "cannot read")
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------------------------- the schedule


def _integral_finish(sched: RateSchedule, size: float, start: float = 0.0, share: float = 1.0) -> float:
    """When ``share`` of the schedule's capacity, from ``start``, has carried ``size`` bytes
    (walking the trace's change points by hand, not with the engine's cursor)."""
    times, rates, period = sched.times, sched.rates, sched.period
    points = []
    for k in range(0, 10_000):
        for t, r in zip(times, rates):
            at = k * period + t - sched.offset
            points.append((at, r))
        if not sched.looped or points[-1][0] > start + 1e6:
            break
    left, t = size, start
    rate = next(r for at, r in reversed(points) if at <= t + 1e-12) if points[0][0] <= t else rates[0]
    for at, r in points:
        if at <= t:
            continue
        if rate * share * (at - t) >= left:
            return t + left / (rate * share)
        left -= rate * share * (at - t)
        t, rate = at, r
    return t + left / (rate * share)


SCHED = RateSchedule(np.array([0.0, 2.0, 3.0, 7.0]), np.array([10.0, 0.0, 4.0, 20.0]), 8.0, True, 1.5, ("s",))


def test_a_cursor_walks_the_trace_looped_or_clipped():
    assert [SCHED.rate_at(t) for t in (0, 0.5, 1.5, 5.5, 6.4, 7.0, 8.5, 14.0)] == [10, 0, 4, 20, 20, 10, 0, 20]
    cursor = Cursor(SCHED, 0.0)
    seen = []
    while cursor.next_t < 30:
        seen.append((cursor.next_t, cursor.rate))
        cursor.advance()
    assert seen[:5] == [(0.5, 10.0), (1.5, 0.0), (5.5, 4.0), (6.5, 20.0), (8.5, 10.0)]
    clipped = RateSchedule(np.array([0.0, 2.0]), np.array([10.0, 3.0]), 5.0, False, 0.0)
    assert [clipped.rate_at(t) for t in (0, 1.9, 2, 4.9, 5, 100)] == [10, 10, 3, 3, 3, 3]
    assert Cursor(clipped, 3.0).next_t == math.inf
    looped = RateSchedule(np.array([0.0, 2.0]), np.array([10.0, 3.0]), 5.0, True, 0.0)
    assert [looped.rate_at(t) for t in (4.9, 5, 7.1, 100.5)] == [3, 10, 3, 10]
    assert looped.bytes_between(0, 10) == 2 * (20 + 9) and clipped.bytes_between(0, 10) == 20 + 24


def test_a_wrap_without_a_change_is_no_change_point():
    """rates 5, 7, 5 looped: the wrap from 5 to 5 is not an event."""
    sched = RateSchedule(np.array([0.0, 1.0, 2.0]), np.array([5.0, 7.0, 5.0]), 3.0, True, 0.0)
    cursor = Cursor(sched, 0.0)
    points = []
    while cursor.next_t < 7:
        points.append(cursor.next_t)
        cursor.advance()
    assert points == [1.0, 2.0, 4.0, 5.0]


# ---------------------------------------------------------------------------------- the engine


def _finish(env: simpy.Environment, flow) -> list[float]:
    done: list[float] = []
    flow.done.callbacks.append(lambda _e: done.append(env.now))
    return done


@pytest.mark.parametrize("looped", [True, False])
def test_one_long_flow_finishes_where_the_integral_of_the_capacity_reaches_its_size(looped):
    """A 1,000-byte flow alone on a traced shared link (its own rate far above it): it finishes
    exactly when the cumulative capacity reaches 1,000 bytes, looped or clipped."""
    sched = RateSchedule(np.array(SCHED.times), np.array(SCHED.rates), SCHED.period, looped, SCHED.offset)
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 1.0}, {"L": sched})
    done = _finish(env, net.transfer(1000.0, 1e9, ("L",)))
    env.run()
    assert done == [pytest.approx(_integral_finish(sched, 1000.0), rel=1e-12)]
    assert sched.bytes_between(0.0, done[0]) == pytest.approx(1000.0, rel=1e-12)
    if looped:  # 7 B/s on average over a period
        assert done[0] == pytest.approx(1000.0 / 7.0, rel=0.02)
    else:  # from trace time 1.5: 5 B, a second at 0, 16 B, then 20 B/s for good from t = 5.5
        assert done[0] == pytest.approx(5.5 + (1000.0 - 21.0) / 20.0, rel=1e-12)


def test_a_device_link_that_follows_a_trace_moves_the_integral_of_its_rate():
    """The same, with the flow's own (private) rate following the trace over an untraced link."""
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 1e9})
    start = 3.25

    def later():
        yield env.timeout(start)
        flow = net.transfer(777.0, SCHED, ("L",))
        done = yield flow.done
        assert env.now == pytest.approx(_integral_finish(SCHED, 777.0, start), rel=1e-12)
        assert done == 777.0

    env.process(later())
    env.run()
    assert net.rate_changes > 20


def test_two_flows_share_a_traced_link_fairly_and_move_its_whole_capacity():
    """Two flows of 300 and 1,000 bytes on the traced link: half the capacity each until the
    first has its 300, then the second alone; together they move exactly the integral."""
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 1.0}, {"L": SCHED})
    small_done = _finish(env, net.transfer(300.0, 1e9, ("L",)))
    big = net.transfer(1000.0, 1e9, ("L",))
    big_done = _finish(env, big)
    env.run()
    first = _integral_finish(SCHED, 600.0)  # both at half: 300 each when the integral is 600
    assert small_done == [pytest.approx(first, rel=1e-12)]
    assert big_done == [pytest.approx(_integral_finish(SCHED, 1300.0), rel=1e-12)]
    assert SCHED.bytes_between(0, big_done[0]) == pytest.approx(1300.0, rel=1e-12)


def test_a_flow_cancelled_mid_trace_has_sent_the_integral_so_far():
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 1.0}, {"L": SCHED})
    flow = net.transfer(1e6, 1e9, ("L",))
    env.run(until=37.3)
    assert net.cancel(flow) == pytest.approx(SCHED.bytes_between(0, 37.3), rel=1e-12)


def test_a_traced_link_slower_than_the_devices_and_a_zero_rate_stall():
    """Devices at 6 B/s each behind a link whose capacity steps 30 → 0 → 9 B/s: while it is 30
    all four run at their own 6, at 0 they stall, at 9 they share it (2.25 each)."""
    sched = RateSchedule(np.array([0.0, 10.0, 20.0]), np.array([30.0, 0.0, 9.0]), 30.0, False, 0.0)
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 1.0}, {"L": sched})
    flows = [net.transfer(100.0, 6.0, ("L",)) for _ in range(4)]
    rates = {}

    def probe():
        for t in (5.0, 15.0, 25.0):
            yield env.timeout(t - env.now)
            rates[t] = [f.rate for f in flows]

    env.process(probe())
    done = _finish(env, flows[0])
    env.run()
    assert rates == {5.0: [6.0] * 4, 15.0: [0.0] * 4, 25.0: [2.25] * 4}
    assert done == [pytest.approx(20.0 + 40.0 / 2.25)]


def test_an_idle_traced_link_keeps_no_timer_and_picks_up_where_its_trace_stands():
    """No flows: no events. A flow at t = 100 starts at the trace's rate at 100, not at its start."""
    sched = RateSchedule(np.array([0.0, 1.0]), np.array([1.0, 50.0]), 2.0, True, 0.0)
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 1.0}, {"L": sched})
    env.run(until=100.5)
    assert net.rate_changes == 0
    flow = net.transfer(200.0, 1e9, ("L",))
    assert flow.rate == 1.0
    done = _finish(env, flow)
    env.run()
    assert done == [pytest.approx(_integral_finish(sched, 200.0, 100.5), rel=1e-12)]


def test_ended_flows_leave_no_growing_heap_of_pending_changes():
    """A trace whose next change is an hour off, 5,000 short flows one after another: each leaves
    a stale pending change, and the network keeps their number bounded."""
    sched = RateSchedule(np.array([0.0, 3600.0]), np.array([1000.0, 2000.0]), 7200.0, True, 0.0)
    env = simpy.Environment()
    net = FlowNetwork(env, {"L": 1e9})
    sizes = []

    def sender():
        for _ in range(5000):
            flow = net.transfer(10.0, sched, ("L",))
            sizes.append(len(net._changes))
            yield flow.done

    env.process(sender())
    env.run()
    assert max(sizes) < 600 and env.now == pytest.approx(50.0)


# A reference, written independently: steps from event to event (starts, cancels, every change
# point of every schedule, finishes), recomputing every link's level from scratch each time.


def _points(sched, t_max):
    if isinstance(sched, float):
        return [0.0], [sched]
    out = []
    k = 0
    while True:
        for t, r in zip(sched.times, sched.rates):
            at = k * sched.period + t - sched.offset
            out.append((max(at, 0.0), r))
        k += 1
        if not sched.looped or k * sched.period - sched.offset > t_max:
            break
    out.sort(key=lambda p: p[0])
    times = [0.0]
    rates = [next((r for at, r in reversed(out) if at <= 0.0), out[0][1])]
    for at, r in out:
        if at > 0.0:
            times.append(at)
            rates.append(r)
    return times, rates


def _value(points, t):
    times, rates = points
    return rates[bisect.bisect_right(times, t) - 1]


def reference(capacities, schedules, flows, t_end):
    caps = {k: _points(schedules.get(k, float(v)), t_end) for k, v in capacities.items()}
    specs = [(s, size, _points(p, t_end) if isinstance(p, RateSchedule) else _points(float(p), t_end), links, c)
             for s, size, p, links, c in flows]
    left = [size for _, size, _, _, _ in specs]
    state = ["waiting"] * len(specs)
    started = [None] * len(specs)
    out = [None] * len(specs)
    t = 0.0
    while t < t_end:
        for i, (s, _, _, _, c) in enumerate(specs):
            if state[i] == "waiting" and s <= t:
                state[i], started[i] = "active", t
            if state[i] == "active" and c is not None and started[i] + c <= t + 1e-12:
                state[i] = "over"
                out[i] = ("cancelled", t, specs[i][1] - left[i])
        active = [i for i in range(len(specs)) if state[i] == "active"]
        private = {i: _value(specs[i][2], t) for i in active}
        levels = {}
        for k, points in caps.items():
            cap = _value(points, t)
            mine = sorted(private[i] for i in active if k in specs[i][3])
            level = math.inf
            if sum(mine) > cap:
                remaining, n = cap, len(mine)
                for j, r in enumerate(mine):
                    share = remaining / (n - j) if cap > 0 else 0.0
                    if r >= share:
                        level = share
                        break
                    remaining -= r
            levels[k] = level
        rate = {i: min([private[i], *(levels[k] for k in specs[i][3])]) for i in active}
        nexts = [t_end]
        nexts += [s for s, *_ in specs if s > t]
        nexts += [started[i] + specs[i][4] for i in active if specs[i][4] is not None]
        for points in [*caps.values(), *(specs[i][2] for i in active)]:
            j = bisect.bisect_right(points[0], t)
            if j < len(points[0]):
                nexts.append(points[0][j])
        nexts += [t + left[i] / rate[i] for i in active if rate[i] > 0]
        t_next = min(nexts)
        for i in active:
            left[i] = max(0.0, left[i] - rate[i] * (t_next - t))
            if rate[i] > 0 and t + left[i] / rate[i] <= t_next + 1e-12 and left[i] <= 1e-9 * specs[i][1]:
                state[i] = "over"
                out[i] = ("done", t_next)
        t = t_next
    return [o if o is not None else ("running", left[i]) for i, o in enumerate(out)]


def replay(capacities, schedules, flows, t_end):
    env = simpy.Environment()
    net = FlowNetwork(env, capacities, schedules)
    out = [None] * len(flows)
    live = {}

    def one(i, start, size, private, links, cancel):
        yield env.timeout(start)
        flow = net.transfer(size, private, links)
        live[i] = flow
        events = flow.done if cancel is None else flow.done | env.timeout(cancel)
        result = yield events
        if cancel is None or flow.done in result:
            out[i] = ("done", env.now)
        else:
            out[i] = ("cancelled", env.now, net.cancel(flow))

    for i, spec in enumerate(flows):
        env.process(one(i, *spec))
    env.run(until=t_end)
    return [o if o is not None else ("running", live[i].remaining_bytes if i in live else flows[i][1])
            for i, o in enumerate(out)]


def _schedule(draw):
    n = draw(st.integers(1, 4))
    steps = draw(st.lists(st.floats(0.5, 6.0), min_size=n, max_size=n))
    times = np.concatenate([[0.0], np.cumsum(steps[:-1])])
    rates = draw(st.lists(st.sampled_from([0.0, 2.0, 5.0, 12.0, 40.0]) | st.floats(1.0, 60.0),
                          min_size=n, max_size=n))
    if not any(r > 0 for r in rates):
        rates[0] = 7.0
    return RateSchedule(times, np.array(rates), float(sum(steps)), draw(st.booleans()),
                        draw(st.floats(0.0, 20.0)))


LINKS = ("a", "b", "c")


@st.composite
def worlds(draw):
    schedules = {k: _schedule(draw) for k in LINKS if draw(st.booleans())}
    capacities = {k: draw(st.floats(3.0, 60.0)) for k in LINKS}
    flows = []
    for _ in range(draw(st.integers(1, 12))):
        private = _schedule(draw) if draw(st.booleans()) else draw(st.sampled_from([4.0, 10.0, 25.0]))
        flows.append((draw(st.floats(0.0, 20.0)), draw(st.floats(1.0, 300.0)), private,
                      tuple(draw(st.lists(st.sampled_from(LINKS), max_size=2, unique=True))),
                      draw(st.none() | st.floats(0.5, 40.0))))
    return capacities, schedules, flows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def test_the_engine_matches_an_event_by_event_reference_on_random_traces(world):
    """Random traced links and traced device rates, flows that start, finish and are cancelled:
    the same finish times and bytes as a reference that recomputes everything at every event."""
    capacities, schedules, flows = world
    got, want = replay(capacities, schedules, flows, 200.0), reference(capacities, schedules, flows, 200.0)
    for a, b, flow in zip(got, want, flows):
        # a flow cancelled at the instant its last byte lands is done either way (a tie)
        a, b = (("done", x[1]) if x[0] == "cancelled" and x[2] == pytest.approx(flow[1], rel=1e-9) else x
                for x in (a, b))
        assert a[0] == b[0], (got, want)
        assert a[1:] == pytest.approx(b[1:], rel=1e-7, abs=1e-6), (got, want)


# ------------------------------------------------------------------------------ scenario side


TRACED = {"down": str(LTE_DOWN), "up": str(LTE_UP)}


def test_devices_map_to_traces_and_offsets_deterministically_with_the_seed():
    """Each device draws a trace and an offset from its group's streams: the same every build,
    the same device whatever the group's size beyond it, different with another seed."""
    scenario = small({"fleet.groups.0.count": 12, "fleet.groups.0.bandwidth_trace": TRACED})
    devices = build_devices(scenario)
    assert build_devices(scenario) == devices
    down = [d.down_schedule for d in devices]
    assert all(s is not None and 0 <= s.offset < s.period for s in down)
    assert len({s.key[1] for s in down}) > 2 and len({s.offset for s in down}) == 12  # traces and offsets vary
    assert all(d.up_schedule.key[1] == d.down_schedule.key[1] for d in devices)  # paired files stay paired
    bigger = build_devices(small({"fleet.groups.0.count": 20, "fleet.groups.0.bandwidth_trace": TRACED}))
    assert [d.down_schedule for d in bigger[:12]] == down
    other = build_devices(small({"run.seed": 4, "fleet.groups.0.count": 12, "fleet.groups.0.bandwidth_trace": TRACED}))
    assert [d.down_schedule for d in other] != down
    fixed = build_devices(small({"fleet.groups.0.bandwidth_trace": {**TRACED, "trace": "lte-3", "offset_s": 42.0}}))
    assert {(d.down_schedule.key[1], d.down_schedule.offset) for d in fixed} == {("lte-3", 42.0)}
    # the fleet's constant columns hold each device's time-average goodput
    (trace,) = [t for t in load_bandwidth(LTE_DOWN) if t.name == "lte-3"]
    goodput = 1.0 - scenario.fleet.groups[0].link.loss_rate
    assert fixed[0].down_bytes_per_s == pytest.approx(trace.mean_mbit_s * 1e6 / 8 * goodput)


def test_only_the_traced_direction_follows_a_trace():
    devices = build_devices(small({"fleet.groups.0.bandwidth_trace": {"up": str(LTE_UP), "scale": 0.5}}))
    assert all(d.down_schedule is None and d.up_schedule is not None for d in devices)
    untraced = build_devices(small())[0]
    assert devices[0].down_bytes_per_s == untraced.down_bytes_per_s


def test_shared_link_traces_land_on_the_named_links(tmp_path):
    backhaul = TRACES / "synthetic-backhaul.csv"
    scenario = small({"network.link_traces": [{"access": "phones", "down": str(backhaul)},
                                              {"region": "region-0", "up": str(backhaul), "offset_s": "random"}]})
    schedules = shared_schedules(scenario)
    assert set(schedules) == {"access:phones->region:region-0:down", "region:region-0->cloud:up"}
    assert schedules["access:phones->region:region-0:down"].offset == 0.0
    assert 0 < schedules["region:region-0->cloud:up"].offset < 86400
    graph = load_scenario(REPO / "scenarios" / "flaky-network.toml")
    u, v = next(iter(graph.network.load_graph().edges))
    traced = load_scenario(REPO / "scenarios" / "flaky-network.toml",
                           {"network.link_traces": [{"edge": [u, v], "up": str(backhaul)}]})
    ids = set(shared_schedules(traced))
    assert ids and all(i.endswith(":up") and (f"{u}->{v}" in i or f"{v}->{u}" in i) for i in ids)


@pytest.mark.parametrize("overrides, words", [
    ({"fleet.groups.0.bandwidth_trace": {"mode": "looped"}},
     "fleet.groups.0.bandwidth_trace.up: give the trace of at least one direction"),
    ({"fleet.groups.0.bandwidth_trace": {"up": str(LTE_UP), "trace": "lte-99"}},
     "fleet.groups.0.bandwidth_trace.trace:"),
    ({"fleet.groups.0.bandwidth_trace": {"up": str(LTE_UP), "mode": "bounce"}},
     "fleet.groups.0.bandwidth_trace.mode:"),
    ({"fleet.groups.0.bandwidth_trace": {"up": str(LTE_UP), "offset_s": -1}},
     "fleet.groups.0.bandwidth_trace.offset_s: must be in [0, 1e+15] s or \"random\", got -1"),
    ({"fleet.groups.0.bandwidth_trace": {"up": str(LTE_UP), "offset_s": "late"}},
     "fleet.groups.0.bandwidth_trace.offset_s: must be a number of seconds or \"random\", got 'late'"),
    ({"fleet.groups.0.bandwidth_trace": {"up": str(LTE_UP), "scale": 1e7}},
     "fleet.groups.0.bandwidth_trace.scale: Input should be less than or equal to 1000000"),
    ({"fleet.groups.0.bandwidth_trace": {"up": "/nonexistent.csv"}},
     "fleet.groups.0.bandwidth_trace.up: cannot read /nonexistent.csv"),
    ({"network.link_traces": [{"access": "elsewhere", "up": str(LTE_UP)}]},
     "network.link_traces.0.access: no fleet group attaches to access network 'elsewhere'"),
    ({"network.link_traces": [{"edge": ["a", "b"], "up": str(LTE_UP)}]},
     "network.link_traces.0.edge: the built-in network names its links by access or region"),
    ({"network.link_traces": [{"access": "phones", "region": "region-0", "up": str(LTE_UP)}]},
     "network.link_traces.0.region: name exactly one shared link"),
    ({"network.link_traces": [{"access": "phones", "up": str(LTE_UP)}, {"access": "phones", "down": str(LTE_UP)}]},
     "network.link_traces.1.access: the same link is traced by network.link_traces.0 already"),
])
def test_a_wrong_trace_field_is_one_line_naming_it(overrides, words):
    with pytest.raises(InputError) as caught:
        small(overrides)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_scale_that_lifts_a_trace_beyond_any_link_is_refused(tmp_path):
    path = _write(tmp_path, "time_s,mbit_s\n0,1\n1,5e8\n")
    with pytest.raises(InputError, match=r"bandwidth_trace\.scale: 3 × the down trace's peak is 1\.5e\+15 bit/s"):
        small({"fleet.groups.0.bandwidth_trace": {"down": str(path), "scale": 3.0}})


def test_a_broken_trace_file_names_the_field_and_the_row(tmp_path):
    path = _write(tmp_path, "time_s,mbit_s\n0,1\n1,-1\n")
    with pytest.raises(InputError, match=rf"fleet\.groups\.0\.bandwidth_trace\.down: {path}: line 3: mbit_s"):
        small({"fleet.groups.0.bandwidth_trace": {"down": str(path)}})


@pytest.mark.parametrize("overrides, field", [
    ({"fleet.groups.0.bandwidth_trace": TRACED}, "fleet.groups.0.bandwidth_trace"),
    ({"network.link_traces": [{"access": "phones", "up": str(LTE_UP)}]}, "network.link_traces"),
])
def test_the_segment_engine_refuses_a_traced_link_at_load_time(overrides, field):
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        small({**overrides, "run.granularity": "segment"})
    message = str(caught.value)
    assert f"{field}: time-varying bandwidth needs granularity \"step\" or \"module\"" in message
    assert "\n" not in message and time.perf_counter() - started < 1.0


def test_a_millisecond_trace_looped_over_weeks_is_refused_before_work(tmp_path):
    """A 1 ms trace on 200 phones whose job transfers for weeks: ~10^12 change points, one line."""
    path = tmp_path / "ms.csv"
    t = np.arange(2000) * 1e-3
    path.write_text("time_s,mbit_s\n" + "".join(f"{a:.3f},{1 + (i % 2)}\n" for i, a in enumerate(t)))
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        small({"fleet.groups.0.count": 200, "job.steps": 3000, "run.horizon_s": 4 * 7 * 86400.0,
               "fleet.groups.0.bandwidth_trace": {"up": str(path), "down": str(path)}})
    message = str(caught.value)
    assert time.perf_counter() - started < 1.0 and "\n" not in message
    assert "fleet.groups.0.bandwidth_trace." in message and "trace changes each" in message
    assert "changes/s, ms.csv looped" in message


def test_a_traced_link_runs_at_step_and_module_granularity_with_the_same_bytes():
    """Module granularity moves the same bytes in more, smaller flows (which meet other parts of
    the trace, so the times differ); both are deterministic."""
    base = {"fleet.groups.0.count": 2, "fleet.groups.0.bandwidth_trace": TRACED, "job.steps": 6}
    up = {}
    for granularity in ("step", "module"):
        scenario = small({**base, "run.granularity": granularity})
        devices = build_devices(scenario)
        outcome = run_strategy(scenario, "dlora-all", devices)
        again = run_strategy(scenario, "dlora-all", devices)
        assert again.completion_s.tolist() == outcome.completion_s.tolist()
        assert np.isfinite(outcome.completion_s).all()
        up[granularity] = outcome.counters["up_sent_bytes"].tolist()
    assert up["step"] == up["module"]


# ----------------------------------------------------------------------------------- shipped


def test_the_shipped_bandwidth_traces_are_what_the_script_writes():
    sys.path.insert(0, str(REPO / "scripts"))
    from make_synthetic_traces import FILES

    for name, make in FILES.items():
        assert (TRACES / name).read_text() == make(), name
    assert [t.name for t in load_bandwidth(LTE_DOWN)] == [f"lte-{k}" for k in range(8)]
    means = [t.mean_mbit_s for t in load_bandwidth(LTE_DOWN)]
    assert 10 < np.median(means) < 60  # around the 30 Mbit/s median the script states


def test_the_shipped_bandwidth_scenario_runs(tmp_path):
    """trace-bandwidth.toml, shrunk to 4 phones and 4 steps, runs through the CLI."""
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(SHIPPED), "-o", str(out), "--no-progress", "--set", "fleet.groups.0.count=4",
                            "--set", "job.steps=4", "--set", "job.kr_interval_steps=2"])
    assert code == 0, err
    assert (out / "summary.json").is_file()
    scenario = load_scenario(SHIPPED)
    assert scenario.fleet.groups[0].bandwidth_trace is not None and scenario.network.link_traces
