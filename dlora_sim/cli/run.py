"""``dlora-sim run``: simulate one scenario and write its results folder (issue 4).

The folder appears whole or not at all: results are written into a temporary sibling that
replaces ``OUT`` only when everything succeeded, so a bad scenario or a crash leaves nothing.
``OUT`` is replaced only when it is missing, empty or a results folder dlora-sim wrote (it
carries :data:`dlora_sim.io.RESULTS_MARKER`); that is checked before simulating, so a refusal
costs nothing.
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
from dlora_sim.io import check_replaceable, dig
from dlora_sim.scenario import load_scenario, parse_override

SUMMARY = "summary.json"

# summary.json per-strategy keys shown in the closing table: (dotted key, header, format)
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("completion_p50_s", "p50 h", "hours"),
    ("completion_p95_s", "p95 h", "hours"),
    ("finished_devices", "done", "int"),
    ("bytes_total", "GB moved", "gb"),
    ("money_usd", "GPU $", "money"),
    ("savings_vs_baseline.steady_step_bytes", "step bytes saved", "pct"),
    ("savings_vs_baseline.bytes_total", "job bytes saved", "pct"),
)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(metavar="SCENARIO", help="Scenario TOML file, e.g. scenarios/paper-default.toml.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", metavar="OUT", help="Results folder to write. An existing OUT is replaced only if it is "
                     "empty or holds earlier results of dlora-sim (never any other files). Default: results/<scenario name>."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="FIELD=VALUE", help="Override a scenario field before validation, FIELD=VALUE with a dotted "
                     "path and a TOML value, e.g. --set job.budget=8 --set fleet.groups.0.count=50. Repeatable."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar while simulating.")] = True,
) -> None:
    """Simulate SCENARIO under every strategy it lists and write the results folder OUT.

    OUT holds summary.json, devices.parquet, timeline.parquet and the resolved scenario.json.
    """
    overrides = dict(parse_override(item) for item in set_ or [])
    loaded = load_scenario(scenario, overrides)
    target = out if out is not None else Path("results") / loaded.name  # a validated name is never a path
    check_replaceable(target, "--out")

    from dlora_sim.sim import simulate  # the engine; imported late so that bad input fails fast
    from dlora_sim.sim.results import write_results

    console = Console(stderr=True)
    console.print(f"[bold]{escape(loaded.name)}[/]: {loaded.fleet.device_count} devices, "
                  f"strategies {escape(', '.join(loaded.run.strategies))}, {loaded.run.granularity} granularity")
    result = simulate(loaded, progress=progress)
    write_results(result, target)
    _print_summary(target, console)


def _print_summary(target: Path, console: Console) -> None:
    """A short table of the headline numbers, read back from the written summary.json."""
    try:
        summary = json.loads((target / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        console.print(f"results written to [bold]{escape(str(target))}[/]")
        return
    strategies: dict[str, dict[str, Any]] = summary.get("strategies", {})
    columns = [c for c in _COLUMNS if any(dig(row, c[0]) is not None for row in strategies.values())]
    baseline = summary.get("baseline", "dlora-all")
    table = Table(title=escape(f"{summary.get('scenario', target.name)}: per strategy (savings against {baseline})"),
                  caption=escape(f"bytes saved = 1 − bytes / {baseline}'s; step: one steady-state step, job: whole run"))
    table.add_column("strategy", no_wrap=True)
    for _, header, _ in columns:
        table.add_column(header, justify="right")
    for name, row in strategies.items():
        table.add_row(escape(name), *(_format(dig(row, key), kind) for key, _, kind in columns))
    Console().print(table)
    shown = escape(str(target))
    console.print(f"results written to [bold]{shown}[/] "
                  f"(dashboard: dlora-sim dashboard {shown} -o dashboards/{escape(target.name)}.html)")


def _format(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    value = float(value)
    if kind == "hours":
        return f"{value / 3600:,.2f}"
    if kind == "gb":
        return f"{value / 1e9:,.2f}" if value < 100e9 else f"{value / 1e9:,.0f}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    return f"{value:,.0f}"
