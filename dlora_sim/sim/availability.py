"""When each device is reachable: always, a Markov on/off process, or a recorded trace.

A phone on a train is the picture: online for a while, then a tunnel. The engine only needs the
offline intervals of each device, drawn once before the run from the device's own random stream
(:func:`dlora_sim.sim.rng.stream`), so that every strategy of a paired run meets exactly the same
tunnels at exactly the same times.

The models are the scenario's (``kind`` = ``always`` | ``markov`` | ``trace``); this module only
turns one into intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["offline_intervals", "online_fraction", "complement"]


def offline_intervals(
    model: Any, horizon_s: float, rng: np.random.Generator, device_index: int = 0
) -> list[tuple[float, float]]:
    """Return the sorted, disjoint offline intervals of one device that start before ``horizon_s``.

    Args:
        model: the scenario's availability model (attribute ``kind``).
        horizon_s: the end of simulated time; later intervals are not needed.
        rng: the device's own ``"availability"`` stream.
        device_index: the device's index inside its fleet group (selects a trace row).

    Returns:
        A list of ``(t_off_s, t_on_s)``; the last interval may end after the horizon
        (``inf`` when a trace never brings the device back).
    """
    kind = getattr(model, "kind", None)
    if kind == "always":
        return []
    if kind == "markov":
        return _markov(model.mean_online_s, model.mean_offline_s, model.start_online, horizon_s, rng)
    if kind == "trace":
        return complement(model.intervals_for(device_index), horizon_s)
    raise ValueError(f"unknown availability kind {kind!r}")


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


def _markov(
    mean_online_s: float, mean_offline_s: float, start_online: bool, horizon_s: float,
    rng: np.random.Generator,
) -> list[tuple[float, float]]:
    online = bool(start_online)
    t_s = 0.0
    out: list[tuple[float, float]] = []
    while t_s < horizon_s:
        if online:
            t_s += float(rng.exponential(mean_online_s))
        else:
            end_s = t_s + float(rng.exponential(mean_offline_s))
            out.append((t_s, end_s))
            t_s = end_s
        online = not online
    return [(a, b) for a, b in out if a < horizon_s]


def online_fraction(intervals: Sequence[tuple[float, float]], horizon_s: float) -> float:
    """Fraction of ``[0, horizon_s]`` during which the device is online (reports and tests)."""
    off_s = sum(max(0.0, min(b, horizon_s) - a) for a, b in intervals if a < horizon_s)
    return 1.0 - off_s / horizon_s if horizon_s > 0 else 1.0
