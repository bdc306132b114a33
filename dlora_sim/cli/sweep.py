"""``dlora-sim sweep``: run a grid of paired simulations on Dask, resumably (issue 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlora_sim.cli.app import app


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(
        help="Sweep file (TOML): a base scenario plus a grid and/or list of field overrides; "
             "see docs/sweeps.md and scenarios/sweeps/.", show_default=False)],
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o",
        help="Sweep folder: one sub-folder per point under points/, the table sweep.parquet. "
             "Default: results/sweeps/<sweep name>. Rerunning into the same folder skips "
             "finished points.")] = None,
    scheduler: Annotated[Optional[str], typer.Option(
        "--scheduler",
        help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (start one with "
             "`dask scheduler` and `dask worker tcp://HOST:PORT`). Workers must see the sweep "
             "folder (shared storage). Default: a local cluster on this machine.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1,
        help="Worker processes of the local cluster (one thread each); ignored with "
             "--scheduler.")] = 2,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Show a progress bar on stderr.")] = True,
) -> None:
    """Run every point of a sweep (each a full paired run of all strategies) and write its table.

    Interrupted sweeps resume: a point whose folder holds DONE.json is skipped.

    View the result with: dlora-sim dashboard SWEEP_FOLDER -o dashboards/NAME.html
    """
    from dlora_sim.sweep import load_spec, run_sweep

    loaded = load_spec(spec)
    out = output if output is not None else Path("results") / "sweeps" / loaded.name
    outcome = run_sweep(loaded, out, scheduler=scheduler, n_workers=workers, progress=progress)
    typer.echo(f"sweep {loaded.name}: {outcome.n_points} points "
               f"({outcome.n_run} run now, {outcome.n_skipped} already done)")
    typer.echo(f"wrote {outcome.table_path}")
    if outcome.failures:
        for label, message in outcome.failures:
            typer.echo(f"failed: {label}: {message}", err=True)
        typer.echo(f"error: {len(outcome.failures)} point(s) failed; rerun to retry them", err=True)
        raise typer.Exit(code=1)
