"""``dlora-sim sweep``: run a grid of paired simulations on Dask, resumably (issue 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlora_sim.cli.app import app

# The client certificate options of a tls:// Dask scheduler, shared by ``sweep`` and ``plan``.
TlsCaFile = Annotated[Optional[Path], typer.Option(
    "--tls-ca-file", help="With a tls:// scheduler: the CA certificate (PEM) that signed "
                          "the cluster's certificates.", show_default=False)]
TlsCert = Annotated[Optional[Path], typer.Option(
    "--tls-cert", help="With a tls:// scheduler: this client's certificate (PEM), signed by "
                       "that CA; may hold the key too.", show_default=False)]
TlsKey = Annotated[Optional[Path], typer.Option(
    "--tls-key", help="With a tls:// scheduler: this client's private key (PEM), unless "
                      "it is in the --tls-cert file.", show_default=False)]


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
        help="Address of a running Dask scheduler: tls://HOST:PORT with the --tls-* files, or "
             "tcp://HOST:PORT on a network only you can reach (whoever reaches a scheduler runs "
             "code on its workers; see docs/sweeps.md). Workers must see the sweep folder "
             "(shared storage). Default: a local cluster on this machine, loopback only.")] = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1,
        help="Worker processes of the local cluster (one thread each); ignored with "
             "--scheduler.")] = 2,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Show a progress bar on stderr.")] = True,
) -> None:
    """Run every point of a sweep (each a full paired run of all strategies) and write its table.

    Interrupted sweeps resume: a point with an intact DONE.json and results is skipped.

    A point whose scenario changed (an edited base file) runs anew, in a new folder.

    One sweep at a time writes a folder; a second one stops with one line naming the holder.

    View the result with: dlora-sim dashboard SWEEP_FOLDER -o dashboards/NAME.html
    """
    from dlora_sim.sweep import TLSFiles, load_spec, run_sweep

    loaded = load_spec(spec)
    out = output if output is not None else Path("results") / "sweeps" / loaded.name
    outcome = run_sweep(loaded, out, scheduler=scheduler, n_workers=workers, progress=progress,
                        tls=TLSFiles(tls_ca_file, tls_cert, tls_key))
    plural = "s" if outcome.n_points != 1 else ""
    typer.echo(f"sweep {loaded.name}: {outcome.n_points} point{plural} "
               f"({outcome.n_run} run now, {outcome.n_skipped} already done)")
    typer.echo(f"wrote {outcome.table_path}")
    if outcome.failures:
        for label, message in outcome.failures:
            typer.echo(f"failed: {label}: {message}", err=True)
        typer.echo(f"error: {len(outcome.failures)} point(s) failed; rerun to retry them", err=True)
        raise typer.Exit(code=1)
