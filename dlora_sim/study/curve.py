"""Accuracy against training steps: where does a run stop improving? (issue 11, phase plateau)

Profiles written with ``dlora-sim profile --eval-test`` carry ``traces.test_eval``, the test
accuracy at every evaluation step, beside ``traces.eval`` (dev). Runs of one task, PEFT method,
arm and length are averaged step by step over their seeds; the *plateau step* is the first
evaluation step whose mean test accuracy is within ``tolerance`` of the best mean the curve
reaches (so training past it buys at most that much).

A curve alone says nothing about how sure the gain is. Where the runs also hold a shorter run
of the same arm and seed (same batches: batch order is a prefix of the longer run's, and the
curve at that step must reproduce its recorded test accuracy, or it is not used), its per-example
predictions pair with the long run's final ones, and the gain gets a two-way bootstrap interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlora_sim.errors import InputError
from dlora_sim.profile import Profile, load_profile
from dlora_sim.study.stats import DEFAULT_RESAMPLES, Interval, bootstrap_mean

__all__ = ["Curve", "Gain", "load_curves", "plateau_step", "gain_over_shorter", "curve_markdown"]


@dataclass(frozen=True)
class Curve:
    """Mean dev and test accuracy per evaluation step over the seeds of one group of runs."""

    task: str
    peft: str
    arm: str
    steps: int
    lr: float
    seeds: tuple[int, ...]
    eval_steps: tuple[int, ...]
    test: tuple[tuple[float, ...], ...]  # [seed][eval point]
    dev: tuple[tuple[float, ...], ...]
    paths: tuple[Path, ...]

    @property
    def mean_test(self) -> np.ndarray:
        return np.mean(np.array(self.test), axis=0)

    @property
    def mean_dev(self) -> np.ndarray:
        return np.mean(np.array(self.dev), axis=0)

    def label(self) -> str:
        return f"{self.task} {self.peft} {self.arm}, {self.steps} steps lr {self.lr:g}"


@dataclass(frozen=True)
class Gain:
    """Final accuracy of the long runs minus that of shorter runs with the same seeds, paired."""

    short_steps: int
    seeds: tuple[int, ...]
    difference: Interval  # two-way (seeds × examples) bootstrap


def load_curves(directory: Path, seeds: tuple[int, ...] | None = None) -> list[Curve]:
    """Every group of profiles in ``directory`` (not recursive) that records a test curve.

    Runs group when task, PEFT method, arm, steps and lr agree and their evaluation steps match;
    ``seeds`` keeps only those seeds.

    Raises:
        InputError: missing folder; runs of one group evaluated at different steps.
    """
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder of profiles")
    groups: dict[tuple, list[tuple[Path, Profile]]] = {}
    for path in sorted(directory.glob("*.json")):
        try:  # a cheap look first: most profiles carry no curve, and validating them all is slow
            raw = json.loads(path.read_text(encoding="utf-8"))
            if not (raw.get("traces") or {}).get("test_eval"):
                continue
        except (OSError, ValueError, AttributeError):
            pass  # let load_profile name the problem
        profile = load_profile(path)
        if profile.traces.test_eval is None or (seeds is not None and profile.setup.seed not in seeds):
            continue
        s = profile.setup
        groups.setdefault((s.task, profile.peft.method, s.arm, s.steps, s.lr), []).append((path, profile))
    curves = []
    for (task, peft, arm, steps, lr), members in groups.items():
        members.sort(key=lambda m: m[1].setup.seed)
        at = [tuple(p.step for p in prof.traces.test_eval) for _, prof in members]
        if len(set(at)) != 1:
            raise InputError(f"{members[0][0]}: traces.test_eval: runs of {task} {peft} {arm} {steps} steps "
                             f"were evaluated at different steps; keep one evaluation schedule per group")
        dev = []
        for path, prof in members:
            by_step = {p.step: p.accuracy for p in prof.traces.eval}
            dev.append(tuple(by_step.get(step, float("nan")) for step in at[0]))
        curves.append(Curve(task, peft, arm, steps, lr, tuple(prof.setup.seed for _, prof in members), at[0],
                            tuple(tuple(p.accuracy for p in prof.traces.test_eval) for _, prof in members),
                            tuple(dev), tuple(path for path, _ in members)))
    return sorted(curves, key=lambda c: (c.task, c.peft, c.arm, c.steps, c.lr))


def plateau_step(curve: Curve, tolerance: float = 0.01) -> int:
    """The first evaluation step whose mean test accuracy is within ``tolerance`` of the curve's best."""
    mean = curve.mean_test
    return int(curve.eval_steps[int(np.flatnonzero(mean >= mean.max() - tolerance)[0])])


def gain_over_shorter(curve: Curve, runs: list, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Gain | None:
    """The long runs' final test accuracy minus the shorter runs' of the same arm and seeds, paired
    example by example; None when ``runs`` (:func:`dlora_sim.study.paired.load_runs`) holds none.

    A shorter run counts only when the long run's curve at its length reproduces its test accuracy
    (same batches, same weights up to there); any other is skipped. With several shorter lengths,
    the one with the most seeds (then the longest) is used.
    """
    def same(r) -> bool:
        st = r.setting
        return (st.task, st.peft, r.variant, st.lr) == (curve.task, curve.peft, curve.arm, curve.lr)

    long_runs = {r.seed: r for r in runs if same(r) and r.setting.steps == curve.steps and r.seed in curve.seeds}
    by_length: dict[int, dict[int, object]] = {}
    for r in runs:
        steps = r.setting.steps
        if not same(r) or steps >= curve.steps or steps not in curve.eval_steps or r.seed not in long_runs:
            continue
        on_curve = curve.test[curve.seeds.index(r.seed)][curve.eval_steps.index(steps)]
        if abs(on_curve - float(r.correct.mean())) > 1e-9:
            continue
        by_length.setdefault(steps, {})[r.seed] = r
    if not by_length:
        return None
    short_steps = max(by_length, key=lambda k: (len(by_length[k]), k))
    seeds = tuple(sorted(by_length[short_steps]))
    diff = np.array([long_runs[s].correct.astype(float) - by_length[short_steps][s].correct for s in seeds])
    return Gain(short_steps, seeds, bootstrap_mean(diff, resamples, seed).both)


def curve_markdown(curve: Curve, tolerance: float = 0.01, gain: Gain | None = None) -> str:
    """The mean curve (steps in rows), the plateau step and, given, the paired gain."""
    lines = ["| step | test acc % (mean) | per seed | dev acc % (mean) |", "|---:|---:|---:|---:|"]
    for i, step in enumerate(curve.eval_steps):
        per_seed = " / ".join(f"{100 * t[i]:.1f}" for t in curve.test)
        lines.append(f"| {step} | {100 * curve.mean_test[i]:.1f} | {per_seed} | {100 * curve.mean_dev[i]:.1f} |")
    mean = curve.mean_test
    best = int(np.argmax(mean))
    lines += ["", f"{curve.label()}, seeds {', '.join(map(str, curve.seeds))}: the mean test accuracy is within "
                  f"{100 * tolerance:g} point of its best ({100 * mean[best]:.1f} at step "
                  f"{curve.eval_steps[best]}) from step **{plateau_step(curve, tolerance)}** on."]
    if best == len(mean) - 1 and len(mean) > 2:
        half = int(np.argmin(np.abs(np.array(curve.eval_steps) - curve.eval_steps[-1] / 2)))
        lines[-1] += (f" The best is the last evaluation, so the curve has **not plateaued within {curve.eval_steps[-1]} "
                      f"steps** (that step is a lower bound): from step {curve.eval_steps[half]} to "
                      f"{curve.eval_steps[-1]} it still gains {100 * (mean[-1] - mean[half]):+.1f} points.")
    if gain is not None:
        d = gain.difference
        lines[-1] += (f" Step {curve.steps} against step {gain.short_steps} (the {gain.short_steps}-step runs of the "
                      f"same seeds, paired by example): {100 * d.estimate:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}] "
                      "points (two-way 95% interval).")
    return "\n".join(lines) + "\n"
