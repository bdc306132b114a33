"""Capacity that changes over time: a bandwidth trace laid onto the simulation's clock.

A :class:`RateSchedule` is a piecewise-constant rate in bytes/s over simulated time: a trace's
change points (docs/traces.md), shifted by an offset (simulated time 0 is ``offset_s`` into the
trace), and either **looped** (the trace repeats with its duration as the period) or **clipped**
(after the trace's end its last rate holds). A :class:`Cursor` walks one schedule forward: its
current rate and the time of its next change. Change times are computed from the trace and the
period (``k · period + t_i − offset``), never by adding steps to the clock, so a cursor does not
drift however long it runs.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Cursor", "RateSchedule"]


class RateSchedule:
    """A rate (bytes/s) that follows a trace: ``times_s``/``bytes_per_s`` its change points from
    the trace's start, ``period_s`` its duration, ``looped`` or clipped, ``offset_s`` where
    simulated time 0 falls in it. ``key`` identifies it (equal keys, equal schedules)."""

    __slots__ = ("times", "rates", "period", "looped", "offset", "key", "_wrap_changes")

    def __init__(self, times_s: np.ndarray, bytes_per_s: np.ndarray, period_s: float, looped: bool,
                 offset_s: float, key: tuple = ()) -> None:
        times = np.asarray(times_s, dtype=float)
        rates = np.asarray(bytes_per_s, dtype=float)
        if len(times) == 0 or len(times) != len(rates) or times[0] != 0.0:
            raise ValueError("a rate schedule needs change points starting at 0, one rate each")
        if len(times) > 1 and not period_s > times[-1]:
            raise ValueError(f"period {period_s} must end after the last change point {times[-1]}")
        self.times = times.tolist()  # Python floats: the cursor indexes them one at a time
        self.rates = rates.tolist()
        self.period = float(period_s)
        self.looped = bool(looped) and len(times) > 1
        self.offset = float(offset_s)
        self.key = key
        self._wrap_changes = len(times) > 1 and self.rates[-1] != self.rates[0]

    @classmethod
    def from_trace(cls, trace, bytes_per_mbit: float, looped: bool, offset_s: float = 0.0,
                   key: tuple = ()) -> RateSchedule:
        """A :class:`~dlora_sim.traces.bandwidth.BandwidthTrace` (its change points, repeats
        merged) in bytes/s: each Mbit/s times ``bytes_per_mbit``."""
        times, mbit_s = trace.changes
        return cls(times, np.asarray(mbit_s) * bytes_per_mbit, trace.duration_s, looped, offset_s, key)

    def with_offset(self, offset_s: float, key: tuple = ()) -> RateSchedule:
        """The same schedule from another offset, sharing its change points (a fleet of devices
        on one trace holds it once)."""
        other = object.__new__(RateSchedule)
        for name in ("times", "rates", "period", "looped", "_wrap_changes"):
            setattr(other, name, getattr(self, name))
        other.offset = float(offset_s)
        other.key = key
        return other

    @property
    def mean(self) -> float:
        """The time-average rate over one period (bytes/s)."""
        if self.constant:
            return self.rates[0]
        widths = np.diff(np.append(self.times, self.period))
        return float(np.dot(widths, self.rates) / self.period)

    @property
    def constant(self) -> bool:
        return len(self.times) == 1

    def rate_at(self, t: float) -> float:
        """The rate at simulated time ``t`` (for tests and reports; the engine walks a cursor)."""
        return Cursor(self, t).rate

    def bytes_between(self, a: float, b: float) -> float:
        """Bytes the schedule's capacity carries from ``a`` to ``b`` (its integral; ``a <= b``)."""
        cursor = Cursor(self, a)
        total, t = 0.0, a
        while cursor.next_t < b:
            total += cursor.rate * (cursor.next_t - t)
            t = cursor.next_t
            cursor.advance()
        return total + cursor.rate * (b - t)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RateSchedule) and self.key == other.key and bool(self.key)

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        mode = "looped" if self.looped else "clipped"
        return f"RateSchedule({len(self.times)} points, {self.period:g} s {mode}, offset {self.offset:g} s)"


class Cursor:
    """Where one schedule stands: ``rate`` now, ``next_t`` the next change (inf: none)."""

    __slots__ = ("sched", "cycle", "index", "rate", "next_t")

    def __init__(self, sched: RateSchedule, now: float) -> None:
        self.sched = sched
        u = now + sched.offset  # trace time
        times = sched.times
        if sched.constant:
            self.cycle, self.index = 0, 0
        elif sched.looped:
            cycle = math.floor(u / sched.period)
            self.cycle = int(cycle)
            self.index = max(0, int(np.searchsorted(times, u - cycle * sched.period, side="right")) - 1)
        else:
            self.cycle, self.index = 0, max(0, int(np.searchsorted(times, u, side="right")) - 1)
        self.rate = sched.rates[self.index]
        self.next_t = self._next()
        while self.next_t <= now:  # rounding put ``now`` just before a change point: step over it
            self.advance()

    def _start(self, cycle: int, index: int) -> float:
        sched = self.sched
        return cycle * sched.period + sched.times[index] - sched.offset

    def _next(self) -> float:
        """When the rate next changes (a looped trace's wrap only if it changes the rate)."""
        sched = self.sched
        if sched.constant:
            return math.inf
        if self.index + 1 < len(sched.times):
            return self._start(self.cycle, self.index + 1)
        if not sched.looped:
            return math.inf
        if sched._wrap_changes:
            return self._start(self.cycle + 1, 0)
        return self._start(self.cycle + 1, 1)  # same rate across the wrap: the next real change

    def advance(self) -> None:
        """Move to the next change point (call at ``next_t``)."""
        sched = self.sched
        if self.index + 1 < len(sched.times):
            self.index += 1
        elif sched._wrap_changes:
            self.cycle, self.index = self.cycle + 1, 0
        else:
            self.cycle, self.index = self.cycle + 1, 1
        self.rate = sched.rates[self.index]
        self.next_t = self._next()
