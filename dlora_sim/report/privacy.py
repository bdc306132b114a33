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


ROTATION_ATTACKS = {
    "nearest_row": "nearest row, rotation unknown",
    "anchor_distances": "distances to [CLS]/[SEP]/[PAD] anchors",
    "procrustes_refit": "Procrustes fit on those, then nearest row",
    "public_weights": "R solved from the rotated first-layer weights",
}


def tradeoff_figure(record: Mapping[str, Any]) -> go.Figure:
    """Tokens recovered against the test accuracy kept, one series per defence.

    Noise: one point per σ that has both a recovery and training profiles (mean accuracy over the
    seeds, their range as the error bar). The device-trained table: one point. The rotation: one
    point per attack, at the un-noised accuracy (the accuracy it would keep if the cloud could
    run the blocks on rotated inputs, which needs rotated weights that give the rotation away).
    Without profiles (no ``noise_accuracy``) there is no accuracy to plot, and the figure says so.
    """
    fig = go.Figure()
    accuracy = {row["sigma"]: row for row in record.get("noise_accuracy", [])}
    recovery = {row["sigma"]: row for row in record["token_recovery"]}
    noise = [(accuracy[s], recovery[s]) for s in sorted(accuracy) if s in recovery]
    if noise:
        fig.add_trace(go.Scatter(
            x=[100 * a["mean"] for a, _ in noise], y=[100 * r["rate"] for _, r in noise],
            error_x={"type": "data", "symmetric": False,
                     "array": [100 * (max(a["test_accuracy"]) - a["mean"]) for a, _ in noise],
                     "arrayminus": [100 * (a["mean"] - min(a["test_accuracy"])) for a, _ in noise]},
            mode="lines+markers+text", text=[f"σ={a['sigma']:g}" for a, _ in noise], textposition="top right",
            name="Gaussian noise σ on the uploads (training and test)",
            hovertext=[f"σ = {a['sigma']:g}: accuracy {100 * a['mean']:.1f}% over seeds {a['seeds']}, "
                       f"{100 * r['rate']:.1f}% of tokens recovered" for a, r in noise], hoverinfo="text"))
    table = record.get("trained_table")
    if table:
        fig.add_trace(go.Scatter(
            x=[100 * table["test_accuracy"]], y=[100 * table["rate"]], mode="markers", marker_symbol="diamond",
            marker_size=12, name=f"device-trained embedding table ({table['steps']} steps), public-table attack"))
    if 0.0 in accuracy:
        rates = record["rotation"]["rate"]
        fig.add_trace(go.Scatter(
            x=[100 * accuracy[0.0]["mean"]] * len(rates), y=[100 * rates[k] for k in ROTATION_ATTACKS],
            mode="markers", marker_symbol="x", marker_size=11, name="private rotation, under each attack",
            hovertext=[plain(label) for label in ROTATION_ATTACKS.values()], hoverinfo="text+y"))
    if not fig.data:
        fig.add_annotation(text="no accuracy measured: run dlora-sim privacy with --profiles", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(title_text="test accuracy the device keeps (%)")
    fig.update_yaxes(title_text="% of tokens the cloud recovers", range=[-3, 105])
    return finish(fig, f"Privacy against accuracy — {plain(record['task'])}")


def inversion_figure(record: Mapping[str, Any]) -> go.Figure:
    """Tokens recovered from the hidden state at each split-learning cut k (k = 0: the uploaded
    embeddings themselves, un-noised)."""
    blocks = record["inversion"]["blocks"]
    x = [0] + [b["block"] for b in blocks]
    y = [100 * record["token_recovery"][0]["rate"] if record["token_recovery"][0]["sigma"] == 0 else None]
    y += [100 * b["rate"] for b in blocks]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers",
                               name=plain(record["inversion"]["model"])))
    fig.update_xaxes(title_text="cut k: blocks the device runs before the hidden state crosses", dtick=1)
    fig.update_yaxes(title_text="% of tokens the cloud recovers", range=[0, 105])
    return finish(fig, f"Hidden states at the cut — inversion fitted on {record['inversion']['public_tokens']:,} "
                       "tokens of public text")
