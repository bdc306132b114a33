"""Thin a device timeline for drawing: at most a few hundred bars per device, honestly labelled.

A week-long run logs every compute, upload and download of every step: hundreds of thousands of
segments, a 30 MB page and a browser that stalls. Like a map that switches from streets to
districts when zoomed out, each device's time is cut into equal bins; a bin shows the activity
that took most of its time, neighbouring bins with the same activity merge into one bar, and the
hover text says what the bar is made of ("upload 62%, compute 20%, cloud 18%"). Devices with few
segments are drawn exactly as logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def occupancy(starts: np.ndarray, ends: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Time spent inside the (sorted, non-overlapping) segments up to each time in ``t``."""
    if starts.size == 0:
        return np.zeros_like(t)
    durations = ends - starts
    before = np.concatenate([[0.0], np.cumsum(durations)])
    j = np.searchsorted(starts, t, side="right")  # segments that started at or before t
    full = before[np.maximum(j - 1, 0)]  # all segments before the last started one
    last = np.maximum(j - 1, 0)
    partial = np.where(j > 0, np.clip(t - starts[last], 0.0, durations[last]), 0.0)
    return full + partial


def _bin_device(rows: list[Mapping[str, Any]], n_bins: int) -> list[dict[str, Any]]:
    """One device of one strategy: dominant activity per bin, equal neighbours merged."""
    t0 = min(float(r["start_s"]) for r in rows)
    t1 = max(float(r["end_s"]) for r in rows)
    edges = np.linspace(t0, t1, n_bins + 1)
    states = sorted({str(r["state"]) for r in rows})
    per_bin = np.zeros((len(states), n_bins))
    for k, state in enumerate(states):
        sel = sorted((float(r["start_s"]), float(r["end_s"])) for r in rows if str(r["state"]) == state)
        starts = np.array([a for a, _ in sel])
        ends = np.array([b for _, b in sel])
        per_bin[k] = np.diff(occupancy(starts, ends, edges))
    dominant = per_bin.argmax(axis=0)
    busy = per_bin.sum(axis=0) > 0
    out: list[dict[str, Any]] = []
    template = rows[0]
    i = 0
    while i < n_bins:
        if not busy[i]:
            i += 1
            continue
        j = i
        while j + 1 < n_bins and busy[j + 1] and dominant[j + 1] == dominant[i]:
            j += 1
        share = per_bin[:, i:j + 1].sum(axis=1)
        total = share.sum()
        parts = [f"{states[k]} {100 * share[k] / total:.0f}%" for k in np.argsort(-share)[:4]
                 if share[k] > 0]
        out.append({"strategy": template["strategy"], "device": template["device"],
                    "state": states[dominant[i]], "start_s": float(edges[i]),
                    "end_s": float(edges[j + 1]),
                    "detail": "mostly " + states[dominant[i]] + " — " + ", ".join(parts)})
        i = j + 1
    return out


def thin_timeline(segments: Sequence[Mapping[str, Any]],
                  max_bars_per_device: int = 240) -> list[dict[str, Any]]:
    """Segments to draw: as logged where a device has few, binned where it has many.

    Args:
        segments: rows with ``strategy``, ``device``, ``state``, ``start_s``, ``end_s``.
        max_bars_per_device: bins per device (and strategy) once it has more segments than this.

    Returns:
        Rows of the same shape; binned rows carry a ``detail`` text with the bar's composition.
    """
    by_device: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in segments:
        by_device.setdefault((str(row["strategy"]), str(row["device"])), []).append(row)
    out: list[dict[str, Any]] = []
    for rows in by_device.values():
        if len(rows) <= max_bars_per_device:
            out.extend(dict(r) for r in rows)
        else:
            out.extend(_bin_device(rows, max_bars_per_device))
    return out
