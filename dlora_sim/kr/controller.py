"""Kill-and-Revive (KR): decide which PEFT modules train, round by round.

Think of a coach with B shirts for a squad of N players: every few matches (a KR *round*, every
``window_steps`` training steps) the coach looks at who moved the game (the change of each
module's weights over the last window) and hands the shirts to the B most useful players. A
benched player cannot show form on the bench, so the coach watches them in a practice drill (the
*probe batch*: gradients without an update) and brings them back when they look better than a
starter by a clear margin (*hysteresis*).

This module is pure logic (Python + numpy, no torch, no other project module): the same
decisions drive the real training in ``dlora_sim.profiling`` and the simulator, which replays
recorded norm traces through it. ``docs/kr.md`` states the rules and lists every constant.

The caller's loop::

    ctrl = KRController(n_modules, KRConfig(budget=3, arm="kr"), module_params=sizes)
    for step in range(steps):
        train_step(trainable=ctrl.active)
        if (step + 1) % config.window_steps == 0:
            work = ctrl.round_work()               # which norms / probes this round needs
            probe = probe_batch(work.probe_mask) if work.probe_batches else None
            decision = ctrl.round(norms, probe_change=probe)
            freeze(decision.killed); unfreeze(decision.revived)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "ARMS",
    "LEVEL_SCORES",
    "SCORED_ARMS",
    "SCORES",
    "STATIC_ARMS",
    "NORMALISATIONS",
    "PROBE_MODES",
    "CALIBRATIONS",
    "KRConfig",
    "KRDecision",
    "KRRoundWork",
    "KRController",
    "kr_round_work",
    "round_work_at",
]

Arm = Literal["all", "kr", "kill-only", "random", "static-topB", "static-random", "head-only"]
Score = Literal["norm-diff", "diff-norm", "probe-grad", "update-norm-diff"]
Normalisation = Literal["none", "sqrt-params", "relative"]
ProbeMode = Literal["all", "killed", "none"]
Calibration = Literal["per-module", "global"]

#: ``all``: every module trains (the DLoRA-without-KR baseline); ``kr``: kill and revive;
#: ``kill-only``: shrink to B and never revive; ``random``: a fresh random B every round (the
#: control); ``static-topB``: the top B at the end of warm-up, frozen for the rest of training;
#: ``static-random``: a random B drawn (with the seed) at the first decision and kept for the
#: whole run, the control that separates *which* modules train from *how often the set
#: changes*; ``head-only``: budget 0, no module trains after warm-up (only the task head), the
#: floor every budget must beat.
ARMS: tuple[str, ...] = ("all", "kr", "kill-only", "random", "static-topB", "static-random", "head-only")
#: ``norm-diff``: |‖W(t)‖ − ‖W(t−w)‖|, the caller passes weight norms ‖W(t)‖;
#: ``diff-norm``: ‖W(t) − W(t−w)‖, the caller keeps a snapshot and passes that change directly;
#: ``probe-grad``: every module is scored by the probe batch's would-be change (greedy by current
#: gradient, the Gauss-Southwell rule of coordinate descent); norms are then only recorded;
#: ``update-norm-diff``: |‖ΔW(t)‖ − ‖ΔW(t−w)‖| of the effective update ΔW = (α/r)·B·A (LoRA
#: only): the caller passes ‖ΔW(t)‖. Why: ‖[A;B]‖ is dominated by A's random initialisation
#: while B starts at zero, so what changes the model is B·A, not the raw tensors.
SCORES: tuple[str, ...] = ("norm-diff", "diff-norm", "probe-grad", "update-norm-diff")
#: Scores whose caller passes a level (a norm) and the controller takes the change itself.
LEVEL_SCORES: tuple[str, ...] = ("norm-diff", "update-norm-diff")
#: Arms that rank modules by score (the others draw at random or keep a fixed set).
SCORED_ARMS: tuple[str, ...] = ("kr", "kill-only", "static-topB")
#: Arms whose set never changes after their first decision.
STATIC_ARMS: tuple[str, ...] = ("static-topB", "static-random", "head-only")
#: ``none``: raw change; ``sqrt-params``: change / sqrt(params) so big modules do not win by size;
#: ``relative``: change / ‖W(t−w)‖ (only meaningful with ``norm-diff``, where norms are known).
NORMALISATIONS: tuple[str, ...] = ("none", "sqrt-params", "relative")
#: Which modules the probe batch must cover: ``all`` lets the controller calibrate probe
#: estimates against the changes it observed on active modules; ``killed`` is cheaper.
PROBE_MODES: tuple[str, ...] = ("all", "killed", "none")
#: How a frozen module's probe becomes a score comparable with observed changes. ``global``: probe
#: times the median observed/probe ratio of the active modules (needs ``probe = "all"``).
#: ``per-module``: its last observed change times probe(now) / probe(first probe after its kill),
#: so each module is only compared with itself. Measured on MiniLM + LoRA + AdamW, probe gradient
#: norms rank modules almost opposite to observed norm changes (v/o vs q/k), so a global factor
#: mixes two yardsticks; in accuracy neither won clearly (docs/kr.md).
CALIBRATIONS: tuple[str, ...] = ("per-module", "global")


@dataclass(frozen=True)
class KRConfig:
    """Every constant of the KR rules; defaults are the ones the committed profiles use.

    Args:
        budget: B, the number of active (trained) modules after warm-up. Ignored by arm ``all``;
            0 for arm ``head-only`` (and only there).
        arm: one of :data:`ARMS`.
        window_steps: training steps between KR rounds (the window w of the score).
        warmup_rounds: rounds at the start during which every module stays active.
        hysteresis: relative margin; a killed module replaces an active one only if its score
            exceeds the active one's by this factor (0.1 = 10 %). Ties never flip.
        score: one of :data:`SCORES`; says what ``norms`` passed to :meth:`KRController.round` mean.
        normalisation: one of :data:`NORMALISATIONS`.
        ema: smoothing of scores across rounds, s = ema·s_prev + (1 − ema)·s_now; 0 = none.
        revival_pressure: a killed module's score is multiplied by (1 + pressure · rounds
            killed), so modules that have sat out long get re-tried; 0 = no pressure.
        probe: one of :data:`PROBE_MODES`; which modules need a would-be change from a probe batch.
        probe_calibration: one of :data:`CALIBRATIONS`.
        probe_scale: multiplies probe changes when calibration is impossible (e.g. the probe
            covered only killed modules); the caller's probe should estimate the change over a
            whole window, e.g. window_steps · lr · ‖grad‖.
        kill_keep_fraction: arm ``kill-only`` keeps ceil(fraction · active) modules per round
            (never fewer than B) until B remain; 0 cuts straight to B.
        seed: seeds the numpy Generator used by arms ``random`` and ``static-random``.
    """

    budget: int
    arm: Arm = "kr"
    window_steps: int = 25
    warmup_rounds: int = 1
    hysteresis: float = 0.1
    score: Score = "norm-diff"
    normalisation: Normalisation = "sqrt-params"
    ema: float = 0.0
    revival_pressure: float = 0.25
    probe: ProbeMode = "all"
    probe_calibration: Calibration = "global"
    probe_scale: float = 1.0
    kill_keep_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        """Reject impossible settings with a ValueError naming the field."""
        checks: list[tuple[bool, str]] = [
            (self.arm in ARMS, f"arm must be one of {', '.join(ARMS)}; got {self.arm!r}"),
            (self.arm == "head-only" or (isinstance(self.budget, int) and not isinstance(self.budget, bool) and self.budget >= 1),
             f"budget must be an integer >= 1, got {self.budget!r}"),
            (self.arm != "head-only" or (type(self.budget) is int and self.budget == 0),
             f"budget must be 0 with arm 'head-only' (it trains no module after warm-up), got {self.budget!r}"),
            (isinstance(self.window_steps, int) and self.window_steps >= 1, f"window_steps must be an integer >= 1, got {self.window_steps!r}"),
            (isinstance(self.warmup_rounds, int) and self.warmup_rounds >= 0, f"warmup_rounds must be an integer >= 0, got {self.warmup_rounds!r}"),
            (_finite(self.hysteresis) and self.hysteresis >= 0, f"hysteresis must be a finite number >= 0, got {self.hysteresis!r}"),
            (self.score in SCORES, f"score must be one of {', '.join(SCORES)}; got {self.score!r}"),
            (self.normalisation in NORMALISATIONS, f"normalisation must be one of {', '.join(NORMALISATIONS)}; got {self.normalisation!r}"),
            (_finite(self.ema) and 0 <= self.ema < 1, f"ema must be in [0, 1), got {self.ema!r}"),
            (_finite(self.revival_pressure) and self.revival_pressure >= 0, f"revival_pressure must be >= 0, got {self.revival_pressure!r}"),
            (self.probe in PROBE_MODES, f"probe must be one of {', '.join(PROBE_MODES)}; got {self.probe!r}"),
            (self.probe_calibration in CALIBRATIONS, f"probe_calibration must be one of {', '.join(CALIBRATIONS)}; got {self.probe_calibration!r}"),
            (_finite(self.probe_scale) and self.probe_scale > 0, f"probe_scale must be > 0, got {self.probe_scale!r}"),
            (_finite(self.kill_keep_fraction) and 0 <= self.kill_keep_fraction < 1, f"kill_keep_fraction must be in [0, 1), got {self.kill_keep_fraction!r}"),
            (isinstance(self.seed, int) and self.seed >= 0, f"seed must be an integer >= 0, got {self.seed!r}"),
            (not (self.normalisation == "relative" and self.score != "norm-diff"), f"normalisation 'relative' needs score 'norm-diff' (weight norms are not known with {self.score!r})"),
            (not (self.score == "probe-grad" and self.probe == "none"), "probe must not be 'none' with score 'probe-grad' (every module is scored by the probe)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class KRDecision:
    """What one KR round decided.

    Attributes:
        round_index: 0 for the first call of :meth:`KRController.round`.
        active: the active mask after this round (a copy; bool, one entry per module).
        killed: indices that were active and are now frozen (sorted).
        revived: indices that were frozen and now train again (sorted).
        scores: the effective scores the decision ranked (NaN where no evidence existed).
        warmup: True when the round was a warm-up round (no decision taken).
    """

    round_index: int
    active: np.ndarray
    killed: tuple[int, ...]
    revived: tuple[int, ...]
    scores: np.ndarray = field(repr=False)
    warmup: bool = False

    @property
    def active_indices(self) -> list[int]:
        """Sorted active module indices, the form profiles record."""
        return [int(i) for i in np.flatnonzero(self.active)]


@dataclass(frozen=True)
class KRRoundWork:
    """KR's own work at one round, so training and the cost model can count it.

    Attributes:
        norm_modules: modules whose norm must be computed now (killed modules' norms are cached
            because their weights do not move).
        probe_modules: modules that need a probe gradient (``probe_mask`` marks them).
        probe_batches: 1 when a probe batch (forward + backward, no update) is needed, else 0.
        snapshot_modules: modules whose weights must be kept from the previous round
            (``diff-norm`` score only; memory, not FLOPs).
        probe_mask: bool mask of ``probe_modules``.
    """

    norm_modules: int
    probe_modules: int
    probe_batches: int
    snapshot_modules: int
    probe_mask: np.ndarray = field(repr=False)


def kr_round_work(config: KRConfig, active: np.ndarray) -> KRRoundWork:
    """Count what the coming round needs, given the mask active during the window.

    Args:
        config: the KR settings.
        active: bool mask of the modules that trained during the window that just ended.

    Returns:
        The counts. Arm ``kr`` probes when some module is frozen; score ``probe-grad`` probes
        every module at every deciding round (arms ``kr``, ``kill-only``, ``static-topB``).
    """
    active = np.asarray(active, dtype=bool)
    n_active = int(active.sum())
    killed = ~active
    if config.arm == "kr" and killed.any() and config.probe != "none":
        mask = np.ones_like(active) if config.probe == "all" else killed.copy()
    else:
        mask = np.zeros_like(active)
    needs_norms = config.arm in SCORED_ARMS
    if needs_norms and config.score == "probe-grad":
        mask = np.ones_like(active)  # every module is scored by the probe, every deciding round
    return KRRoundWork(
        norm_modules=n_active if needs_norms else 0,
        probe_modules=int(mask.sum()),
        probe_batches=int(mask.any()),
        snapshot_modules=n_active if (needs_norms and config.score == "diff-norm") else 0,
        probe_mask=mask,
    )


def round_work_at(config: KRConfig, active: np.ndarray, round_index: int, frozen: bool) -> KRRoundWork:
    """What round ``round_index`` needs, given the mask active during the window before it.

    Warm-up rounds and arms that have stopped changing (``static-topB``, ``static-random`` and
    ``head-only`` after their cut, ``kill-only`` once at B) need no probe; norms are still recorded for the traces. Both the
    controller and the job schedule (:mod:`dlora_sim.kr.schedule`) ask this one function.
    """
    work = kr_round_work(config, active)
    if frozen or round_index < config.warmup_rounds:
        return KRRoundWork(work.norm_modules, 0, 0, work.snapshot_modules, np.zeros(active.shape, dtype=bool))
    return work


class KRController:
    """Keeps the active set of one training job and updates it once per KR round.

    Deterministic: the same config (seed included) and the same inputs give the same decisions.
    """

    def __init__(self, n_modules: int, config: KRConfig, module_params: np.ndarray | list[int] | None = None) -> None:
        """Start with every module active.

        Args:
            n_modules: number of PEFT modules (N).
            config: the KR settings; ``budget`` must not exceed ``n_modules``.
            module_params: trainable parameters per module, needed for ``sqrt-params``
                normalisation (equal sizes are assumed when omitted).

        Raises:
            ValueError: n_modules < 1, budget > n_modules, or module_params of the wrong shape.
        """
        if not isinstance(n_modules, int) or n_modules < 1:
            raise ValueError(f"n_modules must be an integer >= 1, got {n_modules!r}")
        if config.arm != "all" and config.budget > n_modules:
            raise ValueError(f"budget {config.budget} exceeds the {n_modules} modules")
        params = np.ones(n_modules) if module_params is None else np.asarray(module_params, dtype=float)
        if params.shape != (n_modules,) or not np.all(params > 0):
            raise ValueError(f"module_params must hold {n_modules} positive sizes")
        self.n_modules = n_modules
        self.config = config
        self._size_scale = np.sqrt(params)
        self._rng = np.random.default_rng(config.seed)
        self._active = np.ones(n_modules, dtype=bool)
        self._prev_norms: np.ndarray | None = None
        self._last_score = np.full(n_modules, np.nan)
        self._last_observed = np.full(n_modules, np.nan)  # raw change in the module's last active window
        self._probe_ref = np.full(n_modules, np.nan)  # first probe after the module's kill
        self._killed_rounds = np.zeros(n_modules, dtype=int)
        self._rounds = 0
        self._frozen = False  # static arms after their one cut; kill-only once it reached B

    @property
    def active(self) -> np.ndarray:
        """Bool mask of the modules that train now (a copy)."""
        return self._active.copy()

    @property
    def rounds(self) -> int:
        """How many rounds have run."""
        return self._rounds

    def set_baseline(self, norms: np.ndarray | list[float]) -> None:
        """Record the level before training (‖W(0)‖ for ``norm-diff``, ‖ΔW(0)‖ = 0 for
        ``update-norm-diff``), so the first round has evidence."""
        self._prev_norms = self._vector(norms, "norms")

    def round_work(self) -> KRRoundWork:
        """KR's own work that the next :meth:`round` needs (norms, probe batch)."""
        return round_work_at(self.config, self._active, self._rounds, self._frozen)

    def round(self, norms: np.ndarray | list[float], probe_change: np.ndarray | list[float] | None = None) -> KRDecision:
        """Run one KR round at the end of a window and update the active set.

        Args:
            norms: one value per module. With score ``norm-diff`` the weight norms ‖W(t)‖ (the
                first call only sets the baseline); with ``update-norm-diff`` the update norms
                ‖ΔW(t)‖ (likewise); with ``diff-norm`` the changes ‖W(t) − W(t−w)‖.
            probe_change: per module, the would-be change over a window estimated from a probe
                batch (e.g. window_steps · lr · ‖grad‖); NaN or None where not probed.

        Returns:
            The decision; ``active`` has exactly ``budget`` entries after warm-up for every arm
            except ``all`` (every module) and ``kill-only`` while it is still shrinking
            (``head-only``: none).
        """
        norms = self._vector(norms, "norms")
        probe = None if probe_change is None else self._vector(probe_change, "probe_change", allow_nan=True)
        uses_scores = self.config.arm in SCORED_ARMS
        no_baseline = uses_scores and self.config.score in LEVEL_SCORES and self._prev_norms is None
        scores = self._scores(norms, probe)
        before = self._active.copy()
        index = self._rounds
        self._rounds += 1
        # Without a baseline (first norm-diff round, no set_baseline) there is no evidence yet,
        # so the round only records norms and counts as one more warm-up round.
        warmup = index < self.config.warmup_rounds or self.config.arm == "all" or no_baseline
        if not warmup:
            self._active = self._select(scores, before)
        self._killed_rounds = np.where(self._active, 0, self._killed_rounds + 1)
        killed = tuple(int(i) for i in np.flatnonzero(before & ~self._active))
        revived = tuple(int(i) for i in np.flatnonzero(~before & self._active))
        return KRDecision(index, self._active.copy(), killed, revived, scores, warmup)

    # -- scoring ---------------------------------------------------------------------------

    def _vector(self, values: object, name: str, allow_nan: bool = False) -> np.ndarray:
        array = np.asarray(values, dtype=float)
        if array.shape != (self.n_modules,):
            raise ValueError(f"{name} must hold {self.n_modules} values, got shape {array.shape}")
        bad = ~np.isfinite(array)
        if allow_nan:
            bad &= ~np.isnan(array)
        if bad.any() or (array[np.isfinite(array)] < 0).any():
            raise ValueError(f"{name} must be finite and >= 0")
        return array

    def _scores(self, norms: np.ndarray, probe: np.ndarray | None) -> np.ndarray:
        """Effective score per module: observed change if it trained, else probe estimate."""
        cfg = self.config
        if cfg.score in LEVEL_SCORES:
            if self._prev_norms is None:
                self._prev_norms = norms.copy()
                return np.full(self.n_modules, np.nan)  # no baseline yet: no evidence
            observed = np.abs(norms - self._prev_norms)
            reference = self._prev_norms
            self._prev_norms = norms.copy()
        elif cfg.score == "diff-norm":
            observed, reference = norms, None
        else:  # probe-grad: one yardstick for all modules, no calibration needed
            raw = np.full(self.n_modules, np.nan) if probe is None else probe.copy()
            return self._finish(self._normalise(raw, None))
        trained = self._active  # the mask that was active during the window just ended
        self._last_observed = np.where(trained, observed, self._last_observed)
        self._probe_ref = np.where(trained, np.nan, self._probe_ref)
        raw = np.where(trained, observed, np.nan)
        if probe is not None and cfg.probe_calibration == "global":
            raw = np.where(trained, raw, probe * self._probe_factor(observed, probe, trained))
        elif probe is not None:
            fresh = ~trained & np.isnan(self._probe_ref) & ~np.isnan(probe)
            self._probe_ref = np.where(fresh, probe, self._probe_ref)
            ratio = probe / np.maximum(self._probe_ref, 1e-300)
            raw = np.where(trained, raw, self._last_observed * ratio)
        return self._finish(self._normalise(raw, reference))

    def _finish(self, raw: np.ndarray) -> np.ndarray:
        """Smooth across rounds, keep old scores where no evidence came, add revival pressure."""
        cfg = self.config
        previous = self._last_score
        have_prev = ~np.isnan(previous)
        smoothed = np.where(have_prev & ~np.isnan(raw), cfg.ema * previous + (1 - cfg.ema) * raw, raw)
        smoothed = np.where(np.isnan(smoothed), previous, smoothed)
        self._last_score = smoothed
        pressure = 1.0 + cfg.revival_pressure * self._killed_rounds
        return smoothed * np.where(self._active, 1.0, pressure)

    def _probe_factor(self, observed: np.ndarray, probe: np.ndarray, trained: np.ndarray) -> float:
        """Scale probe estimates to observed changes, using modules that have both."""
        both = trained & ~np.isnan(probe) & (probe > 0)
        if both.any():
            return float(np.median(observed[both] / probe[both]))
        return self.config.probe_scale

    def _normalise(self, raw: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
        kind = self.config.normalisation
        if kind == "sqrt-params":
            return raw / self._size_scale
        if kind == "relative" and reference is not None:
            return raw / np.maximum(reference, 1e-12)
        return raw

    # -- selection -------------------------------------------------------------------------

    def _select(self, scores: np.ndarray, active: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.arm == "random":
            chosen = self._rng.choice(self.n_modules, size=cfg.budget, replace=False)
            return _mask(self.n_modules, chosen)
        if self._frozen:
            return active.copy()
        if cfg.arm in ("static-random", "head-only"):
            self._frozen = True  # one draw with the seed, at the first decision, kept for the run
            chosen = self._rng.choice(self.n_modules, size=cfg.budget, replace=False)
            return _mask(self.n_modules, chosen)
        if cfg.arm == "static-topB":
            self._frozen = True
            return _top(scores, active, cfg.budget, margin=0.0)
        if cfg.arm == "kill-only":
            n_active = int(active.sum())
            # Always kill at least one per round, so the shrink ends after finitely many rounds.
            keep = max(cfg.budget, min(n_active - 1, math.ceil(cfg.kill_keep_fraction * n_active)))
            chosen = _top(np.where(active, scores, -np.inf), active, keep, margin=0.0)
            self._frozen = keep == cfg.budget
            return chosen & active
        return _top(scores, active, cfg.budget, margin=cfg.hysteresis)


def _mask(n: int, indices: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[indices] = True
    return mask


def _top(scores: np.ndarray, incumbent: np.ndarray, budget: int, margin: float) -> np.ndarray:
    """Top ``budget`` by score; incumbents get a (1 + margin) bonus and win ties.

    Modules without evidence (NaN) rank last. Order: effective score, then incumbency, then
    the lower index, so the result is deterministic and ties never flip a module.
    """
    effective = np.where(np.isnan(scores), -np.inf, scores) * np.where(incumbent, 1.0 + margin, 1.0)
    # np.lexsort sorts by the last key first: score descending, incumbents first, low index first.
    order = np.lexsort((np.arange(scores.size), ~incumbent, -effective))
    return _mask(scores.size, order[:budget])
