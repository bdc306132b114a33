"""Interval helpers for availability: a trace's online spans as offline gaps, online fractions.

The outages themselves are drawn per fleet group in :mod:`dlora_sim.sim.fleet`; these two
functions are the plain interval arithmetic it and the reports share.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["online_fraction", "complement"]


def complement(online: Sequence[tuple[float, float]], horizon_s: float) -> list[tuple[float, float]]:
    """Offline intervals of a device that is online exactly during ``online`` (sorted, disjoint)."""
    out: list[tuple[float, float]] = []
    t_s = 0.0
    for start_s, end_s in online:
        if start_s > t_s:
            out.append((t_s, float(start_s)))
        t_s = max(t_s, float(end_s))
        if t_s >= horizon_s:
            return out
    out.append((t_s, float("inf")))
    return out


def online_fraction(intervals: Sequence[tuple[float, float]], horizon_s: float) -> float:
    """Fraction of ``[0, horizon_s]`` during which the device is online (reports and tests)."""
    off_s = sum(max(0.0, min(b, horizon_s) - a) for a, b in intervals if a < horizon_s)
    return 1.0 - off_s / horizon_s if horizon_s > 0 else 1.0
