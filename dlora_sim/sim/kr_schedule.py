"""How many modules KR kills and revives at each KR round of the simulated job.

The simulator does not invent KR behaviour: it replays the active-set history that a real
training run recorded in its profile (``traces.active``), scaled to the job's module table.
A profile trained MiniLM with B = 3 of 24 modules; the simulated job may be LLaMA-7B with B = 16
of 128. The scaling keeps two things of the recorded history:

- **the active fraction**: after the profile's cut to B_p, the job runs exactly B_j modules
  (B_j / M_j is the job's own fraction; rows in between, as in ``kill-only``, scale as
  ``round(size / M_p * M_j)`` clipped to [B_j, M_j]); warm-up rows (all M_p active) stay all M_j;
- **the churn fraction**: a steady round of the profile that swapped k_p of its B_p active
  modules swaps ``k_p / B_p * B_j`` of the job's, rounded with the remainder carried to the
  next round so the total churn is preserved (error diffusion, deterministic).

A profile that never cut (arm ``all``) gives no churn: the job cuts to B_j at its first round
and keeps that set. Rounds are matched by training progress: job round j at step s_j of S_j total steps replays the
profile round whose step fraction ``round_steps[r] / steps_p`` is the latest not after
``s_j / S_j`` (the first profile round before that).

``dlora-random`` does not use the profile's choices: each device's own :class:`dlora_sim.kr.KRController`
with arm ``random`` (seeded from the run seed and the device id) draws a fresh B_j every round
after the same warm-up, which is the control the paper's claim has to beat.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from dlora_sim.kr import KRConfig, KRController

__all__ = ["KRRound", "profile_schedule", "random_schedule", "warmup_rounds_of"]


@dataclass(frozen=True)
class KRRound:
    """One KR round: it runs after ``after_step`` (0-based) and sets the active count from then on."""

    after_step: int
    n_active: int
    kills: int
    revives: int


def _round_steps(total_steps: int, interval_steps: int) -> list[int]:
    """0-based steps after which a KR round runs (never after the last step)."""
    return [s - 1 for s in range(interval_steps, total_steps, interval_steps)]


def profile_schedule(
    active_rows: list[list[int]],
    profile_round_steps: list[int],
    profile_steps: int,
    profile_modules: int,
    profile_budget: int,
    n_modules: int,
    budget: int,
    total_steps: int,
    interval_steps: int,
) -> list[KRRound]:
    """The job's KR rounds, replaying the profile's recorded active sets (see module docstring).

    Raises:
        ValueError: inconsistent sizes (budget above the module count, empty history).
    """
    if not 1 <= budget <= n_modules or not 1 <= profile_budget <= profile_modules:
        raise ValueError(f"budget must be in 1..modules: job {budget}/{n_modules}, profile {profile_budget}/{profile_modules}")
    rounds = _round_steps(total_steps, interval_steps)
    if not active_rows:
        return [KRRound(s, budget, n_modules - budget if i == 0 else 0, 0) for i, s in enumerate(rounds)]
    fractions = [s / profile_steps for s in profile_round_steps]
    ever_cut = any(len(row) < profile_modules for row in active_rows)
    prev_job = n_modules
    carry = 0.0
    out: list[KRRound] = []
    for after_step in rounds:
        progress = (after_step + 1) / total_steps
        r = max(0, bisect.bisect_right(fractions, progress + 1e-12) - 1)
        row = active_rows[r]
        if not ever_cut:
            # A profile that never cut (arm 'all') says nothing about churn: cut at the first
            # round, then keep the same B (documented limit).
            target = budget
        elif len(row) >= profile_modules:
            target = n_modules
        elif len(row) == profile_budget:
            target = budget
        else:
            target = int(min(n_modules, max(budget, round(len(row) / profile_modules * n_modules))))
        kills = max(0, prev_job - target)
        revives = max(0, target - prev_job)
        if ever_cut and len(row) == profile_budget and prev_job == target and r > 0:
            before = set(active_rows[r - 1])
            if len(before) == profile_budget:
                swapped = len(before - set(row))
                carry += swapped / profile_budget * budget
                churn = int(np.floor(carry + 1e-9))
                carry -= churn
                kills += churn
                revives += churn
        out.append(KRRound(after_step, target, kills, revives))
        prev_job = target
    return out


def random_schedule(
    n_modules: int, budget: int, warmup_rounds: int, total_steps: int, interval_steps: int, seed: int
) -> list[KRRound]:
    """The ``dlora-random`` control: a fresh random B every round after ``warmup_rounds``."""
    rounds = _round_steps(total_steps, interval_steps)
    config = KRConfig(budget=budget, arm="random", window_steps=interval_steps, warmup_rounds=warmup_rounds, seed=seed)
    controller = KRController(n_modules, config)
    norms = np.ones(n_modules)
    out: list[KRRound] = []
    for after_step in rounds:
        decision = controller.round(norms)
        out.append(KRRound(after_step, int(decision.active.sum()), len(decision.killed), len(decision.revived)))
    return out


def warmup_rounds_of(schedule: list[KRRound], n_modules: int) -> int:
    """Rounds at the start of ``schedule`` that keep every module active."""
    count = 0
    for kr_round in schedule:
        if kr_round.n_active < n_modules:
            break
        count += 1
    return count
