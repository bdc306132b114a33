"""``dlora-sim profile``: fine-tune MiniLM-L6 with KR on a WordNet task and write a profile.

torch, transformers and peft are imported only when the command runs, so the rest of the CLI
works without the ``[profile]`` extra.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from dlora_sim.cli.app import app
from dlora_sim.errors import InputError
from dlora_sim.kr import ARMS, CALIBRATIONS, NORMALISATIONS, PROBE_MODES, SCORES, KRConfig

# The KR options default to the controller's own defaults, so the two cannot drift apart.
_KR_DEFAULTS = {field.name: field.default for field in dataclasses.fields(KRConfig)}


@app.command("profile")
def profile_command(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Profile JSON to write (atomically); with --rerun, default <name>-rerun.json beside it.")] = None,
    rerun: Annotated[Path | None, typer.Option("--rerun", help="Repeat the run that wrote this profile exactly: the options its set-up and command record (same seed); only -o, --threads and --progress may be given with it.")] = None,
    task: Annotated[str, typer.Option(help="Task: noun-supersense, verb-supersense or definition-mc.")] = "noun-supersense",
    model: Annotated[str, typer.Option(help="Base model (only minilm-l6 ships offline).")] = "minilm-l6",
    peft: Annotated[str, typer.Option(help="PEFT scheme: lora, adapter or ia3.")] = "lora",
    budget: Annotated[int, typer.Option(help="KR budget B: modules active after warm-up (0 with arm head-only, and only there).")] = 3,
    arm: Annotated[str, typer.Option(help=f"KR arm: {', '.join(ARMS)}.")] = "kr",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 250,
    seed: Annotated[int, typer.Option(help="Seed for new weights, batch order, dropout and arm random.")] = 0,
    rank: Annotated[int, typer.Option(help="LoRA rank r.")] = 8,
    alpha: Annotated[float, typer.Option(help="LoRA alpha (scaling alpha/r).")] = 16.0,
    lora_targets: Annotated[str, typer.Option(help="LoRA targets: attention (q,k,v,o) or attention+ffn.")] = "attention",
    adapter_size: Annotated[int, typer.Option(help="Adapter bottleneck width m.")] = 16,
    window: Annotated[int, typer.Option(help="KR window: training steps between KR rounds.")] = _KR_DEFAULTS["window_steps"],
    warmup_rounds: Annotated[int, typer.Option(help="KR rounds with every module active.")] = _KR_DEFAULTS["warmup_rounds"],
    score: Annotated[str, typer.Option(help=f"KR score: {', '.join(SCORES)}.")] = _KR_DEFAULTS["score"],
    normalisation: Annotated[str, typer.Option(help=f"KR score normalisation: {', '.join(NORMALISATIONS)}.")] = _KR_DEFAULTS["normalisation"],
    ema: Annotated[float, typer.Option(help="KR: smoothing of scores across rounds (0 = none).")] = _KR_DEFAULTS["ema"],
    probe: Annotated[str, typer.Option(help=f"KR: which modules a probe batch scores: {', '.join(PROBE_MODES)}.")] = _KR_DEFAULTS["probe"],
    probe_calibration: Annotated[str, typer.Option(help=f"KR: how probe changes are put on the norm-change scale: {', '.join(CALIBRATIONS)}.")] = _KR_DEFAULTS["probe_calibration"],
    kill_keep_fraction: Annotated[float, typer.Option(help="Arm kill-only: fraction of active modules kept each round until B remain.")] = _KR_DEFAULTS["kill_keep_fraction"],
    revival_pressure: Annotated[float, typer.Option(help="KR: growth per round of a killed module's score.")] = _KR_DEFAULTS["revival_pressure"],
    hysteresis: Annotated[float, typer.Option(help="KR: relative margin a challenger must beat.")] = _KR_DEFAULTS["hysteresis"],
    lr: Annotated[float, typer.Option(help="AdamW learning rate (constant).")] = 1e-3,
    batch: Annotated[int, typer.Option(help="Examples per step (multiple-choice: questions of 4 rows).")] = 16,
    max_len: Annotated[int, typer.Option(help="Token cap per row (dynamic padding).")] = 48,
    threads: Annotated[int, typer.Option(help="torch threads; keep 1 on a shared machine.")] = 1,
    train_limit: Annotated[int | None, typer.Option(help="Use only the first N training examples.")] = None,
    dev_limit: Annotated[int | None, typer.Option(help="Use only the first N dev examples.")] = 500,
    test_limit: Annotated[int | None, typer.Option(help="Use only the first N test examples.")] = None,
    eval_every: Annotated[int, typer.Option(help="Dev accuracy every N steps (and at the end).")] = 125,
    eval_test: Annotated[bool, typer.Option(help="Also test accuracy at every evaluation (traces.test_eval: the accuracy-vs-steps curve).")] = False,
    upload_noise: Annotated[float, typer.Option(help="Gaussian noise σ on the uploaded embedding output, in training and at test (privacy defence).")] = 0.0,
    train_embeddings: Annotated[bool, typer.Option(help="The device also trains its word-embedding table (a private table).")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Fine-tune with Kill-and-Revive and write one schema-valid profile.

    The profile records the command with every option explicit (setup.command), so
    `dlora-sim profile --rerun PROFILE` repeats it whatever the defaults are by then.
    """
    options = dict(locals())  # every option's value, before anything else is bound
    if rerun is not None:
        from dlora_sim.cli.profile_rerun import rerun_options

        return profile_command(ctx, **rerun_options(rerun, options, ctx))
    if output is None:
        raise InputError("--output/-o is required (the profile JSON to write), or give --rerun PROFILE")
    if threads <= 0:
        raise InputError(f"--threads must be positive, got {threads}")
    try:
        kr = KRConfig(budget=budget, arm=arm, window_steps=window, warmup_rounds=warmup_rounds,
                      hysteresis=hysteresis, score=score, normalisation=normalisation,
                      revival_pressure=revival_pressure, ema=ema, probe=probe,
                      probe_calibration=probe_calibration, kill_keep_fraction=kill_keep_fraction,
                      seed=seed)
    except ValueError as error:
        raise InputError(f"KR option: {error}") from None
    try:
        from dlora_sim.profiling.models import PeftSpecLocal, model_folder
        from dlora_sim.profiling.runner import run_profile
        from dlora_sim.profiling.train import TrainConfig
    except ImportError as error:
        raise InputError(f"'profile' needs the [profile] extra (torch, transformers, peft): {error}") from None
    model_folder(model)
    from dlora_sim.profiling.tasks import task_names

    if task not in task_names():
        raise InputError(f"unknown task '{task}'; allowed: {', '.join(task_names())}")
    config = TrainConfig(task=task, peft=PeftSpecLocal(method=peft, rank=rank, alpha=alpha,
                                                       targets=lora_targets, adapter_size=adapter_size),
                         kr=kr, steps=steps, batch=batch, lr=lr, seed=seed, max_len=max_len,
                         train_limit=train_limit, dev_limit=dev_limit, test_limit=test_limit,
                         eval_every=eval_every, eval_test=eval_test, upload_noise=upload_noise,
                         train_embeddings=train_embeddings)
    from dlora_sim.cli.profile_rerun import command_line

    command = command_line(options, ctx.command)
    if progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} loss {task.fields[loss]:.3f}"),
                      TimeRemainingColumn(), transient=False) as bar:
            job = bar.add_task(f"{task} {peft} {arm} B={budget} seed={seed}", total=steps, loss=float("nan"))
            result = run_profile(config, output, threads=threads, command=command,
                                 on_step=lambda step, loss: bar.update(job, completed=step, loss=loss))
    else:
        result = run_profile(config, output, threads=threads, command=command)
    typer.echo(f"{output}: test accuracy {result.result.test_accuracy:.4f}, "
               f"dev {result.result.dev_accuracy:.4f}, {result.result.wall_s:.0f} s")
