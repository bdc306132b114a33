"""Where the cost goes: device energy, link usage, mobile data, cloud GPU time, per strategy.

Each component keeps its own unit (kWh, GB, GPU-hours, $) in its own panel: adding joules to
dollars would need prices the results may not hold, and a planner reads each bill separately.
The dominant bills sit beside the small ones on purpose: the radio's energy beside the compute's,
the GPUs rented for the run beside the GPU time used, the user's mobile data beside the cloud's.
Every value is read from summary.json; nothing is recomputed here.
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
    Component("energy_j", "Device compute energy", "kWh (all devices)", 1 / 3.6e6, "j",
              "energy the devices spend computing"),
    Component("radio_energy_j", "Device radio energy", "kWh (all devices)", 1 / 3.6e6, "j",
              "energy the devices' radios spend sending, receiving and waiting on round trips"),
    Component("bytes_total", "Link traffic", "GB up + down", 1e-9, "bytes",
              "bytes the devices send and receive"),
    Component("data_usd", "Mobile data", "US dollars (all users)", 1.0, "usd",
              "what the users pay their carriers for the traffic, at each link's price per GB"),
    Component("link_s", "Link time", "device-hours on the link", 1 / 3600, "s",
              "time devices spend transferring, round-trip waits included"),
    Component("cloud_gpu_s", "Cloud GPU busy", "GPU-hours", 1 / 3600, "s",
              "GPU time the cloud spends on the frozen base model"),
    Component("gpu_utilisation", "GPU utilisation", "% of the rented GPU-hours", 100.0, "fraction",
              "busy GPU time / (GPUs × hours rented)"),
    Component("cloud_wait_per_step_s", "Queueing for a GPU", "seconds per step", 1.0, "s",
              "mean time a step's requests waited for a GPU (batching window included)"),
    Component("money_usd", "GPU busy $", "US dollars", 1.0, "usd",
              "the GPU time used, at the GPU's price per hour"),
    Component("provisioned_usd", "GPU rented $", "US dollars", 1.0, "usd",
              "every GPU of the pool for the whole run (until the last device finishes, or the horizon)"),
)

#: panels per row of a breakdown; more wrap onto the next row
PANELS_PER_ROW = 5


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
    n_rows = math.ceil(len(shown) / PANELS_PER_ROW)
    n_cols = min(len(shown), PANELS_PER_ROW)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[c.title for c in shown],
                        horizontal_spacing=0.07, vertical_spacing=0.32 if n_rows > 1 else 0.0)
    for index, comp in enumerate(shown):
        row, col = index // PANELS_PER_ROW + 1, index % PANELS_PER_ROW + 1
        for strategy, values in totals.items():
            raw = values.get(comp.key, math.nan)
            raw = math.nan if raw is None else float(raw)
            fig.add_trace(go.Bar(
                x=[short_name(strategy)], y=[raw * comp.scale],
                name=strategy_text(strategy), legendgroup=strategy_text(strategy), showlegend=index == 0,
                marker_color=strategy_colour(strategy),
                hovertext=[f"{strategy_text(strategy)}<br>{comp.title}: "
                           f"{format_value(raw, comp.raw_unit)}<br>({comp.help})"],
                hoverinfo="text",
            ), row=row, col=col)
        fig.update_yaxes(title_text=comp.axis_unit, row=row, col=col)
        fig.update_xaxes(tickangle=-40, row=row, col=col)
    return finish(fig, title, height_px=480 * n_rows)


#: the few words a bar's tick label has room for
SHORT_NAMES: dict[str, str] = {
    "cloud-only": "cloud-only", "edge-only": "edge-only", "edge-only-int4": "edge int4",
    "dlora-all": "DLoRA all", "dlora-kr": "DLoRA KR", "dlora-random": "DLoRA random",
    "dlora-static-random": "DLoRA static", "split-lora": "split", "fed-lora": "federated",
}


def short_name(strategy: str) -> str:
    """A strategy's tick label (the legend gives the full name); unknown ids shown as text."""
    return SHORT_NAMES.get(strategy, strategy_text(strategy))
