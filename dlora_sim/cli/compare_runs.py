"""``dlora-sim compare``: results folders of ``dlora-sim run`` side by side (issue 16).

The data is :mod:`dlora_sim.run_compare`, the page :mod:`dlora_sim.report.compare`; this module
reads options and prints. (``dlora-sim profiles compare``, which pairs training profiles, is
:mod:`dlora_sim.cli.profiles_compare`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlora_sim.cli.app import app


@app.command("compare")
def compare_runs(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_A RUN_B [RUN_C...]", show_default=False,
                                               help="Results folders written by `dlora-sim run`; the first is the reference.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the comparison page here (one self-contained HTML file, offline).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole comparison as JSON (every summary field, values and relative differences).")] = False,
    all_fields: Annotated[bool, typer.Option("--all", help="Also list the fields that are equal in every run.")] = False,
) -> None:
    """Compare runs (e.g. activations vs weights exchange, two fleets), strategy by strategy.

    For every strategy in the runs: each summary.json field (read generically, so new fields
    appear) in every run and its difference relative to the first run, the finished fraction first;
    then the scenario fields in which the runs differ.
    """
    from dlora_sim.run_compare import compare_runs as build, comparison_json

    comparison = build(runs)
    data = comparison_json(comparison)
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        _print(data, all_fields)
    if output is not None:
        from dlora_sim.report.compare import write_compare_page

        written = write_compare_page(data, output)
        Console(stderr=True).print(f"wrote the comparison page {escape(str(written))} — open it in a browser (works offline)")


def _print(data: dict[str, Any], all_fields: bool) -> None:
    """One table of scenario differences, then one table per strategy (fits 80 columns for two runs)."""
    from dlora_sim.report.compare import FIELD_TITLES, format_change, format_entry

    console = Console()
    labels = [r["label"] for r in data["runs"]]
    scenario = Table(title="Scenario fields that differ", title_justify="left")
    scenario.add_column("field", overflow="fold")
    for label in labels:
        scenario.add_column(escape(label), overflow="fold")
    for field, values in data["scenario_differences"].items():
        scenario.add_row(escape(field), *("–" if v is None else escape(json.dumps(v)) for v in values))
    if data["scenario_differences"]:
        console.print(scenario)
    else:
        console.print("The scenarios are identical (same inputs; only the results can differ).")
    for strategy, fields in data["strategies"].items():
        table = Table(title=escape(f"{strategy}: against {labels[0]}"), title_justify="left")
        table.add_column("field", overflow="fold")
        for k, label in enumerate(labels):
            table.add_column(escape(label), justify="right", overflow="fold")
            if k:
                table.add_column("Δ", justify="right")
        hidden = 0
        for name, entry in fields.items():
            values = entry["values"]
            if not all_fields and name not in FIELD_TITLES and all(v == values[0] for v in values):
                hidden += 1
                continue
            cells = []
            for k, value in enumerate(values):
                cells.append(format_entry(fields, name, k))
                if k:
                    cells.append(format_change(name, entry["relative"][k], values[0], value))
            table.add_row(escape(name), *cells)
        if hidden:
            table.caption = f"{hidden} more fields are equal in every run (--all lists them)"
        console.print(table)
