"""``dlora-sim plan``: the configuration that meets a deadline at least cloud cost (issue 16).

Exit status: 0 when the simulator confirmed a recommendation (or ``--confirm 0`` and an
estimate meets the constraints), 1 for bad input and when no configuration meets them (the
one-line verdict then names the closest point).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlora_sim.cli.app import app
from dlora_sim.cli.sweep import TlsCaFile, TlsCert, TlsKey
from dlora_sim.errors import InputError
from dlora_sim.io import atomic_write_text


def _h(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _gb(n: float | None) -> str:
    return "—" if n is None else (f"{n / 1e9:.2f} GB" if n < 1e11 else f"{n / 1e12:.2f} TB")


def _kj(j: float | None) -> str:
    return "—" if j is None else f"{j / 1e3:,.1f}"


def _acc(a: float | None) -> str:
    return "—" if a is None else f"{100 * a:.1f}%"


@app.command()
def plan(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (TOML).", show_default=False)],
    deadline: Annotated[str, typer.Option(
        help="When the devices must be done: 48h, 2d, 90min, 1d12h (a unit is required).",
        show_default=False)],
    max_usd: Annotated[Optional[float], typer.Option(
        "--max-usd", help="Most the provisioned GPU pool may cost (GPUs × completion × $/GPU-hour).")] = None,
    min_accuracy: Annotated[Optional[float], typer.Option(
        "--min-accuracy", help="Least test accuracy matched from comparable profiles, a fraction (0.6).")] = None,
    vary: Annotated[Optional[list[str]], typer.Option(
        "--vary", help="Fields to search, comma-separated, at default values (job.budget, job.exchange, "
                       "job.killed_policy, job.head_placement, job.batch, job.rank, job.kr_interval_steps, "
                       "cloud.count, cloud.gpu); or FIELD=V1,V2 with values; repeatable. "
                       "Default: job.budget,job.exchange,cloud.count.")] = None,
    strategies: Annotated[Optional[str], typer.Option(
        "--strategies", help="Comma-separated strategies to search (default: the scenario's run.strategies).")] = None,
    confirm: Annotated[int, typer.Option(
        "--confirm", help="Candidates to simulate, best first, stopping at the first that meets "
                          "the deadline (0: estimate only).")] = 3,
    confirm_devices: Annotated[Optional[int], typer.Option(
        "--confirm-devices", help="Simulate a proportional sample of about this many devices (shared "
                                  "links, GPUs and queues scaled alike) instead of the whole fleet.")] = None,
    percentile: Annotated[float, typer.Option(
        "--percentile", help="The deadline holds for this % of the devices (100: every device).")] = 100.0,
    profiles: Annotated[Optional[Path], typer.Option(
        "--profiles", help="Folder of profiles for accuracy (default: the folder of job.profile).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as one JSON object.")] = False,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Folder to write plan.json and plan.html (the front, offline).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", min=1, help="Confirm the candidates at once on a local Dask cluster of this many "
                                 "processes (loopback only); the recommendation is the same as one "
                                 "after another. Needs the scale extra (distributed).")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler", help="Confirm on a running Dask scheduler instead: tls://HOST:PORT with the "
                            "--tls-* files, or tcp://HOST:PORT on a network only you can reach (see "
                            "docs/sweeps.md). Its workers must see the scenario file.")] = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Search a grid of job and cloud settings for the cheapest one that meets a deadline.

    The vectorised cost model and fleet estimates price every point; the Pareto front (completion,
    device energy, traffic, cloud cost, accuracy) is filtered by the constraints, and the best
    candidates are confirmed with the simulator (on Dask with --workers or --scheduler). See
    docs/planning.md.
    """
    from dlora_sim.planner import plan as run_plan
    from dlora_sim.sweep import TLSFiles

    if output is not None and output.exists() and not output.is_dir():
        raise InputError(f"{output}: -o must be a folder")
    names = tuple(s.strip() for s in strategies.split(",") if s.strip()) if strategies else None
    err = Console(stderr=True)
    result = run_plan(scenario, deadline, max_usd=max_usd, min_accuracy=min_accuracy, vary=vary,
                      strategies=names, confirm=confirm, percentile=percentile, confirm_devices=confirm_devices,
                      profiles=profiles, progress=None if as_json else (lambda line: err.print(escape(line))),
                      workers=workers, scheduler=scheduler, tls=TLSFiles(tls_ca_file, tls_cert, tls_key))
    record = result.to_dict()
    if output is not None:
        from dlora_sim.report.plan import write_plan_page

        try:
            output.mkdir(parents=True, exist_ok=True)
            atomic_write_text(output / "plan.json", json.dumps(record, indent=2, sort_keys=True, allow_nan=False))
        except OSError as error:
            raise InputError(f"{output}: cannot write ({error.strerror or error})") from None
        write_plan_page(record, output / "plan.html")
    if as_json:
        typer.echo(json.dumps(record, indent=2, sort_keys=True, allow_nan=False))
    else:
        _print(record)
        if output is not None:
            err.print(f"wrote {escape(str(output / 'plan.json'))} and {escape(str(output / 'plan.html'))}")
    if result.status not in ("recommended",) and not (result.status == "unconfirmed" and confirm == 0):
        raise typer.Exit(code=1)


def _print(record: dict[str, Any]) -> None:
    probe = Console()
    console = Console(width=min(probe.width, 100) if probe.is_terminal else 100)
    typer.echo(record["message"])
    rows = record["confirmed"] or ([record["closest"]] if record["closest"] else []) or record["candidates"][:3]
    if not rows:
        return
    table = Table(title=escape(f"{record['scenario']}: estimate → simulated"), title_justify="left")
    for header, justify in (("configuration", "left"), ("est.", "right"), ("sim.", "right"), ("done", "right"),
                            ("kJ/dev", "right"), ("traffic", "right"), ("cloud $", "right"), ("acc.", "right")):
        table.add_column(header, justify=justify, overflow="fold")
    for r in rows:
        done = "—" if r.get("sim_devices") is None else f"{r['sim_finished']}/{r['sim_devices']}"
        sim = r.get("fleet_time_s")
        usd = r.get("sim_provisioned_usd") if r.get("sim_provisioned_usd") is not None else r["cloud_usd"]
        table.add_row(escape(r["label"]), _h(r["time_s"]), _h(sim), done, _kj(r.get("sim_device_energy_j") or r["device_energy_j"]),
                      _gb(r.get("sim_bytes_per_device") or r["bytes_per_device"]), f"{usd:,.0f}", _acc(r["accuracy"]))
    console.print(table)
    rec = record.get("recommendation")
    if rec:
        console.print(escape(f"cloud sees: {', '.join(rec.get('cloud_sees') or []) or 'nothing'}; "
                             f"GPU busy {100 * rec['gpu_utilisation']:.1f}% of the time; bound by {rec['bound']}"))
    console.print(escape(f"{record['points']:,} points estimated in {record['estimate_s']:.1f} s, "
                         f"{len(record['front'])} on the Pareto front; "
                         + ("" if record["confirm_devices"] is None else
                            f"simulated on a sample of {record['confirm_devices']} devices (sim. column "
                            "scaled to the fleet by the estimate's ratio); ")
                         + "; ".join(record["notes"])))
