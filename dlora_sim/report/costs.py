"""Where the cost goes: edge energy, link usage and cloud GPU time, per strategy.

Each component keeps its own unit (kWh, GB, GPU-hours, $) in its own panel: adding joules to
dollars would need prices the results may not hold, and a planner reads each bill separately.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dlora_sim.report.savings import format_value
from dlora_sim.report.style import empty_figure, finish, strategy_colour, strategy_text


@dataclass(frozen=True)
class Component:
    """One cost component: key in the totals, panel title, axis unit, scale to that unit."""

    key: str
    title: str
    axis_unit: str
    scale: float  # multiply the stored value by this to get the axis unit
    raw_unit: str  # unit of the stored value, for hover ("j", "bytes", "s", "usd")
    help: str


DEFAULT_COMPONENTS: tuple[Component, ...] = (
    Component("energy_j", "Edge energy", "kWh (all devices)", 1 / 3.6e6, "j",
              "energy the devices spend computing"),
    Component("bytes_total", "Link traffic", "GB up + down", 1e-9, "bytes",
              "bytes the devices send and receive"),
    Component("link_s", "Link time", "device-hours on the link", 1 / 3600, "s",
              "time devices spend transferring, latency included; estimated from the sampled devices"),
    Component("cloud_gpu_s", "Cloud GPU", "GPU-hours", 1 / 3600, "s",
              "GPU time the cloud spends on the frozen base model"),
    Component("money_usd", "Money", "US dollars", 1.0, "usd",
              "what the run costs in the cloud price model"),
)


#: the cloud's GPU memory, from summary.json's ``cloud_memory`` (flattened as ``memory_*``)
MEMORY_COMPONENTS: tuple[Component, ...] = (
    Component("memory_peak_bytes_per_gpu", "Peak GPU memory", "GB per GPU", 1e-9, "bytes",
              "frozen weights + the activations of the sessions in flight at the peak"),
    Component("memory_session_bytes", "One session", "GB", 1e-9, "bytes",
              "activations a session keeps on a GPU through its step"),
    Component("memory_memory_wait_s", "Waiting for memory", "device-hours", 1 / 3600, "s",
              "time sessions waited for room on a GPU (memory_full = queue)"),
    Component("memory_recomputed_steps", "Recomputed steps", "steps", 1.0, "steps",
              "steps whose forward the cloud ran twice for lack of memory (memory_full = recompute)"),
)


def cost_breakdown(
    totals: Mapping[str, Mapping[str, float]],
    components: Sequence[Component] = DEFAULT_COMPONENTS,
    title: str = "Cost breakdown per strategy: edge energy, link, cloud GPU, money",
) -> go.Figure:
    """One panel per cost component, one bar per strategy.

    Args:
        totals: ``totals[strategy][component_key]`` in the stored units (J, bytes, s, USD).
        components: which components to show; those no strategy has are skipped.
        title: figure title.
    """
    shown = [c for c in components if any(c.key in t for t in totals.values())]
    if not totals or not shown:
        return empty_figure(title, "No cost totals in these results.")
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=[c.title for c in shown],
                        horizontal_spacing=0.06)
    for col, comp in enumerate(shown, start=1):
        for strategy, values in totals.items():
            raw = values.get(comp.key, math.nan)
            raw = math.nan if raw is None else float(raw)
            fig.add_trace(go.Bar(
                x=[strategy_text(strategy).split(" (")[0]], y=[raw * comp.scale],
                name=strategy_text(strategy), legendgroup=strategy_text(strategy), showlegend=col == 1,
                marker_color=strategy_colour(strategy),
                hovertext=[f"{strategy_text(strategy)}<br>{comp.title}: "
                           f"{format_value(raw, comp.raw_unit)}<br>({comp.help})"],
                hoverinfo="text",
            ), row=1, col=col)
        fig.update_yaxes(title_text=comp.axis_unit, row=1, col=col)
        fig.update_xaxes(showticklabels=False, title_text="strategy (see legend)", row=1, col=col)
    return finish(fig, title, height_px=480)
