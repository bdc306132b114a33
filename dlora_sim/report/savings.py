"""What each strategy saves against the paired baseline run (same fleet, same seed, KR off).

The savings are recomputed here from the strategies' absolute totals, so the hover text can show
both numbers a planner wants: "this much less" and "from what to what".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from dlora_sim.report.style import (
    empty_figure, finish, human_bytes, human_seconds, strategy_colour, strategy_text,
)


@dataclass(frozen=True)
class Metric:
    """One quantity compared across strategies: its key in the totals, a label, and its unit."""

    key: str
    label: str
    unit: str  # "bytes" | "s" | "usd" | "flop" | "count" | "j" | "fraction"


#: the savings axis stops here; bars below it are cut (their value stays in the hover text)
CLIP_PERCENT = -200.0

DEFAULT_METRICS: tuple[Metric, ...] = (
    Metric("edge_flops", "edge compute", "flop"),
    Metric("bytes_total", "bytes up + down", "bytes"),
    Metric("round_trips", "round trips", "count"),
    Metric("completion_p50_s", "median completion time", "s"),
    Metric("money_usd", "money", "usd"),
)


def format_value(value: float, unit: str) -> str:
    """Readable value with its unit, for hover text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "bytes":
        return human_bytes(value)
    if unit == "s":
        return human_seconds(value)
    if unit == "usd":
        return f"${value:,.2f}" if abs(value) >= 0.01 else f"${value:.2e}"
    if unit == "flop":
        return f"{value:.3g} FLOP"
    if unit == "j":
        return f"{value / 1e6:,.3g} MJ" if abs(value) >= 1e5 else f"{value:,.3g} J"
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    return f"{value:,.0f}"


def saving(value: float, baseline: float) -> float:
    """Fraction saved against the baseline (0.875 = 87.5% less); NaN when undefined."""
    if baseline is None or value is None or baseline == 0 or math.isnan(baseline) or math.isnan(value):
        return math.nan
    return 1.0 - value / baseline


def savings_figure(
    totals: Mapping[str, Mapping[str, float]],
    baseline: str,
    metrics: Sequence[Metric] = DEFAULT_METRICS,
    title: str | None = None,
) -> go.Figure:
    """Grouped bars: per metric, how much less each strategy uses than the baseline (in %).

    Args:
        totals: ``totals[strategy][metric_key]``: absolute totals of each strategy.
        baseline: the strategy every other one is compared against (the paired run).
        metrics: which totals to compare; missing keys are skipped.
        title: figure title; a sensible one naming the baseline by default.
    """
    title = title or f"Savings of each strategy against the paired baseline: {strategy_text(baseline)}"
    if baseline not in totals:
        return empty_figure(title, f"The baseline strategy '{baseline}' is not in these results.")
    base = totals[baseline]
    shown = [m for m in metrics if m.key in base]
    others = [s for s in totals if s != baseline]
    if not shown or not others:
        return empty_figure(title, "Nothing to compare: one strategy only, or no shared totals.")
    fig = go.Figure()
    for strategy in others:
        ys, texts = [], []
        for m in shown:
            value = totals[strategy].get(m.key, math.nan)
            frac = saving(value, base[m.key])
            ys.append(None if math.isnan(frac) else 100.0 * frac)
            direction = "less" if not math.isnan(frac) and frac >= 0 else "more"
            texts.append(
                f"{strategy_text(strategy)}<br>{m.label}: {format_value(value, m.unit)}<br>"
                f"baseline: {format_value(base[m.key], m.unit)}<br>"
                + ("no baseline value" if math.isnan(frac) else f"{abs(100 * frac):.1f}% {direction}")
            )
        fig.add_trace(go.Bar(
            x=[m.label for m in shown], y=ys, name=strategy_text(strategy),
            marker_color=strategy_colour(strategy), hovertext=texts, hoverinfo="text",
            texttemplate="%{y:.1f}%", textposition="auto", cliponaxis=True,
        ))
    fig.add_hline(y=0, line_color="black", line_width=1)
    fig.update_layout(barmode="group")
    values = [y for trace in fig.data for y in trace.y if y is not None]
    axis_title = "saved vs baseline (%; negative = uses more)"
    if values and min(values) < CLIP_PERCENT:
        # one strategy using 500x more (edge-only compute) would flatten every other bar
        fig.update_yaxes(range=[CLIP_PERCENT - 10, 110])
        axis_title += f"<br>axis cut at {CLIP_PERCENT:.0f}%: hover a cut bar for its value"
    fig.update_yaxes(title_text=axis_title)
    fig.update_xaxes(title_text="quantity compared (whole job, all devices)")
    return finish(fig, title)
