"""Synthetic profiles for tests: TEST DATA, not measurements.

``build_profile`` drives the real :class:`~dlora_sim.kr.KRController` with made-up weight-norm
dynamics on MiniLM-L6-shaped LoRA modules (6 layers × q,k,v,o = 24 modules, d = 384, r = 8), so
the traces obey every rule the schema checks, the same way a real training run would produce
them. Accuracies and losses are invented; nothing here is a result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlora_sim.kr import KRConfig, KRController
from dlora_sim.profile import SCHEMA_VERSION, KRSettings, Profile, load_profile, mean_trainable_params, save_profile

D_MODEL = 384
RANK = 8
KINDS = ("query", "key", "value", "attention.output.dense")


def build_profile(
    arm: str = "kr",
    budget: int = 3,
    seed: int = 0,
    steps: int = 200,
    window_steps: int = 20,
    task: str = "noun-supersense",
    method: str = "lora",
    test_accuracy: float | None = None,
    hysteresis: float = 0.1,
    test_predictions: list[int] | None = None,
    score: str = "norm-diff",
) -> Profile:
    """A schema-valid synthetic profile whose active sets come from the real KR controller."""
    rng = np.random.default_rng(seed)
    n = 6 * len(KINDS)
    params = RANK * (D_MODEL + D_MODEL)
    config = KRConfig(budget=budget, arm=arm, window_steps=window_steps, seed=seed, hysteresis=hysteresis,  # type: ignore[arg-type]
                      score=score)  # type: ignore[arg-type]
    ctrl = KRController(n, config, module_params=np.full(n, params))
    # Each module has a responsiveness that drifts, so some wake up late (revival material).
    rate = rng.gamma(2.0, 0.01, size=n)
    norm = rng.uniform(0.9, 1.1, size=n)
    ctrl.set_baseline(norm)
    round_steps, norms, active, probes = [], [], [], []
    for step in range(window_steps, steps + 1, window_steps):
        rate = np.abs(rate + rng.normal(0, 0.004, size=n))
        norm = norm + np.where(ctrl.active, rate * window_steps * rng.uniform(0.5, 1.5, size=n), 0.0)
        work = ctrl.round_work()
        probe = np.where(work.probe_mask, rate * window_steps, np.nan) if work.probe_batches else None
        decision = ctrl.round(norm, probe_change=probe)
        round_steps.append(step)
        norms.append([float(v) for v in norm])
        active.append(decision.active_indices)
        probes.append(None if probe is None else [None if np.isnan(v) else float(v) for v in probe])
    loss = 3.2 * np.exp(-np.arange(steps) / (steps / 3)) + 0.3 + rng.uniform(0, 0.05, size=steps)
    accuracy = test_accuracy if test_accuracy is not None else float(rng.uniform(0.7, 0.85))
    modules = [
        {
            "name": f"encoder.layer.{layer}.attention.{kind}",
            "layer": layer,
            "kind": kind,
            "d_in": D_MODEL,
            "d_out": D_MODEL,
            "params": params,
            "fwd_flops_per_token": 2.0 * params,
            "bwd_flops_per_token": 4.0 * params,
        }
        for layer in range(6)
        for kind in KINDS
    ]
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": {"name": "minilm-l6", "n_layers": 6, "d_model": D_MODEL, "n_heads": 12, "d_ff": 1536,
                  "vocab": 30522, "dtype": "float32", "n_params": 22_713_216},
        "peft": {"method": method, "rank": RANK, "alpha": 16.0, "targets": ["query", "key", "value", "dense"]},
        "modules": modules,
        "flops": {"source": "synthetic test data", "convention": "1 MAC = 2 FLOPs",
                  "base_fwd_flops_per_token": 2.2e7, "base_bwd_flops_per_token": 2.2e7},
        "setup": {"task": task, "arm": arm, "budget": budget, "steps": steps, "lr": 5e-4, "batch": 16,
                  "seq_len": 64, "seed": seed, "kr": KRSettings.from_config(config).model_dump(),
                  "library_versions": {"numpy": np.__version__}},
        "traces": {"round_steps": round_steps, "norms": norms, "active": active,
                   "probe_change": [p if p is not None else [None] * n for p in probes],
                   "loss": [float(v) for v in loss],
                   "eval": [{"step": s, "accuracy": accuracy} for s in (steps // 2, steps)],
                   "step_time_s": [0.05] * steps},
        "kr_overhead": {"norm_s_per_step": 1e-4, "probe_s_per_step": 2e-3 if arm == "kr" else 0.0,
                        "norm_flops_per_step": 2.0 * n * params / window_steps,
                        "probe_flops_per_step": 3 * 2.2e7 * 16 * 64 / window_steps if arm == "kr" else 0.0,
                        "probe_batches": sum(p is not None for p in probes), "rounds": len(round_steps)},
        "result": {"dev_accuracy": accuracy, "test_accuracy": accuracy, "trainable_params": n * params + 26 * 385,
                   "wall_s": 0.05 * steps},
    }
    if test_predictions is not None:
        data["result"]["test_predictions"] = test_predictions
    draft = Profile.model_validate(data)
    # What the arm really trained: the head plus the active modules, averaged over the steps.
    data["result"].update(head_params=26 * 385, trainable_params=round(mean_trainable_params(draft, 26 * 385)))
    return Profile.model_validate(data)


def test_builder_profiles_validate_for_every_arm(tmp_path):
    """Profiles built by driving the controller pass the schema for all five arms and round-trip."""
    for arm in ("all", "kr", "kill-only", "random", "static-topB", "static-random", "head-only"):
        profile = build_profile(arm=arm, budget=0 if arm == "head-only" else 3)
        save_profile(profile, tmp_path / f"{arm}.json")
        assert load_profile(tmp_path / f"{arm}.json") == profile
