"""`dlora-sim profiles curve`: the accuracy-vs-steps curve, its plateau step and the paired gain.

The profiles are synthetic TEST DATA (``test_profile_schema_builder.build_profile``) with made-up
curves and predictions on the real noun-supersense test split; nothing here is a result.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlora_sim.cli import main
from dlora_sim.errors import InputError
from dlora_sim.profile import save_profile
from dlora_sim.profiling.tasks import load_task
from dlora_sim.study.curve import gain_over_shorter, load_curves, plateau_step
from dlora_sim.study.paired import load_runs
from test_profile_schema_builder import build_profile

LABELS = load_task("noun-supersense", "test").labels
N = LABELS.size
STEPS = (50, 100, 150, 200)
# per seed: test accuracy at 50..200; the mean is .50, .60, .645, .65 -> within 1 point of the best from 150
CURVES = {0: (0.50, 0.60, 0.64, 0.65), 1: (0.50, 0.60, 0.65, 0.65)}


def _correct(accuracy: float, seed: int) -> np.ndarray:
    """A fixed per-seed order of examples, the first ``accuracy`` share right (nested by accuracy)."""
    order = np.random.default_rng(seed).permutation(N)
    correct = np.zeros(N, dtype=bool)
    correct[order[: round(accuracy * N)]] = True
    return correct


def _write(folder: Path, steps: int, seed: int, curve: tuple[float, ...] | None) -> None:
    accuracy = curve[-1] if curve else CURVES[seed][STEPS.index(steps)]
    correct = _correct(accuracy, seed)
    predictions = [int(y) if ok else int((y + 1) % 26) for y, ok in zip(LABELS, correct)]
    profile = build_profile(arm="all", seed=seed, steps=steps, window_steps=25,
                            test_accuracy=float(correct.mean()), test_predictions=predictions)
    path = folder / f"all-{steps}-s{seed}.json"
    save_profile(profile, path)
    if curve:
        data = json.loads(path.read_text())
        data["traces"]["eval"] = [{"step": s, "accuracy": a - 0.01} for s, a in zip(STEPS, curve)]
        data["traces"]["test_eval"] = [{"step": s, "accuracy": round(a * N) / N} for s, a in zip(STEPS, curve)]
        data["result"]["dev_accuracy"] = curve[-1] - 0.01
        path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two 200-step runs with curves, and the 100-step runs of the same seeds (same prefix)."""
    path = tmp_path_factory.mktemp("curve")
    for seed, curve in CURVES.items():
        _write(path, 200, seed, curve)
        _write(path, 100, seed, None)
    return path


def test_curve_means_over_seeds_and_its_plateau(folder):
    (curve,) = load_curves(folder)
    assert curve.seeds == (0, 1) and curve.eval_steps == STEPS and curve.steps == 200
    assert curve.mean_test == pytest.approx([0.50, 0.60, 0.645, 0.65], abs=1e-3)
    assert plateau_step(curve, 0.01) == 150
    assert plateau_step(curve, 0.0) == 200
    assert plateau_step(curve, 0.06) == 100


def test_gain_over_the_shorter_runs_is_paired_by_example(folder):
    """Step 200 vs the 100-step runs: +5.0 points, every changed example one way (nested sets),
    so the interval is tight around it and excludes 0."""
    (curve,) = load_curves(folder)
    runs, _ = load_runs(folder)
    gain = gain_over_shorter(curve, runs)
    assert gain is not None and gain.short_steps == 100 and gain.seeds == (0, 1)
    assert gain.difference.estimate == pytest.approx(0.05, abs=1e-3)
    assert 0.03 < gain.difference.low < 0.05 < gain.difference.high < 0.07


def test_a_shorter_run_that_the_curve_does_not_reproduce_is_not_paired(tmp_path):
    _write(tmp_path, 200, 0, CURVES[0])
    _write(tmp_path, 100, 0, None)
    data = json.loads((tmp_path / "all-200-s0.json").read_text())
    data["traces"]["test_eval"][1]["accuracy"] = 0.5  # the curve no longer passes through the 100-step run
    (tmp_path / "all-200-s0.json").write_text(json.dumps(data))
    (curve,) = load_curves(tmp_path)
    assert gain_over_shorter(curve, load_runs(tmp_path)[0]) is None


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def test_cli_prints_the_curve_and_refuses_a_folder_without_one(folder, tmp_path, capsys):
    assert _run(["profiles", "curve", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "| 150 | 64.5 | 64.0 / 65.0 |" in out and "from step **150** on" in out
    assert "Step 200 against step 100" in out and "+5.0 [" in out
    assert "not plateaued within 200 steps" in out and "from step 100 to 200 it still gains +5.0 points" in out
    save_profile(build_profile(arm="all"), tmp_path / "plain.json")
    assert _run(["profiles", "curve", str(tmp_path)]) == 1
    assert "no profile has traces.test_eval" in capsys.readouterr().err


def test_runs_evaluated_at_different_steps_are_refused(tmp_path):
    _write(tmp_path, 200, 0, CURVES[0])
    _write(tmp_path, 200, 1, CURVES[1])
    data = json.loads((tmp_path / "all-200-s1.json").read_text())
    data["traces"]["test_eval"] = data["traces"]["test_eval"][1:]
    (tmp_path / "all-200-s1.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="different steps"):
        load_curves(tmp_path)
