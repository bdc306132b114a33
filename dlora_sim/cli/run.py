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
from dlora_sim.cli.narrow import print_table
from dlora_sim.io import check_replaceable, dig
from dlora_sim.scenario import load_scenario, parse_override

SUMMARY = "summary.json"

# summary.json per-strategy keys shown in the closing tables: (dotted key, header, format). Two
# tables of a few columns each, so that both fit an 80-column terminal: time and traffic, then bills.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("completion_p50_s", "p50 h", "hours"),
    ("completion_p95_s", "p95 h", "hours"),
    ("finished_devices", "done", "done"),
    ("bytes_total", "GB moved", "gb"),
    ("savings_vs_baseline.steady_step_bytes", "step bytes saved", "pct"),
    ("savings_vs_baseline.bytes_total", "job bytes saved", "pct"),
)
_BILLS: tuple[tuple[str, str, str], ...] = (
    ("money_usd", "GPU busy $", "money"),
    ("provisioned_usd", "GPU rented $", "money"),
    ("gpu_utilisation", "GPU util", "pct"),
    ("cloud_wait_per_step_s", "GPU queue s/step", "seconds"),
    ("radio_energy_j", "radio MJ", "mj"),
    ("data_usd", "mobile data $", "money"),
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
    baseline = summary.get("baseline", "dlora-all")
    name = summary.get("scenario", target.name)
    print_table(Console(), _table(strategies, _COLUMNS, f"{name}: per strategy (savings against {baseline})",
                           "done = finished / feasible devices; '>' = beyond the horizon (the percentile falls "
                           f"among unfinished devices); bytes saved = 1 − bytes / {baseline}'s (step: one "
                           "steady-state step, job: whole run)"))
    print_table(Console(), _table(strategies, _BILLS, f"{name}: bills, whole run",
                           "GPU busy $ = GPU time used; rented $ = every GPU for the run; radio = the devices' "
                           "radios; mobile data = what users pay their carriers, at the link's price per GB"))
    shown = escape(str(target))
    console.print(f"results written to [bold]{shown}[/] "
                  f"(dashboard: dlora-sim dashboard {shown} -o dashboards/{escape(target.name)}.html)")


def _table(strategies: dict[str, dict[str, Any]], columns: tuple[tuple[str, str, str], ...], title: str,
           caption: str) -> Table:
    """One closing table; a column no strategy has is left out, a censored percentile is kept."""
    shown = [c for c in columns if any(dig(row, c[0]) is not None or dig(row, f"censored.{c[0]}")
                                       for row in strategies.values())]
    table = Table(title=escape(title), caption=escape(caption))
    table.add_column("strategy", no_wrap=True)
    for _, header, _ in shown:
        table.add_column(header, justify="right")
    for name, row in strategies.items():
        table.add_row(escape(name), *(_format(dig(row, key), kind, row, key) for key, _, kind in shown))
    return table


def _format(value: Any, kind: str, row: dict[str, Any], key: str) -> str:
    """One cell; a censored percentile reads "> horizon", the done count "finished/feasible"."""
    if kind == "hours" and value is None and dig(row, f"censored.{key}") and row.get("horizon_s") is not None:
        return f">{float(row['horizon_s']) / 3600:,.2f}"
    if kind == "done" and value is not None:
        return f"{int(value)}/{row.get('feasible_devices', '?')}"
    if value is None:
        return "–"
    value = float(value)
    if kind == "hours":
        return f"{value / 3600:,.2f}"
    if kind == "mj":
        return f"{value / 1e6:,.3g}"
    if kind == "seconds":
        return f"{value:,.3g}"
    if kind == "gb":
        return f"{value / 1e9:,.2f}" if value < 100e9 else f"{value / 1e9:,.0f}"
    if kind == "money":  # thousands as "108k", so that a column stays narrow
        return f"{value:,.2f}" if abs(value) < 10_000 else f"{value / 1000:,.0f}k"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    return f"{value:,.0f}"
