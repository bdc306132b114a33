"""From a folder of profiles to per-arm accuracy intervals and paired differences between arms.

Runs are paired when they share the *setting* (task, PEFT method, steps, learning rate, batch,
KR window and warm-up, test examples, upload noise, whether the device trained its embeddings)
and the seed: with one seed every arm trains on the same
batches from the same initial weights and is scored on the same test examples, so a difference
example by example is the arm's doing (plus the noise of its own decisions). Arms are told apart
by their *variant*: the arm name, and for the score-driven arms (kr, kill-only, static-topB) the
score when it is not the default ``norm-diff`` (e.g. ``kr:update-norm-diff``).

Correctness needs the gold labels; they come from the committed task (test split, in order),
and each profile's predictions must reproduce its own recorded test accuracy, so a profile
scored on another split or task version is refused instead of silently mis-paired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from dlora_sim.errors import InputError
from dlora_sim.profile import Profile, churn_series, load_profile
from dlora_sim.study.stats import DEFAULT_RESAMPLES, Interval, PairedIntervals, bootstrap_mean, mcnemar_exact

__all__ = ["Setting", "setting_of", "Run", "ArmSummary", "Comparison", "load_runs", "variant", "summarise_arms", "compare_arms"]

SCORED_ARMS = ("kr", "kill-only", "static-topB")
BUDGET_FREE = ("all", "head-only")  # arms whose training does not depend on B
ORDER = ("all", "head-only", "kr", "kill-only", "static-topB", "random", "static-random")


@dataclass(frozen=True)
class Setting:
    """What two runs must share to be paired (everything but the arm and the seed).

    ``upload_noise`` (the privacy defence's σ on the uploaded embeddings) and ``train_embeddings``
    change what is learnt as much as the step count does (profiles/privacy: accuracy falls with
    σ), so a defended run is neither paired nor pooled with an undefended one.
    """

    task: str
    peft: str
    steps: int
    lr: float
    batch: int
    window: int
    warmup: int
    n_test: int
    upload_noise: float = 0.0
    train_embeddings: bool = False

    def _defences(self) -> str:
        """The privacy defences the runs trained with ('' for none), so that two settings which
        differ only in them do not print alike."""
        return ((f", upload noise σ {self.upload_noise:g}" if self.upload_noise else "")
                + (", embeddings trained on the device" if self.train_embeddings else ""))

    def label(self) -> str:
        return f"{self.task} {self.peft} {self.steps} steps lr {self.lr:g}{self._defences()}"

    def describe(self) -> str:
        """Every field, for a message saying why two profiles are not comparable."""
        return (f"{self.task} {self.peft}, {self.steps} steps, lr {self.lr:g}, batch {self.batch}, "
                f"window {self.window}, warm-up {self.warmup}, {self.n_test or 'unknown'} test examples"
                f"{self._defences()}")


def setting_of(profile: Profile) -> Setting:
    """The setting a profile was trained in; ``n_test`` counts its test predictions (0 when it
    holds none, as before schema 2: those files cannot say how many examples scored them)."""
    setup, kr = profile.setup, profile.setup.kr
    n_test = len(profile.result.test_predictions or ())
    return Setting(setup.task, profile.peft.method, setup.steps, setup.lr, setup.batch,
                   kr.window_steps, kr.warmup_rounds, n_test, setup.upload_noise, setup.train_embeddings)


@dataclass(frozen=True)
class Run:
    """One profile reduced to what the comparison needs."""

    path: Path
    setting: Setting
    variant: str
    budget: int
    seed: int
    correct: np.ndarray = field(repr=False)  # bool per test example
    trainable_params: int
    swaps_per_round: float


@dataclass(frozen=True)
class ArmSummary:
    """One variant at one budget in one setting, over its seeds."""

    setting: Setting
    variant: str
    budget: int
    seeds: tuple[int, ...]
    accuracy: Interval  # mean test accuracy with the two-way (seeds × examples) interval
    per_seed: tuple[float, ...]
    trainable_params: int
    swaps_per_round: float


@dataclass(frozen=True)
class Comparison:
    """``variant`` minus ``baseline`` in accuracy, paired by seed and by test example."""

    setting: Setting
    budget: int
    variant: str
    baseline: str
    seeds: tuple[int, ...]
    n_examples: int
    per_seed: tuple[float, ...]  # accuracy difference per seed
    intervals: PairedIntervals
    arm_only: int  # (seed, example) pairs the variant got right and the baseline wrong
    baseline_only: int
    mcnemar_p: float  # exact, on the pooled pairs
    per_seed_p: tuple[float, ...]


def variant(profile: Profile) -> str:
    """The arm as the study names it: ``kr``, ``kr:update-norm-diff``, ``random``, …"""
    arm, score = profile.setup.arm, profile.setup.kr.score
    return f"{arm}:{score}" if arm in SCORED_ARMS and score != "norm-diff" else arm


@lru_cache(maxsize=16)
def _test_labels(task: str) -> tuple[np.ndarray, int]:
    from dlora_sim.profiling.tasks import load_task  # numpy only; the committed task files

    split = load_task(task, "test")
    return split.labels, split.n_classes


def _correct(path: Path, profile: Profile) -> np.ndarray:
    """Per test example, whether the run was right; refused when it cannot be the task's split."""
    predictions = np.asarray(profile.result.test_predictions, dtype=np.int64)
    try:
        labels, n_classes = _test_labels(profile.setup.task)
    except InputError as error:
        raise InputError(f"{path}: setup.task: {error}") from None
    if predictions.size > labels.size:
        raise InputError(f"{path}: result.test_predictions: {predictions.size} predictions, but the "
                         f"{profile.setup.task} test split has {labels.size} examples")
    if predictions.max(initial=0) >= n_classes:
        raise InputError(f"{path}: result.test_predictions: class index {int(predictions.max())} is out of "
                         f"range for {profile.setup.task} ({n_classes} classes)")
    correct = predictions == labels[: predictions.size]
    if abs(correct.mean() - profile.result.test_accuracy) > 1e-9:
        raise InputError(f"{path}: result.test_predictions: give accuracy {correct.mean():.4f} on the "
                         f"{profile.setup.task} test split, but result.test_accuracy is "
                         f"{profile.result.test_accuracy:.4f} (scored on other examples?)")
    return correct


def _swaps_per_round(profile: Profile) -> float:
    """Mean revivals per round after the cut (how often the set changes)."""
    _, revivals = churn_series(profile)
    sizes = np.array([len(row) for row in profile.traces.active])
    after_cut = np.flatnonzero(sizes == profile.setup.budget)[1:]
    return float(revivals[after_cut].mean()) if after_cut.size else 0.0


def load_runs(directory: Path) -> tuple[list[Run], list[Path]]:
    """Every ``*.json`` profile directly in ``directory`` with per-example predictions.

    Returns:
        (runs, skipped): skipped are valid profiles without ``result.test_predictions``
        (written before schema 2); they cannot be paired by example.

    Raises:
        InputError: missing folder, no profile, a file that is not a valid profile, predictions
            that do not fit the task's test split, or two runs of one variant, budget, setting
            and seed (the pairing would be ambiguous).
    """
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder of profiles")
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise InputError(f"{directory}: no profile files (*.json) in this folder")
    runs, skipped, seen = [], [], {}
    for path in paths:
        profile = load_profile(path)
        if profile.result.test_predictions is None:
            skipped.append(path)
            continue
        correct = _correct(path, profile)
        setup = profile.setup
        setting = setting_of(profile)
        budget = profile.n_modules if setup.arm == "all" else setup.budget
        run = Run(path, setting, variant(profile), budget, setup.seed, correct,
                  profile.result.trainable_params, _swaps_per_round(profile))
        key = (setting, run.variant, budget, run.seed)
        if key in seen:
            raise InputError(f"{path}: same arm {run.variant!r}, budget {budget}, seed {run.seed} and setting "
                             f"as {seen[key].name}; keep one (other KR settings belong in another folder)")
        seen[key] = path
        runs.append(run)
    return runs, skipped


def _order(variant_name: str) -> tuple[int, str]:
    arm = variant_name.split(":")[0]
    return (ORDER.index(arm) if arm in ORDER else len(ORDER), variant_name)


def summarise_arms(runs: list[Run], resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> list[ArmSummary]:
    """Each variant's mean test accuracy per setting and budget, with its two-way interval."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.setting, run.variant, run.budget), []).append(run)
    out = []
    for (setting, name, budget), members in groups.items():
        members.sort(key=lambda r: r.seed)
        matrix = np.array([r.correct for r in members], dtype=float)
        out.append(ArmSummary(setting, name, budget, tuple(r.seed for r in members),
                              bootstrap_mean(matrix, resamples, seed).both,
                              tuple(float(r.correct.mean()) for r in members),
                              int(round(np.mean([r.trainable_params for r in members]))),
                              float(np.mean([r.swaps_per_round for r in members]))))
    out.sort(key=lambda a: (a.setting.label(), a.setting.n_test, _budget_order(a), _order(a.variant)))
    return out


def _budget_order(item: ArmSummary | Comparison) -> int:
    return -1 if item.variant in BUDGET_FREE else item.budget


def compare_arms(runs: list[Run], baseline: str, budget: int | None = None,
                 resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 only: list[str] | None = None) -> list[Comparison]:
    """Every variant minus ``baseline``, paired by seed and example, within each setting.

    A budget-dependent baseline (e.g. ``random``) is compared at each budget it was run at with
    the variants run at that budget and with the budget-free arms (``all``, ``head-only``); a
    budget-free baseline is compared with every other variant at every budget. Only seeds that
    both have are used. ``budget`` keeps one budget only; ``only`` keeps those variants only.

    Raises:
        InputError: no run of ``baseline`` or of a variant in ``only`` (lists the variants present).
    """
    names = sorted({r.variant for r in runs}, key=_order)
    for option, wanted in (("--baseline", [baseline]), ("--arm", only or [])):
        for name in wanted:
            if name not in names:
                raise InputError(f"{option} {name!r}: no such arm in these profiles; present: {', '.join(names)}")
    index = {(r.setting, r.variant, r.budget, r.seed): r for r in runs}
    out = []
    for setting in sorted({r.setting for r in runs}, key=lambda s: (s.label(), s.n_test)):
        here = [r for r in runs if r.setting == setting]
        base_budgets = sorted({r.budget for r in here if r.variant == baseline})
        for base_budget in base_budgets:
            at = base_budget if baseline not in BUDGET_FREE else None
            others = sorted({(r.variant, r.budget) for r in here if r.variant != baseline
                             and (at is None or r.budget == at or r.variant in BUDGET_FREE)},
                            key=lambda vb: (vb[1] if vb[0] not in BUDGET_FREE else -1, _order(vb[0])))
            for name, arm_budget in others:
                if only is not None and name not in only:
                    continue
                shown = at if at is not None else arm_budget
                keep = budget is None or shown == budget or (at is None and name in BUDGET_FREE)
                if not keep:
                    continue
                seeds = sorted(s for (st, v, b, s) in index if st == setting and v == name and b == arm_budget
                               and (setting, baseline, base_budget, s) in index)
                if not seeds:
                    continue
                arm = np.array([index[(setting, name, arm_budget, s)].correct for s in seeds])
                base = np.array([index[(setting, baseline, base_budget, s)].correct for s in seeds])
                out.append(_compare(setting, shown, name, baseline, tuple(seeds), arm, base, resamples, seed))
    return out


def _compare(setting: Setting, budget: int, name: str, baseline: str, seeds: tuple[int, ...],
             arm: np.ndarray, base: np.ndarray, resamples: int, seed: int) -> Comparison:
    intervals = bootstrap_mean(arm.astype(float) - base.astype(float), resamples, seed)
    arm_only = arm & ~base
    base_only = base & ~arm
    return Comparison(
        setting=setting, budget=budget, variant=name, baseline=baseline, seeds=seeds,
        n_examples=int(arm.shape[1]),
        per_seed=tuple(float(x) for x in arm.mean(axis=1) - base.mean(axis=1)),
        intervals=intervals, arm_only=int(arm_only.sum()), baseline_only=int(base_only.sum()),
        mcnemar_p=mcnemar_exact(int(arm_only.sum()), int(base_only.sum())),
        per_seed_p=tuple(mcnemar_exact(int(a), int(b)) for a, b in zip(arm_only.sum(1), base_only.sum(1))),
    )
