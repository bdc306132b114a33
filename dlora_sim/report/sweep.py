"""The sweep picture: accuracy against cost and time, and the Pareto front per KR budget B.

This is the paper's open question made visible: how much accuracy does a smaller budget B cost,
and what does it buy in money and waiting time, given this fleet and this network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from dlora_sim.report.savings import format_value
from dlora_sim.report.style import empty_figure, finish, plain, strategy_text


def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points (lower cost and higher accuracy are better).

    A point is dominated when another is no worse in both and strictly better in one. The result
    is sorted by cost, so joining the points draws the front as a staircase.
    """
    idx = [i for i in range(len(costs))
           if not (math.isnan(costs[i]) or math.isnan(accuracies[i]))]
    idx.sort(key=lambda i: (costs[i], -accuracies[i]))
    front: list[int] = []
    best = -math.inf
    for i in idx:
        if accuracies[i] > best:
            front.append(i)
            best = accuracies[i]
    return front


#: marker shape per strategy, so a budget's colour and a strategy's shape can be read together
STRATEGY_SYMBOLS: dict[str, str] = {"dlora-kr": "circle", "dlora-random": "diamond",
                                    "dlora-all": "square", "cloud-only": "x", "edge-only": "cross"}


SHORT_NAMES: dict[str, str] = {"dlora-kr": "KR", "dlora-random": "random-B", "dlora-all": "all modules"}


def _num(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def pareto_figure(
    rows: Sequence[Mapping[str, object]],
    budget_key: str = "budget",
    axes: Sequence[tuple[str, str, str]] = (
        ("money_per_device_usd", "cloud cost per device (US dollars)", "usd"),
        ("completion_p50_s", "median completion time (hours)", "s"),
    ),
    title: str = "Accuracy against cost and time — Pareto front per KR budget B",
) -> go.Figure:
    """Scatter of every (point, strategy) row with the Pareto front of each budget drawn as a line.

    Args:
        rows: one per sweep point and strategy, with ``accuracy`` (0..1), the ``budget_key``
            column, ``strategy``, ``label`` (what the point varies) and the columns named in ``axes``.
            Marker shape shows the strategy (circle KR, diamond random-B, square all modules).
        budget_key: column holding the budget B.
        axes: ``(column, axis title, unit)`` per panel; time columns in seconds are shown in hours.
        title: figure title.
    """
    usable = [r for r in rows if not math.isnan(_num(r.get("accuracy")))]
    if not usable:
        return empty_figure(title, "No sweep point has a matching profile accuracy: "
                                   "add profiles for these budgets and arms (see docs/sweeps.md).")
    budgets = sorted({_num(r.get(budget_key)) for r in usable}, key=lambda b: (math.isnan(b), b))
    palette = qualitative.Plotly
    fig = make_subplots(rows=1, cols=len(axes), subplot_titles=[a[1] for a in axes],
                        shared_yaxes=True, horizontal_spacing=0.06)
    for col, (key, axis_title, unit) in enumerate(axes, start=1):
        scale = 1 / 3600 if unit == "s" else 1.0
        for k, budget in enumerate(budgets):
            sel = [r for r in usable if (math.isnan(budget) and math.isnan(_num(r.get(budget_key))))
                   or _num(r.get(budget_key)) == budget]
            xs = [_num(r.get(key)) * scale for r in sel]
            ys = [100 * _num(r["accuracy"]) for r in sel]
            colour = palette[k % len(palette)]
            name = "no budget" if math.isnan(budget) else f"B = {budget:g}"
            hover = [f"{strategy_text(str(r.get('strategy', '')))} at {name}<br>{plain(r.get('label', ''))}"
                     f"<br>accuracy {100 * _num(r['accuracy']):.1f}%<br>{axis_title.split(' (')[0]}: "
                     f"{format_value(_num(r.get(key)), unit)}" for r in sel]
            symbols = [STRATEGY_SYMBOLS.get(str(r.get("strategy")), "circle") for r in sel]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, legendgroup=name,
                                     showlegend=col == 1, marker={"size": 10, "color": colour,
                                                                  "opacity": 0.6,
                                                                  "symbol": symbols},
                                     hovertext=hover, hoverinfo="text"), row=1, col=col)
            front = pareto_front(xs, ys)
            fig.add_trace(go.Scatter(x=[xs[i] for i in front], y=[ys[i] for i in front],
                                     mode="lines+markers", line={"shape": "hv", "color": colour},
                                     marker={"size": 11, "color": colour, "symbol": "star"},
                                     name=f"Pareto front, {name}", legendgroup=name,
                                     showlegend=col == 1, hovertext=[hover[i] for i in front],
                                     hoverinfo="text"), row=1, col=col)
        fig.update_xaxes(title_text=axis_title, row=1, col=col)
    fig.update_yaxes(title_text="task accuracy from matched profiles (%)", row=1, col=1)
    return finish(fig, title, height_px=520)


def sweep_table_figure(rows: Sequence[Mapping[str, object]], columns: Sequence[str],
                       title: str = "All sweep points") -> go.Figure:
    """A plain table of the sweep rows, so every number behind the plots is one scroll away."""
    if not rows:
        return empty_figure(title, "The sweep has no finished points yet.")
    cells = []
    for c in columns:
        col = []
        for r in rows:
            v = r.get(c)
            col.append(f"{v:.4g}" if isinstance(v, float) else ("" if v is None else plain(v)))
        cells.append(col)
    fig = go.Figure(go.Table(header={"values": [plain(c) for c in columns], "align": "left"},
                             cells={"values": cells, "align": "left"}))
    return finish(fig, title, height_px=min(900, 40 + 28 * len(rows) + 120))


def budget_trend_figure(
    rows: Sequence[Mapping[str, object]],
    group_keys: Sequence[str],
    budget_key: str = "budget",
    panels: Sequence[tuple[str, str, float]] = (
        ("bytes_per_device", "traffic per device (GB up + down)", 1e-9),
        ("completion_p50_s", "median completion time (hours)", 1 / 3600),
    ),
    title: str = "What the budget B buys: traffic and time against B",
) -> go.Figure:
    """Lines of a quantity against the budget B, one per strategy and setting of the other fields.

    Args:
        rows: sweep rows with ``strategy``, the budget column and the panel columns.
        group_keys: the other varied fields (a line per combination of their values).
        budget_key: column holding B.
        panels: ``(column, axis title, scale)`` per panel.
        title: figure title.
    """
    usable = [r for r in rows if not math.isnan(_num(r.get(budget_key)))]
    budgets = {_num(r.get(budget_key)) for r in usable}
    if len(budgets) < 2:
        return empty_figure(title, "This sweep does not vary the budget B (job.budget).")
    lines: dict[tuple[str, str], list[Mapping[str, object]]] = {}
    for r in usable:
        setting = ", ".join(f"{k.split('.')[-1]}={r.get(k)}" for k in group_keys)
        lines.setdefault((str(r.get("strategy")), setting), []).append(r)
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[1] for p in panels],
                        horizontal_spacing=0.08)
    palette = qualitative.Plotly
    settings = sorted({s for _, s in lines})
    dash = {"dlora-kr": "solid", "dlora-random": "dot", "dlora-all": "dash"}
    for col, (key, axis_title, scale) in enumerate(panels, start=1):
        for (strategy, setting), sel in sorted(lines.items()):
            sel = sorted(sel, key=lambda r: _num(r.get(budget_key)))
            name = plain(SHORT_NAMES.get(strategy, strategy) + (f" — {setting}" if setting else ""))
            xs = [_num(r.get(budget_key)) for r in sel]
            ys = [_num(r.get(key)) * scale for r in sel]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers", name=name, legendgroup=name, showlegend=col == 1,
                line={"color": palette[settings.index(setting) % len(palette)],
                      "dash": dash.get(strategy, "dashdot")},
                hovertext=[f"{name}<br>B = {x:g}: {axis_title.split(' (')[0]} {y:,.3g}" for x, y in zip(xs, ys)],
                hoverinfo="text"), row=1, col=col)
        fig.update_xaxes(title_text="KR budget B (active PEFT modules)", row=1, col=col)
        fig.update_yaxes(title_text=axis_title, row=1, col=col)
    finish(fig, title, height_px=max(520, 22 * len(lines) + 200))
    fig.update_layout(legend={"orientation": "v", "x": 1.02, "y": 1.0, "yanchor": "top"})
    return fig
