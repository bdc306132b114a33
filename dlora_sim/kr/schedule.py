"""The KR schedule of a whole job: when rounds run, which probe, what they kill and revive.

This is the one statement of a job's Kill-and-Revive timetable. The cost model sums it, the
simulator replays it round by round, the dashboards draw it; none of them has its own copy.

It follows the controller's rules (:mod:`dlora_sim.kr.controller`), with the norm baseline
recorded before training as the trainer does (``KRController.set_baseline``):

- a round runs after every ``window_steps`` steps, never after the last step;
- rounds ``0 .. warmup_rounds - 1`` decide nothing, so every module trains for
  ``(warmup_rounds + 1) * window_steps`` steps; round ``warmup_rounds`` makes the first decision;
- the first decision cuts to B (``kr``, ``random``, ``static-topB``, ``static-random``) or starts
  shrinking by ``kill_keep_fraction`` per round (``kill-only``); the static arms keep that set;
- a round probes exactly when :func:`~dlora_sim.kr.controller.round_work_at` says so (arm
  ``kr``: after warm-up, when some module is frozen), and computes the norms it says;
- later rounds swap modules: ``random`` re-draws its set, ``B (1 - B/N)`` swaps a round on
  average; ``kr`` swaps ``churn * B`` modules over the whole job (a profile's measured churn,
  :func:`profile_churn`), spread evenly over its later rounds. Swaps are whole modules: the
  fractional remainder carries to the next round (error diffusion), so the total is the
  stated one whatever the job's round count, except where a round would swap more than
  ``min(B, N - B)`` (the cap) or the job has no later round.

Random-B's *choice* of modules does not change any cost, only how many change does, so the
schedule uses the expected count rather than one draw: every device and the cost model see
the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlora_sim.kr.controller import STATIC_ARMS, KRConfig, round_work_at

__all__ = ["KRRound", "KRSchedule", "ScheduleCounts", "job_schedule", "profile_churn"]


@dataclass(frozen=True)
class KRRound:
    """One KR round: it runs after step ``after_step`` (0-based) and sets the active count from then on.

    Attributes:
        index: 0 for the job's first round.
        n_active_before: modules that trained during the window that just ended.
        n_active: modules that train from the next step on.
        kills, revives: modules frozen / unfrozen by this round.
        probe: whether the round runs a probe batch (forward + backward, no update).
        norm_modules: modules whose weight norms the round computes.
        probe_modules: modules whose probe-gradient norms the round computes.
    """

    after_step: int
    index: int
    n_active_before: int
    n_active: int
    kills: int
    revives: int
    probe: bool
    norm_modules: int
    probe_modules: int

    @property
    def changes(self) -> bool:
        """True when the round changes the active set (the edge then tells the cloud)."""
        return bool(self.kills or self.revives)


@dataclass(frozen=True)
class ScheduleCounts:
    """Sums of a schedule, the numbers the cost model prices.

    ``active_steps`` is the sum over training steps of the active module count. A step's bytes
    and FLOPs are affine in that count, except that a pass over every module may share inputs,
    so the steps with every module and those at B are counted apart too.
    """

    rounds: int
    probes: int
    kills: int
    revives: int
    norm_evals: int
    commands: int
    active_steps: int
    steps_all_active: int
    steps_at_budget: int


@dataclass(frozen=True)
class KRSchedule:
    """The rounds of one job, with the lookups the simulator needs."""

    n_modules: int
    budget: int
    total_steps: int
    rounds: tuple[KRRound, ...]

    def n_active(self, step: int) -> int:
        """Active modules during ``step`` (0-based): set by the last round before it."""
        active = self.n_modules
        for kr_round in self.rounds:
            if kr_round.after_step >= step:
                break
            active = kr_round.n_active
        return active

    def steps_by_active(self) -> dict[int, int]:
        """Training steps per active module count."""
        out: Counter[int] = Counter()
        start, active = 0, self.n_modules
        for kr_round in self.rounds:
            out[active] += kr_round.after_step + 1 - start
            start, active = kr_round.after_step + 1, kr_round.n_active
        out[active] += self.total_steps - start
        return {n: c for n, c in sorted(out.items()) if c}

    def counts(self) -> ScheduleCounts:
        """The schedule's sums (see :class:`ScheduleCounts`)."""
        by_active = self.steps_by_active()
        return ScheduleCounts(
            rounds=len(self.rounds),
            probes=sum(1 for r in self.rounds if r.probe),
            kills=sum(r.kills for r in self.rounds),
            revives=sum(r.revives for r in self.rounds),
            norm_evals=sum(r.norm_modules + r.probe_modules for r in self.rounds),
            commands=sum(1 for r in self.rounds if r.changes),
            active_steps=sum(n * c for n, c in by_active.items()),
            steps_all_active=by_active.get(self.n_modules, 0),
            steps_at_budget=by_active.get(self.budget, 0) if self.budget < self.n_modules else 0,
        )


def _mask(n_modules: int, n_active: int) -> np.ndarray:
    mask = np.zeros(n_modules, dtype=bool)
    mask[:n_active] = True
    return mask


def job_schedule(config: KRConfig, n_modules: int, total_steps: int, churn: float = 0.0) -> KRSchedule:
    """The KR rounds of a job of ``total_steps`` steps over ``n_modules`` modules.

    Args:
        config: the KR rules (arm, budget, window, warm-up, probe mode, kill-only fraction).
        n_modules: N, the job's PEFT modules.
        total_steps: the job's training steps.
        churn: arm ``kr`` only: swaps over the whole job after the first cut, in units of the
            budget (0.5 = half of B swapped in all); take it from :func:`profile_churn`.

    Returns:
        The schedule (no rounds for arm ``all``: nothing is ever decided, so nothing is priced).

    Raises:
        ValueError: budget above ``n_modules``, or a negative or non-finite churn.
    """
    if config.budget > n_modules:
        raise ValueError(f"budget {config.budget} exceeds the {n_modules} modules")
    if not (math.isfinite(churn) and churn >= 0):
        raise ValueError(f"churn must be a finite number >= 0, got {churn!r}")
    budget, window = config.budget, config.window_steps
    after_steps = range(window - 1, total_steps - 1, window)
    if config.arm == "all":
        return KRSchedule(n_modules, budget, total_steps, ())
    first = config.warmup_rounds
    later_rounds = max(0, len(after_steps) - first - 1)
    cap = min(budget, n_modules - budget)
    if config.arm == "random":
        per_round = budget * (1.0 - budget / n_modules)
    elif config.arm == "kr" and later_rounds:
        per_round = churn * budget / later_rounds
    else:
        per_round = 0.0
    rounds: list[KRRound] = []
    active, frozen, carry = n_modules, False, 0.0
    for index, after_step in enumerate(after_steps):
        work = round_work_at(config, _mask(n_modules, active), index, frozen)
        kills = revives = 0
        target = active
        if index >= first and not frozen:
            if config.arm == "kill-only":
                target = max(budget, min(active - 1, math.ceil(config.kill_keep_fraction * active)))
                frozen = target == budget
            elif index == first:
                target = budget
                frozen = config.arm in STATIC_ARMS
            else:
                carry += per_round
                revives = min(cap, int(math.floor(carry + 1e-9)))
                carry -= revives
                kills = revives
        kills += max(0, active - target)
        rounds.append(KRRound(after_step, index, active, target, kills, revives, bool(work.probe_batches),
                              work.norm_modules, work.probe_modules))
        active = target
    return KRSchedule(n_modules, budget, total_steps, tuple(rounds))


def profile_churn(active_rows: Sequence[Sequence[int]], budget: int) -> float:
    """A recorded run's churn: modules swapped after its first cut to ``budget``, over ``budget``.

    Counts, for every round that kept exactly ``budget`` modules after one that also had
    ``budget``, the modules that left the set. A run that never reached ``budget`` has 0.
    """
    swapped = 0
    for before, after in zip(active_rows, active_rows[1:]):
        if len(before) == budget and len(after) == budget:
            swapped += len(set(before) - set(after))
    return swapped / budget if budget else 0.0
