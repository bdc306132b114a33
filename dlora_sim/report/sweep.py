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
from dlora_sim.report.style import empty_figure, finish, human_bytes, human_seconds, plain, strategy_text


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


def censored_value(row: Mapping[str, object], key: str) -> tuple[float, bool]:
    """The row's ``key``, or its horizon and True where summary.json censored it ("> horizon").

    A completion percentile that falls among devices the horizon cut off is null in the summary,
    with ``censored.<key>`` true: it is drawn at the horizon, marked, instead of vanishing.
    """
    value = _num(row.get(key))
    if math.isnan(value) and row.get(f"censored.{key}"):
        return _num(row.get("horizon_s")), True
    return value, False


def finished_text(row: Mapping[str, object]) -> str:
    """"8/16 devices finished (50%)", the fraction that goes beside every per-device figure."""
    fraction = _num(row.get("finished_fraction"))
    if math.isnan(fraction):
        return "finished devices unknown"
    done, feasible = row.get("finished_devices"), row.get("feasible_devices")
    count = f"{int(_num(done))}/{int(_num(feasible))} " if done is not None and feasible is not None else ""
    return f"{count}devices finished ({100 * fraction:.0f}%)"


def _partial(row: Mapping[str, object]) -> bool:
    """Whether the horizon cut some of the row's devices off."""
    return _num(row.get("finished_fraction")) < 1.0


def pareto_figure(
    rows: Sequence[Mapping[str, object]],
    budget_key: str = "budget",
    axes: Sequence[tuple[str, str, str]] = (
        ("per_finished_device.provisioned_usd", "rented cloud GPUs per finished device (US dollars)", "usd"),
        ("completion_p50_s", "median completion time (hours)", "s"),
    ),
    title: str = "Accuracy against cost and time — Pareto front per KR budget B",
) -> go.Figure:
    """Scatter of every (point, strategy) row with the Pareto front of each budget drawn as a line.

    Args:
        rows: one per sweep point and strategy, with ``accuracy`` (0..1), the ``budget_key``
            column, ``strategy``, ``label`` (what the point varies), ``finished_fraction`` and the
            columns named in ``axes``. Marker shape shows the strategy (circle KR, diamond random-B,
            square all modules); an open marker is a point whose horizon cut devices off. A censored
            value (``censored.<column>``) is drawn at the horizon and kept off the front.
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
            values = [censored_value(r, key) for r in sel]
            xs = [v * scale for v, _ in values]
            ys = [100 * _num(r["accuracy"]) for r in sel]
            colour = palette[k % len(palette)]
            name = "no budget" if math.isnan(budget) else f"B = {budget:g}"
            hover = [f"{strategy_text(str(r.get('strategy', '')))} at {name}<br>{plain(r.get('label', ''))}"
                     f"<br>accuracy {100 * _num(r['accuracy']):.1f}%<br>{axis_title.split(' (')[0]}: "
                     + (f"> horizon ({format_value(v, unit)}): undefined" if cut else format_value(v, unit))
                     + f"<br>{finished_text(r)}" for r, (v, cut) in zip(sel, values)]
            symbols = [STRATEGY_SYMBOLS.get(str(r.get("strategy")), "circle")
                       + ("-open" if _partial(r) or cut else "") for r, (_, cut) in zip(sel, values)]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, legendgroup=name,
                                     showlegend=col == 1, marker={"size": 10, "color": colour,
                                                                  "opacity": 0.6,
                                                                  "symbol": symbols},
                                     hovertext=hover, hoverinfo="text"), row=1, col=col)
            front = pareto_front([math.nan if cut else x for x, (_, cut) in zip(xs, values)], ys)
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
    cells = [[plain(cell_text(r, c)) for r in rows] for c in columns]
    fig = go.Figure(go.Table(header={"values": [plain(column_title(c)) for c in columns], "align": "left"},
                             cells={"values": cells, "align": "left"}))
    return finish(fig, title, height_px=min(900, 40 + 28 * len(rows) + 120))


#: sweep-table headers a reader understands, for the columns the sweep page shows
COLUMN_TITLES: dict[str, str] = {
    "accuracy": "accuracy", "finished_fraction": "finished",
    "per_finished_device.provisioned_usd": "rented GPU $ / finished device",
    "per_finished_device.bytes_total": "traffic / finished device",
    "per_finished_device.radio_energy_j": "radio energy / finished device",
    "per_finished_device.data_usd": "mobile data $ / finished device",
    "completion_p50_s": "median completion", "provisioned_usd": "rented GPU $", "money_usd": "GPU busy $",
    "gpu_utilisation": "GPU utilisation", "data_usd": "mobile data $", "bytes_total": "traffic",
    "radio_energy_j": "radio energy", "energy_j": "compute energy",
}


def column_title(column: str) -> str:
    """The header of a sweep-table column (its own name where none is set)."""
    return COLUMN_TITLES.get(column, column)


def cell_text(row: Mapping[str, object], column: str) -> str:
    """One sweep-table cell in human units: hours, GB, dollars, MJ, percent; "> horizon" where censored."""
    value = row.get(column)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or column in ("budget", "seed", "devices"):
        if value is None and column.endswith("_s") and row.get(f"censored.{column}"):
            return f"> {human_seconds(_num(row.get('horizon_s')))} (horizon)"
        return "" if value is None else str(value)
    number = float(value)
    if math.isnan(number):
        return ""
    if column == "accuracy" or column.endswith(("fraction", "utilisation")):
        return f"{100 * number:.1f}%"
    if column.endswith("_s"):
        return human_seconds(number)
    if "bytes" in column:
        return human_bytes(number)
    if column.endswith("_usd"):
        return f"${number:,.2f}" if abs(number) >= 0.01 or number == 0 else f"${number:.2g}"
    if column.endswith("_j"):
        return f"{number / 1e6:,.3g} MJ" if abs(number) >= 1e5 else f"{number:,.3g} J"
    if column.endswith("flops"):
        return f"{number:.3g} FLOP"
    return f"{number:,.4g}"


def budget_trend_figure(
    rows: Sequence[Mapping[str, object]],
    group_keys: Sequence[str],
    budget_key: str = "budget",
    panels: Sequence[tuple[str, str, float]] = (
        ("per_finished_device.bytes_total", "traffic per finished device (GB up + down)", 1e-9),
        ("completion_p50_s", "median completion time (hours)", 1 / 3600),
        ("finished_fraction", "devices finished within the horizon (%)", 100.0),
    ),
    title: str = "What the budget B buys: traffic and time against B",
) -> go.Figure:
    """Lines of a quantity against the budget B, one per strategy and setting of the other fields.

    Args:
        rows: sweep rows with ``strategy``, the budget column and the panel columns.
        group_keys: the other varied fields (a line per combination of their values).
        budget_key: column holding B.
        panels: ``(column, axis title, scale)`` per panel. A censored value (``censored.<column>``,
            e.g. a median among unfinished devices) is drawn at the horizon as an open triangle
            with "> horizon" in its hover, so the line shows where the median is undefined.
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
            values = [censored_value(r, key) for r in sel]
            ys = [v * scale for v, _ in values]
            what = axis_title.split(' (')[0]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers", name=name, legendgroup=name, showlegend=col == 1,
                line={"color": palette[settings.index(setting) % len(palette)],
                      "dash": dash.get(strategy, "dashdot")},
                marker={"symbol": ["triangle-up-open" if cut else "circle" for _, cut in values],
                        "size": [12 if cut else 7 for _, cut in values]},
                hovertext=[f"{name}<br>B = {x:g}: {what} "
                           + (f"> horizon ({y:,.3g}): undefined, too few devices finished" if cut else f"{y:,.3g}")
                           + f"<br>{finished_text(r)}" for x, y, (_, cut), r in zip(xs, ys, values, sel)],
                hoverinfo="text"), row=1, col=col)
        fig.update_xaxes(title_text="KR budget B (active PEFT modules)", row=1, col=col)
        fig.update_yaxes(title_text=axis_title, row=1, col=col)
    finish(fig, title, height_px=max(520, 22 * len(lines) + 200))
    fig.update_layout(legend={"orientation": "v", "x": 1.02, "y": 1.0, "yanchor": "top"})
    return fig
