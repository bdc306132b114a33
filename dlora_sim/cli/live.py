"""``dlora-sim live``: run DLoRA for real, an edge process and a cloud process, and (``--compare``)
hold the simulator against it.

torch, transformers, peft and pyzmq are imported only when the command runs, so the rest of the
CLI works without the ``[profile]`` and ``[live]`` extras.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Annotated

import typer

from dlora_sim.cli.app import app
from dlora_sim.errors import InputError

#: the file that marks a folder as one ``dlora-sim live`` wrote (and may therefore replace)
MARKER = "live.json"


def _prepare(out: Path) -> None:
    """OUT must be missing, empty, or a folder this command wrote; then it starts empty."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError(f"--out: {out} is not a folder")
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise InputError(f"--out: {out} holds files that dlora-sim live did not write; give an empty or new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


@app.command("live")
def live_command(
    out: Annotated[Path, typer.Option("--out", "-o", metavar="OUT", help="Folder for the runs' logs, records and "
                                      "scenarios; replaced only if dlora-sim live wrote it.")] = Path("results/live"),
    link: Annotated[list[str] | None, typer.Option(help="Link to run over, repeatable: loopback (unshaped) or a "
                                                   "catalog link (wifi, 5g, lte, ...), shaped with network "
                                                   "namespaces when root.")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Calibrate on loopback, simulate the matching "
                                          "scenario per link and print predicted against measured.")] = False,
    task: Annotated[str, typer.Option(help="Classification task.")] = "noun-supersense",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 4,
    batch: Annotated[int, typer.Option(help="Samples per step.")] = 2,
    seq_len: Annotated[int, typer.Option(help="Tokens per sample (every batch is padded to it).")] = 32,
    rank: Annotated[int, typer.Option(help="LoRA rank r (on q, k, v, o of every block).")] = 8,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of the new weights and the batch order.")] = 0,
    kr: Annotated[bool, typer.Option(help="Kill-and-Revive on (dlora-kr) or off (dlora-all).")] = False,
    budget: Annotated[int, typer.Option(help="KR budget B.")] = 3,
    window: Annotated[int, typer.Option(help="KR window: steps between rounds.")] = 2,
    warmup_rounds: Annotated[int, typer.Option(help="KR rounds with every module active.")] = 0,
    exchange: Annotated[str, typer.Option(help="activations (per-module round trips) or weights.")] = "activations",
    share_inputs: Annotated[bool, typer.Option(help="q, k, v of a layer share one input message.")] = True,
    checkpoint_every: Annotated[int | None, typer.Option(help="Edge checkpoint every N steps (default: only after "
                                                         "the last, so that no disk write lands inside a timed step).")] = None,
    train_limit: Annotated[int, typer.Option(help="Training examples used.")] = 256,
    timeout: Annotated[float, typer.Option(help="Seconds one run may take.")] = 900.0,
) -> None:
    """Train MiniLM-L6 + LoRA with DLoRA between two real processes, over each LINK.

    Without --compare: one run per link; prints the losses, time per step, bytes each way and round trips.

    With --compare: calibrates both processes on loopback, simulates the matching scenario per link and prints predicted against measured (docs/live.md).
    """
    try:
        from dlora_sim.live.compare import calibration_run, format_table, measured, row
        from dlora_sim.live.job import LiveJob
        from dlora_sim.live.runner import LiveRunError, run_live
        from dlora_sim.live.shaping import plan, shape_named
    except ImportError as error:
        raise InputError(f"'live' needs the [live] and [profile] extras (pyzmq, torch, transformers, peft): {error}") from None
    job = LiveJob(task=task, train_limit=train_limit, batch=batch, seq_len=seq_len, steps=steps, rank=rank, lr=lr,
                  seed=seed, kr=kr, budget=budget, kr_window=window, kr_warmup=warmup_rounds, exchange=exchange,
                  share_inputs=share_inputs,
                  checkpoint_every=steps if checkpoint_every is None else checkpoint_every)
    if not timeout > 0:
        raise InputError(f"--timeout must be positive, got {timeout}")
    shapes = [shape_named(name) for name in (link or ["loopback"])]
    for shape in shapes:
        typer.echo(f"link {shape.name}: {plan(shape)[1]}", err=True)
    _prepare(out)
    (out / MARKER).write_text(json.dumps({"job": json.loads(job.to_json()), "links": [s.name for s in shapes]}))
    try:
        if compare:
            typer.echo("calibrating on loopback ...", err=True)
            compute, loopback = calibration_run(dataclasses.replace(job, kr=False), out / "calibration", timeout)
            typer.echo(f"edge {compute.edge_flops_per_s:.3g} FLOP/s, cloud {compute.cloud_flops_per_s:.3g} FLOP/s, "
                       f"loopback round trip {1e3 * loopback.rtt_s:.3g} ms", err=True)
            rows = [row(job, shape, compute, loopback, out / shape.name, timeout) for shape in shapes]
            typer.echo(format_table(rows))
            return
        for shape in shapes:
            run = run_live(job, out / shape.name, shape, timeout_s=timeout)
            side = measured(run)
            losses = run.edge["losses"]
            typer.echo(f"{shape.name}: loss {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} steps, "
                       f"{side.step_s:.3f} s/step, up {side.bytes_up / 1e6:.3f} MB, down {side.bytes_down / 1e6:.3f} MB, "
                       f"{side.round_trips} round trips")
    except LiveRunError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None

