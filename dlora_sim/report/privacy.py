"""The privacy audit's figure: how much of the text the cloud recovers as the device adds noise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from dlora_sim.report.style import finish, plain


def recovery_figure(record: Mapping[str, Any]) -> go.Figure:
    """Token recovery rate against the noise scale σ on the uploaded embeddings (one line), with
    the label recovery from the returned gradient as a reference line."""
    points = list(record["token_recovery"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[p["sigma"] for p in points], y=[100 * p["rate"] for p in points], mode="lines+markers",
        name="tokens recovered from uploaded embeddings (nearest row of the public table)",
        hovertext=[f"σ = {p['sigma']:g}: {p['recovered']:,} of {p['tokens']:,} tokens" for p in points],
        hoverinfo="text"))
    labels = record["label_recovery"]
    fig.add_hline(y=100 * labels["rate"], line_dash="dash",
                  annotation_text=plain(f"labels recovered from the gradient ({labels['head']} head): "
                                        f"{100 * labels['rate']:.0f}%"))
    fig.update_xaxes(title_text="σ of the Gaussian noise the device adds to its embeddings")
    fig.update_yaxes(title_text="% recovered by the cloud", range=[0, 105])
    title = f"What the cloud recovers — {plain(record['model'])} on {plain(record['task'])}, {record['examples']} test examples"
    return finish(fig, title)
