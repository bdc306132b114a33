"""``dlora-sim run``: simulate one scenario and write its results folder (issue 4).

The folder appears whole or not at all: results are written into a temporary sibling that
replaces ``OUT`` only when everything succeeded, so a bad scenario or a crash leaves nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dlora_sim.cli.app import app
from dlora_sim.errors import InputError
from dlora_sim.io import atomic_directory, dig
from dlora_sim.scenario import load_scenario, parse_override

RESULT_MARKER = "summary.json"  # a folder holding it is one we may replace

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
        typer.Option("--out", "-o", metavar="OUT", help="Results folder to write (replaced if it holds earlier results). "
                     "Default: results/<scenario name>."),
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
    target = out if out is not None else Path("results") / loaded.name
    _check_replaceable(target)

    from dlora_sim.sim import simulate  # the engine; imported late so that bad input fails fast
    from dlora_sim.sim.results import write_results

    console = Console(stderr=True)
    console.print(f"[bold]{loaded.name}[/]: {loaded.fleet.device_count} devices, "
                  f"strategies {', '.join(loaded.run.strategies)}, {loaded.run.granularity} granularity")
    result = simulate(loaded, progress=progress)
    with atomic_directory(target) as tmp:
        write_results(result, tmp)
    _print_summary(target, console)


def _check_replaceable(target: Path) -> None:
    """Refuse to replace anything but an empty folder or an earlier results folder."""
    if not target.exists():
        return
    if not target.is_dir():
        raise InputError(f"{target}: --out exists and is not a folder")
    if any(target.iterdir()) and not (target / RESULT_MARKER).is_file():
        raise InputError(f"{target}: --out is a non-empty folder without {RESULT_MARKER}; "
                         "refusing to replace it (choose a new folder)")


def _print_summary(target: Path, console: Console) -> None:
    """A short table of the headline numbers, read back from the written summary.json."""
    try:
        summary = json.loads((target / RESULT_MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        console.print(f"results written to [bold]{target}[/]")
        return
    strategies: dict[str, dict[str, Any]] = summary.get("strategies", {})
    columns = [c for c in _COLUMNS if any(dig(row, c[0]) is not None for row in strategies.values())]
    baseline = summary.get("baseline", "dlora-all")
    table = Table(title=f"{summary.get('scenario', target.name)}: per strategy (savings against {baseline})",
                  caption=f"bytes saved = 1 − bytes / {baseline}'s; step: one steady-state step, job: whole run")
    table.add_column("strategy", no_wrap=True)
    for _, header, _ in columns:
        table.add_column(header, justify="right")
    for name, row in strategies.items():
        table.add_row(name, *(_format(dig(row, key), kind) for key, _, kind in columns))
    Console().print(table)
    console.print(f"results written to [bold]{target}[/] "
                  f"(dashboard: dlora-sim dashboard {target} -o dashboards/{target.name}.html)")


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
