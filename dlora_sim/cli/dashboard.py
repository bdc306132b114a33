"""``dlora-sim dashboard``: one self-contained HTML page from a run's or a sweep's results (issue 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlora_sim.cli.app import app


@app.command()
def dashboard(
    results: Annotated[Path, typer.Argument(
        help="A results folder written by `dlora-sim run` (holds summary.json) or a sweep folder "
             "written by `dlora-sim sweep` (holds sweep.parquet).", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o",
        help="HTML file to write (one self-contained page; opens offline in any browser). "
             "Default: dashboards/<results folder name>.html.")] = None,
    profile: Annotated[Optional[Path], typer.Option(
        "--profile",
        help="Profile JSON whose Kill-and-Revive traces to plot instead of the one the run's "
             "scenario names (job.profile). Run dashboards only.")] = None,
    timeline_devices: Annotated[int, typer.Option(
        "--timeline-devices", min=1,
        help="At most this many sampled devices in the device timeline (the run samples "
             "run.timeline_sample_devices of them).")] = 12,
) -> None:
    """Write one self-contained HTML dashboard of a run or of a sweep.

    For a run: the Kill-and-Revive picture, savings against the paired baseline, completion-time
    CDF, cost breakdown, a device timeline and the network topology.

    For a sweep: the Pareto front of accuracy against cost and time per budget B, and all points.
    """
    from dlora_sim.report.dashboard import build_dashboard

    out = output if output is not None else Path("dashboards") / f"{results.resolve().name}.html"
    written = build_dashboard(results, out, profile=profile, timeline_devices=timeline_devices)
    typer.echo(f"wrote dashboard {written} — open it in a browser (works offline)")
