"""The page of ``dlora-sim compare``: two or more runs side by side, strategy by strategy.

It takes the comparison as plain JSON (what ``dlora-sim compare --json`` prints, built by
:mod:`dlora_sim.run_compare`), so it can be drawn from a saved file or hand-made data. One grouped
bar chart per headline field (runs side by side for each strategy, the finished fraction in every
completion hover, since a median over half a fleet is not a fleet's median), then, per run, a map
of its relative differences from the first run, and the scenario fields in which the runs differ.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from dlora_sim.report.page import Section, write_page
from dlora_sim.report.savings import format_value
from dlora_sim.report.style import empty_figure, finish, plain, strategy_label

#: bar colours of the runs, in command-line order (a run keeps its colour on every chart)
RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

#: headline field -> what its chart is called
FIELD_TITLES: dict[str, str] = {
    "finished_fraction": "devices finished within the horizon",
    "completion_p50_s": "median completion time (finished devices)",
    "completion_p95_s": "95th-percentile completion time (finished devices)",
    "makespan_s": "makespan",
    "bytes_total": "bytes up + down, all devices",
    "device_energy_j": "device energy, all devices",
    "radio_energy_j": "radio energy, all devices",
    "money_usd": "cloud GPU $ (busy time)",
    "provisioned_usd": "cloud GPU $ (provisioned)",
    "mobile_data_usd": "mobile data $ the users pay",
}


def field_unit(field: str) -> str:
    """The unit of a summary field, read from its name (the summary's naming convention)."""
    if field.endswith("fraction") or field.startswith("savings_vs_baseline."):
        return "fraction"
    if field.endswith("_s"):
        return "s"
    if "bytes" in field:
        return "bytes"
    if field.endswith("_usd"):
        return "usd"
    if field.endswith("_j"):
        return "j"
    if "flops" in field:
        return "flop"
    return "count"


def format_field(field: str, value: float | bool | None) -> str:
    """A summary value with its unit, as the table and the hovers show it; a flag (e.g.
    ``censored.completion_p50_s``, named like the seconds it qualifies) as yes / no, not 1 / 0 s."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    unit = field_unit(field)
    if unit == "fraction":
        return f"{100 * value:.1f}%"
    if unit == "count" and value != int(value):
        return f"{value:,.4g}"
    return format_value(value, unit)


def format_entry(fields: Mapping[str, Any], name: str, k: int) -> str:
    """Run ``k``'s value of field ``name`` in one strategy's fields (``--json``'s form), as
    :func:`format_field` writes it, except a completion percentile the horizon censored (null in
    the summary with ``censored.<name>`` true): ``> <horizon>``, since it is longer than the
    horizon rather than missing (issue 16: censored medians are marked, never silently blank)."""
    value = fields[name]["values"][k]
    flag = fields.get(f"censored.{name}")
    if value is None and flag is not None and flag["values"][k] is True:
        horizon = fields.get("horizon_s", {}).get("values", [])
        return f"> {format_field('horizon_s', horizon[k])}" if k < len(horizon) and horizon[k] else "> horizon"
    return format_field(name, value)


def format_change(field: str, relative: float | None, reference: float | bool | None,
                  value: float | bool | None) -> str:
    """A relative difference as ``+12.3%``; ``=`` when equal, ``new`` / ``–`` when undefined.

    A fraction (finished devices, a saving) changes in percentage points (``+4.0 pt``): "+8%
    of 50%" would read as 58%. A flag that changed says ``differs`` (a percentage of yes / no
    means nothing).
    """
    if value is not None and reference is not None and value == reference:
        return "="
    if isinstance(value, bool) or isinstance(reference, bool):
        return "differs" if value is not None and reference is not None else "–"
    if field_unit(field) == "fraction" and value is not None and reference is not None:
        return f"{100 * (value - reference):+.1f} pt"
    if relative is None:
        if value is None or reference is None:
            return "–"
        return "new" if reference == 0 else "–"
    if relative == 0:
        return "="
    return f"{100 * relative:+.1f}%"


def _headline(data: Mapping[str, Any]) -> list[str]:
    present = {f for fields in data["strategies"].values() for f in fields}
    return [f for f in FIELD_TITLES if f in present]


def headline_figure(data: Mapping[str, Any], field: str) -> go.Figure:
    """Grouped bars: for each strategy, this field in every run (the first run is the reference)."""
    labels = [r["label"] for r in data["runs"]]
    strategies = [s for s in data["strategies"] if field in data["strategies"][s]]
    title = FIELD_TITLES.get(field, field)
    if not strategies:
        return empty_figure(title, f"No run has {field}.")
    fig = go.Figure()
    for k, label in enumerate(labels):
        ys, texts = [], []
        for s in strategies:
            entry = data["strategies"][s][field]
            value, change = entry["values"][k], entry["relative"][k]
            ys.append(value)
            text = (f"{plain(label)}<br>{plain(strategy_label(s))}<br>{plain(field)}: "
                    f"{plain(format_entry(data['strategies'][s], field, k))}")
            if k:
                text += f"<br>vs {plain(labels[0])}: {format_change(field, change, entry['values'][0], value)}"
            finished = data["strategies"][s].get("finished_fraction")
            if field.startswith("completion_") and finished is not None:
                text += f"<br>finished: {format_field('finished_fraction', finished['values'][k])}"
            texts.append(text)
        fig.add_trace(go.Bar(x=[plain(strategy_label(s)) for s in strategies], y=ys, name=plain(label),
                             marker_color=RUN_COLOURS[k % len(RUN_COLOURS)], hovertext=texts, hoverinfo="text"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="strategy", tickangle=-20)
    fig.update_yaxes(title_text=f"{plain(field)} ({field_unit(field)})")
    return finish(fig, plain(title), height_px=420)


def difference_figure(data: Mapping[str, Any], k: int) -> go.Figure:
    """Heatmap of run ``k``'s relative differences from the first run: strategies × headline fields."""
    labels = [r["label"] for r in data["runs"]]
    fields = _headline(data)
    strategies = list(data["strategies"])
    title = f"{plain(labels[k])} against {plain(labels[0])}: relative difference (%)"
    if not fields or not strategies:
        return empty_figure(title, "No headline field to compare.")
    z, text = [], []
    for s in strategies:
        row, words = [], []
        for f in fields:
            entry = data["strategies"][s].get(f)
            rel = entry["relative"][k] if entry else None
            row.append(None if rel is None else max(-100.0, min(100.0, 100 * rel)))
            words.append(format_change(f, rel, entry["values"][0], entry["values"][k]) if entry else "–")
        z.append(row)
        text.append(words)
    fig = go.Figure(go.Heatmap(z=z, x=[plain(FIELD_TITLES[f]) for f in fields],
                               y=[plain(strategy_label(s)) for s in strategies], text=text,
                               texttemplate="%{text}", colorscale="RdBu_r", zmid=0, zmin=-100, zmax=100,
                               colorbar={"title": "%"}, hoverongaps=False))
    fig.update_xaxes(tickangle=-25)
    return finish(fig, title, height_px=max(300, 60 * len(strategies) + 200))


def compare_sections(data: Mapping[str, Any]) -> list[Section]:
    """Every section of the page, in reading order."""
    reference = data["runs"][0]["label"]
    sections = [Section(FIELD_TITLES[f],
                        f"Each strategy in every run (colour = run). Hover a bar for its value and its "
                        f"difference from {reference}.", headline_figure(data, f)) for f in _headline(data)]
    sections += [Section(f"{run['label']} against {reference}",
                         "Relative difference of each headline field (red = larger than in the reference, "
                         "blue = smaller; colours stop at ±100%, the text holds the real value). "
                         "Read against the finished fraction: a median over fewer devices is not comparable.",
                         difference_figure(data, k)) for k, run in enumerate(data["runs"]) if k]
    return sections


def facts(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The runs and the scenario fields in which they differ, for the table under the heading."""
    out = [(f"run {k + 1}: {r['label']}", f"{r['folder']} (scenario {r['scenario']})") for k, r in enumerate(data["runs"])]
    for field, values in data["scenario_differences"].items():
        out.append((f"scenario {field}", " | ".join("–" if v is None else json.dumps(v) for v in values)))
    if not data["scenario_differences"]:
        out.append(("scenario", "identical in every run"))
    return out


def write_compare_page(data: Mapping[str, Any], out: str | Path) -> Path:
    """Write the comparison page (one self-contained, offline HTML file) and return its path."""
    labels: Sequence[str] = [r["label"] for r in data["runs"]]
    return write_page(out, f"Comparison: {' vs '.join(labels)}",
                      f"Summary of every strategy in {len(labels)} runs; differences are relative to {labels[0]}.",
                      compare_sections(data), facts(data))
