"""The fleet view: when devices finish their jobs, and what a sample of devices spent time on.

The completion CDF answers "by when are 50% / 95% of users fine-tuned"; the timeline answers
"why are the slow ones slow" (computing, waiting on the link or the cloud, or offline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from dlora_sim.report.style import (
    empty_figure, finish, human_seconds, plain, strategy_colour, strategy_text,
)

STATE_COLOURS: dict[str, str] = {
    "compute": "#2ca02c", "upload": "#1f77b4", "download": "#17becf", "cloud": "#9467bd",
    "wait": "#ffbf00", "session": "#bcbd22", "kr": "#e377c2", "offline": "#7f7f7f",
    "lost": "#d62728",
}

STATE_HELP: dict[str, str] = {
    "compute": "working: the device computes its part (embedding, active PEFT modules, head)",
    "upload": "working: activations/gradients go up the device's link",
    "download": "working: activations/gradients come down the device's link",
    "cloud": "waiting: the cloud GPUs run the frozen base model for this step",
    "wait": "waiting: queued for admission, a GPU slot or the message queue",
    "session": "working: (re)opening the session, re-uploading offloaded modules if needed",
    "kr": "working: a Kill-and-Revive round (probe batch, uploads of killed modules)",
    "offline": "disconnected: the device is offline",
    "lost": "work in flight lost to a disconnection (redone from the last checkpoint)",
}


def cdf_points(completion_s: Sequence[float], n_devices: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted finish times and the fraction of the fleet finished by each.

    Unfinished devices (NaN or inf) count in the denominator but never finish, so the curve of
    a strategy that leaves devices unfinished stays below 1.
    """
    values = np.asarray(completion_s, dtype=float)
    done = np.sort(values[np.isfinite(values)])
    total = n_devices if n_devices is not None else len(values)
    if total == 0:
        return done, np.zeros(0)
    return done, np.arange(1, len(done) + 1) / total


def completion_cdf(
    completion_s: Mapping[str, Sequence[float]],
    title: str = "When devices finish their fine-tuning job (fleet CDF per strategy)",
) -> go.Figure:
    """Empirical CDF of job completion time across the fleet, one line per strategy.

    Args:
        completion_s: per strategy, each device's completion time in seconds (NaN = unfinished).
        title: figure title.
    """
    if not completion_s or all(len(v) == 0 for v in completion_s.values()):
        return empty_figure(title, "No device completion times in these results.")
    fig = go.Figure()
    for strategy, times in completion_s.items():
        xs, ys = cdf_points(times)
        unfinished = len(times) - len(xs)
        hover = [f"{strategy_text(strategy)}<br>{100 * y:.1f}% of devices done by "
                 f"{human_seconds(x)} ({x:,.0f} s)" for x, y in zip(xs, ys)]
        name = strategy_text(strategy) + (f" — {unfinished} unfinished" if unfinished else "")
        fig.add_trace(go.Scatter(x=xs / 3600.0, y=ys, mode="lines", line={"shape": "hv"}, name=name,
                                 marker_color=strategy_colour(strategy), hovertext=hover,
                                 hoverinfo="text"))
    finished = [float(x) for v in completion_s.values() for x in v if x == x and x > 0]
    # strategies can differ by orders of magnitude (cloud-only in minutes, DLoRA in days): a log
    # axis keeps every curve readable once the spread exceeds 10x
    wide = bool(finished) and max(finished) > 10 * min(finished)
    fig.update_xaxes(title_text="job completion time (hours since start" + (", log scale)" if wide else ")"),
                     type="log" if wide else "linear")
    fig.update_yaxes(title_text="fraction of devices finished", range=[0, 1.02])
    return finish(fig, title)


def device_timeline(
    segments: Sequence[Mapping[str, object]],
    title: str = "What a sample of devices spent their time on",
) -> go.Figure:
    """Gantt-style timeline: one row per sampled device, one bar per activity segment.

    Args:
        segments: rows with ``strategy``, ``device`` (id or name), ``state`` (compute, upload,
            cloud, offline, lost, ...), ``start_s``, ``end_s`` and optionally ``detail`` (hover
            text of a binned bar, see :mod:`dlora_sim.report.timeline`).
        title: figure title.

    Returns:
        A figure with a drop-down to switch between strategies (first strategy shown).
    """
    rows = [s for s in segments if float(s["end_s"]) > float(s["start_s"])]
    if not rows:
        return empty_figure(title, "No device timeline was sampled in these results.")
    strategies = list(dict.fromkeys(str(s["strategy"]) for s in rows))
    states = list(dict.fromkeys(str(s["state"]) for s in rows))
    fig = go.Figure()
    owner: list[str] = []
    for strategy in strategies:
        for state in states:
            sel = [s for s in rows if str(s["strategy"]) == strategy and str(s["state"]) == state]
            if not sel:
                continue
            start_h = [float(s["start_s"]) / 3600 for s in sel]
            dur_h = [(float(s["end_s"]) - float(s["start_s"])) / 3600 for s in sel]
            help_text = plain(STATE_HELP.get(state, state))
            hover = [f"device {plain(s['device'])} — {plain(s.get('detail') or state)}<br>{help_text}<br>"
                     f"from {human_seconds(float(s['start_s']))} to {human_seconds(float(s['end_s']))}"
                     f" ({human_seconds(float(s['end_s']) - float(s['start_s']))})" for s in sel]
            fig.add_trace(go.Bar(
                y=[f"device {plain(s['device'])}" for s in sel], x=dur_h, base=start_h, orientation="h",
                name=plain(state), legendgroup=plain(state), marker_color=STATE_COLOURS.get(state, "#bcbd22"),
                hovertext=hover, hoverinfo="text", visible=strategy == strategies[0],
            ))
            owner.append(strategy)
    if len(strategies) > 1:
        buttons = [{"label": strategy_text(s), "method": "update",
                    "args": [{"visible": [o == s for o in owner]}]} for s in strategies]
        fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right", "y": 1.12,
                                        "yanchor": "top", "showactive": True}])
    n_devices = len({str(s["device"]) for s in rows})
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="simulated time (hours since start)")
    fig.update_yaxes(title_text="sampled device", type="category", autorange="reversed")
    height = max(380, min(1400, 22 * n_devices + 220))
    return finish(fig, title, height_px=height)

