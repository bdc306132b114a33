"""The Kill-and-Revive picture: which PEFT modules moved, which were killed, which came back.

Think of a gardener pruning: the heatmap is the growth of every branch (module) per season (KR
round), the crosses are the cuts and the triangles the branches that were allowed to grow again.
Both figures take plain lists from a profile's traces, so they work for any profile and are easy
to test with hand-made data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dlora_sim.report.style import empty_figure, finish


def kr_events(active: Sequence[Sequence[int]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Kills and revivals between consecutive rounds.

    Args:
        active: per KR round, the indices of the modules that are trainable after that round.

    Returns:
        ``(kills, revivals)``: lists of ``(round_index, module_index)``; a kill at round ``r`` means
        the module was active after round ``r-1`` and not after round ``r``.
    """
    kills: list[tuple[int, int]] = []
    revivals: list[tuple[int, int]] = []
    for r in range(1, len(active)):
        before, after = set(active[r - 1]), set(active[r])
        kills.extend((r, m) for m in sorted(before - after))
        revivals.extend((r, m) for m in sorted(after - before))
    return kills, revivals


def norm_change_matrix(norms: Sequence[Sequence[float]], score: str = "norm-diff") -> np.ndarray:
    """Weight change per module between consecutive rounds, shape (modules, rounds-1).

    With score ``norm-diff`` the profile records the norm ‖W(t)‖ per round, so the change is
    |‖W(t)‖ − ‖W(t−w)‖|; with ``diff-norm`` it records ‖W(t) − W(t−w)‖ already, used as it is.
    A killed module is frozen, so its change is exactly zero: the dark cells of the heatmap.
    """
    arr = np.asarray(norms, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 2:
        return np.zeros((arr.shape[1] if arr.ndim == 2 else 0, 0))
    if score == "diff-norm":
        return arr[1:].T.copy()
    return np.abs(np.diff(arr, axis=0)).T


def norm_heatmap(
    module_names: Sequence[str],
    round_steps: Sequence[int],
    norms: Sequence[Sequence[float]],
    active: Sequence[Sequence[int]],
    score: str = "norm-diff",
    title: str = "Kill-and-Revive: how much each module's weights changed per KR round",
) -> go.Figure:
    """Heatmap of per-module weight-norm change over training, kills and revivals marked.

    Args:
        module_names: one name per PEFT module (rows of the heatmap).
        round_steps: training step at which each KR round happened.
        norms: ``norms[round][module]``: the L2 norm of the module's weights at that round.
        active: ``active[round]``: sorted indices of modules active after that round.
        score: the profile's KR score kind, saying what ``norms`` holds (see
            :func:`norm_change_matrix`).
        title: figure title.

    Returns:
        A plotly figure; x is the training step, y the module.
    """
    change = norm_change_matrix(norms, score)
    if change.shape[1] == 0:
        return empty_figure(title, "The profile has fewer than two KR rounds: no change to show.")
    steps = list(round_steps[1:])
    names = list(module_names)
    active_sets = [set(a) for a in active]
    state = [["trainable" if m in active_sets[r] else "killed (frozen)" for r in range(1, len(active))]
             for m in range(len(names))]
    fig = go.Figure(go.Heatmap(
        z=change, x=steps, y=names, customdata=state, colorscale="Viridis",
        colorbar={"title": {"text": "|Δ‖W‖|<br>(L2 norm)"}},
        hovertemplate=("module %{y}<br>KR round at step %{x}<br>"
                       "weight-norm change since previous round: %{z:.3g}<br>"
                       "state after this round: %{customdata}<extra></extra>"),
    ))
    kills, revivals = kr_events(active)
    for events, name, symbol, colour, verb in (
        (kills, "killed (frozen from here on)", "x", "#ff4d4d", "killed"),
        (revivals, "revived (trainable again)", "triangle-up", "#00e676", "revived"),
    ):
        fig.add_trace(go.Scatter(
            x=[round_steps[r] for r, _ in events], y=[names[m] for _, m in events], mode="markers",
            name=name, marker={"symbol": symbol, "size": 9, "color": colour,
                               "line": {"width": 1, "color": "black"}},
            hovertemplate=f"module %{{y}} {verb} at step %{{x}}<extra></extra>",
        ))
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="PEFT module", autorange="reversed", type="category")
    fig.update_yaxes(tickmode="linear", dtick=1) if len(names) <= 64 else None
    return finish(fig, title, height_px=max(420, (18 if len(names) <= 64 else 6) * len(names) + 200))


def module_layer(name: str) -> str:
    """Best-effort layer label of a module name such as ``layer.3.attention.q`` → ``layer 3``.

    Also reads the dashboard's short labels (``layer 3 · q``).
    """
    digits = [part for part in name.replace("_", ".").replace(" ", ".").split(".") if part.isdigit()]
    return f"layer {digits[0]}" if digits else "other"


def active_over_time(
    module_names: Sequence[str],
    round_steps: Sequence[int],
    active: Sequence[Sequence[int]],
    title: str = "Active (trainable) modules over training, and KR churn",
) -> go.Figure:
    """Stacked count of active modules per layer over training, with kills/revivals per round.

    Args:
        module_names: one name per PEFT module; the layer is read from the name's first number.
        round_steps: training step of each KR round.
        active: ``active[round]``: indices of modules active after that round.
        title: figure title.
    """
    if len(active) == 0:
        return empty_figure(title, "The profile has no KR rounds.")
    layers = [module_layer(n) for n in module_names]
    order = sorted(set(layers), key=lambda s: (len(s), s))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                        vertical_spacing=0.08)
    steps = list(round_steps)
    for layer in order:
        counts = [sum(1 for m in a if layers[m] == layer) for a in active]
        fig.add_trace(go.Scatter(
            x=steps, y=counts, name=layer, stackgroup="active", mode="lines", line={"shape": "hv"},
            hovertemplate=f"{layer}: %{{y}} module(s) trainable from step %{{x}}<extra></extra>",
        ), row=1, col=1)
    kills, revivals = kr_events(active)
    kill_counts = np.bincount([r for r, _ in kills], minlength=len(active))
    revive_counts = np.bincount([r for r, _ in revivals], minlength=len(active))
    fig.add_trace(go.Bar(x=steps, y=kill_counts, name="kills in this round", marker_color="#d62728",
                         hovertemplate="%{y} module(s) killed at step %{x}<extra></extra>"),
                  row=2, col=1)
    fig.add_trace(go.Bar(x=steps, y=revive_counts, name="revivals in this round",
                         marker_color="#2ca02c",
                         hovertemplate="%{y} module(s) revived at step %{x}<extra></extra>"),
                  row=2, col=1)
    fig.update_yaxes(title_text="active modules (count)", row=1, col=1)
    fig.update_yaxes(title_text="modules per round", row=2, col=1)
    fig.update_xaxes(title_text="training step", row=2, col=1)
    return finish(fig, title, height_px=560)
