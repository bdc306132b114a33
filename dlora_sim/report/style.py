"""Shared look of every dashboard figure: one colour and one readable name per strategy.

A planner compares strategies across many figures, so a strategy must keep its colour and its
plain-language name everywhere; this module is the single place that decides both. It also
decides how text from the results is shown: Plotly draws a subset of HTML (``<a href>``,
``<b>``, ``<br>``) in every label, legend and hover, so text from files goes through
:func:`plain` and reads as the characters it holds, never as markup.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

# strategy id (as the cost model and simulator name it) -> label a newcomer understands
STRATEGY_LABELS: dict[str, str] = {
    "cloud-only": "Cloud-only PEFT (data leaves the device)",
    "edge-only": "Edge-only PEFT (whole model on the device)",
    "dlora-all": "DLoRA, all modules trained",
    "dlora-kr": "DLoRA + Kill-and-Revive",
    "dlora-random": "DLoRA + random-B modules",
    "dlora-static-random": "DLoRA + a random B fixed for the run",
    "split-lora": "Split learning + LoRA (first blocks on the device)",
    "fed-lora": "Federated LoRA (local training, FedAvg)",
    "edge-only-int4": "Edge-only PEFT on a 4-bit base",
}

STRATEGY_COLOURS: dict[str, str] = {
    "cloud-only": "#7f7f7f",
    "edge-only": "#8c564b",
    "dlora-all": "#1f77b4",
    "dlora-kr": "#d62728",
    "dlora-random": "#ff7f0e",
    "dlora-static-random": "#bcbd22",
    "split-lora": "#2ca02c",
    "fed-lora": "#9467bd",
    "edge-only-int4": "#e377c2",
}

_FALLBACK_COLOURS = ["#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5"]

TEMPLATE = "plotly_white"


def plain(text: object) -> str:
    """``text`` for a Plotly label, legend or hover: markup characters escaped, so a name such
    as ``<a href=...>`` is shown as typed instead of becoming a live link."""
    return html.escape(str(text), quote=False)


def strategy_label(strategy: str) -> str:
    """Readable name of a strategy; unknown ids are shown as they are."""
    return STRATEGY_LABELS.get(strategy, strategy)


def strategy_text(strategy: str) -> str:
    """:func:`strategy_label` for a figure (an unknown id from a file is text, not markup)."""
    return plain(strategy_label(strategy))


def strategy_colour(strategy: str) -> str:
    """Stable colour of a strategy; unknown ids get a stable colour from their name."""
    if strategy in STRATEGY_COLOURS:
        return STRATEGY_COLOURS[strategy]
    return _FALLBACK_COLOURS[sum(map(ord, strategy)) % len(_FALLBACK_COLOURS)]


def finish(fig: go.Figure, title: str, height_px: int = 460) -> go.Figure:
    """Apply the common layout: title, template, legend placement, hover label style."""
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        template=TEMPLATE,
        height=height_px,
        margin={"l": 70, "r": 30, "t": 70, "b": 60},
        hoverlabel={"align": "left"},
        legend={"orientation": "h", "yanchor": "bottom", "y": -0.35, "x": 0.0},
    )
    return fig


def empty_figure(title: str, reason: str) -> go.Figure:
    """A figure that says why there is nothing to plot, instead of a blank or missing chart."""
    fig = go.Figure()
    fig.add_annotation(text=plain(reason), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 14})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return finish(fig, title, height_px=260)


def human_bytes(n_bytes: float) -> str:
    """Format a byte count with a binary-free SI unit (kB, MB, GB) for hover text."""
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{value:,.0f} B"
        value /= 1000
    return f"{value:,.1f} TB"


def human_seconds(seconds: float) -> str:
    """Format a duration as s, min, h or days for hover text."""
    s = float(seconds)
    if s < 120:
        return f"{s:,.1f} s"
    if s < 7200:
        return f"{s / 60:,.1f} min"
    if s < 172800:
        return f"{s / 3600:,.1f} h"
    return f"{s / 86400:,.1f} days"
