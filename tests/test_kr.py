"""The Kill-and-Revive controller: budget, revival, kill-only, determinism, warm-up, hysteresis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlora_sim.kr import ARMS, SCORES, KRConfig, KRController, kr_round_work


def _budget(arm: str, budget: int) -> int:
    """The budget an arm accepts: head-only trains no module after warm-up (B = 0)."""
    return 0 if arm == "head-only" else budget


def _drive(ctrl: KRController, rounds: int, rng: np.random.Generator, probe: bool = True) -> list:
    """Feed random norm growth (only active modules move) and random probes; return decisions."""
    norms = np.ones(ctrl.n_modules)
    decisions = []
    for _ in range(rounds):
        norms = norms + np.where(ctrl.active, rng.random(ctrl.n_modules), 0.0)
        work = ctrl.round_work()
        change = rng.random(ctrl.n_modules) if (probe and work.probe_batches) else None
        decisions.append(ctrl.round(norms, probe_change=change))
    return decisions


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    data=st.data(),
    arm=st.sampled_from([a for a in ARMS if a != "all"]),
    warmup=st.integers(0, 3),
    seed=st.integers(0, 2**16),
    hysteresis=st.floats(0, 2),
    pressure=st.floats(0, 2),
    score=st.sampled_from(SCORES),
)
def test_exactly_budget_active_after_warmup(n, data, arm, warmup, seed, hysteresis, pressure, score):
    """Every non-`all` arm holds exactly B active modules after warm-up (kill-only once shrunk)."""
    budget = _budget(arm, data.draw(st.integers(1, n)))
    config = KRConfig(budget=budget, arm=arm, warmup_rounds=warmup, seed=seed, hysteresis=hysteresis,
                      revival_pressure=pressure, kill_keep_fraction=0.0, score=score)
    ctrl = KRController(n, config)
    ctrl.set_baseline(np.ones(n))
    for decision in _drive(ctrl, warmup + 6, np.random.default_rng(seed)):
        expected = n if decision.round_index < warmup else budget
        assert decision.active.sum() == expected
        assert len(decision.killed) == len(decision.revived) or decision.round_index == warmup


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 2**16), keep=st.floats(0.05, 0.95))
def test_kill_only_shrinks_to_budget_and_never_revives(n, seed, keep):
    """kill-only only ever removes modules, keeps at least B, and reaches exactly B."""
    budget = max(1, n // 5)
    ctrl = KRController(n, KRConfig(budget=budget, arm="kill-only", warmup_rounds=1, kill_keep_fraction=keep))
    decisions = _drive(ctrl, 40, np.random.default_rng(seed))
    sizes = [int(d.active.sum()) for d in decisions]
    assert all(d.revived == () for d in decisions)
    assert sizes == sorted(sizes, reverse=True) and min(sizes) >= budget
    assert sizes[-1] == budget


def test_all_arm_keeps_everything():
    """Arm `all` never kills, whatever the scores say."""
    ctrl = KRController(8, KRConfig(budget=2, arm="all"))
    for decision in _drive(ctrl, 5, np.random.default_rng(0)):
        assert decision.active.all() and decision.killed == ()


def test_killed_module_whose_probe_rises_is_revived():
    """A frozen module whose probe estimate overtakes the active ones is brought back."""
    n = 6
    ctrl = KRController(n, KRConfig(budget=2, arm="kr", warmup_rounds=0, hysteresis=0.1, revival_pressure=0.0,
                                    probe="all", probe_calibration="global"))
    ctrl.set_baseline(np.zeros(n))
    first = ctrl.round(np.array([5.0, 4.0, 0.1, 0.1, 0.1, 0.1]))
    assert first.active_indices == [0, 1]
    # Module 5 is frozen; the probe (covering all modules) says it would now move the most.
    probe = np.array([1.0, 1.0, 0.1, 0.1, 0.1, 3.0])
    second = ctrl.round(np.array([6.0, 5.0, 0.1, 0.1, 0.1, 0.1]), probe_change=probe)
    assert second.revived == (5,) and second.killed == (1,)
    assert second.active_indices == [0, 5]


def test_probe_is_calibrated_against_observed_changes():
    """Probe estimates are rescaled by observed/probe on active modules before they compete."""
    ctrl = KRController(4, KRConfig(budget=1, arm="kr", warmup_rounds=0, hysteresis=0.0, revival_pressure=0.0,
                                    probe="all", probe_calibration="global"))
    ctrl.set_baseline(np.zeros(4))
    ctrl.round(np.array([1.0, 0.0, 0.0, 0.0]))
    # Active module 0 moved 1.0 while its probe said 10 → factor 0.1; module 3's probe 9 → 0.9 < 1.0.
    decision = ctrl.round(np.array([2.0, 0.0, 0.0, 0.0]), probe_change=np.array([10.0, 0.0, 0.0, 9.0]))
    assert decision.active_indices == [0]
    assert decision.scores[3] == pytest.approx(0.9)


def test_hysteresis_keeps_incumbent_on_near_tie():
    """A challenger within the hysteresis margin does not replace the incumbent; beyond it, it does."""
    def second_round(challenger: float) -> tuple[int, ...]:
        ctrl = KRController(2, KRConfig(budget=1, arm="kr", warmup_rounds=0, hysteresis=0.1, revival_pressure=0.0,
                                         normalisation="none", probe_calibration="global"))
        ctrl.set_baseline(np.zeros(2))
        ctrl.round(np.array([1.0, 0.0]))
        return ctrl.round(np.array([2.0, 0.0]), probe_change=np.array([np.nan, challenger])).revived

    assert second_round(1.0) == ()      # exact tie
    assert second_round(1.09) == ()     # inside the 10 % margin
    assert second_round(1.11) == (1,)   # beyond it


def test_revival_pressure_retries_long_killed_modules_without_probes():
    """With no probe at all, pressure alone eventually revives a module that has sat out."""
    ctrl = KRController(2, KRConfig(budget=1, arm="kr", warmup_rounds=1, hysteresis=0.0, revival_pressure=0.5,
                                    probe="none", normalisation="none"))
    ctrl.set_baseline(np.zeros(2))
    ctrl.round(np.array([1.0, 0.8]))                 # warm-up: both move
    norms = np.array([1.0, 0.8])
    revived_at = None
    for r in range(1, 6):
        norms = norms + np.where(ctrl.active, [1.0, 0.8], 0.0)
        decision = ctrl.round(norms)
        if decision.revived:
            revived_at = r
            break
    assert revived_at is not None and decision.revived == (1,)


def test_same_seed_same_decisions_different_seed_differs():
    """Two controllers with one seed and one input stream decide identically; random arm depends on seed."""
    def history(arm: str, seed: int) -> list[list[int]]:
        ctrl = KRController(24, KRConfig(budget=_budget(arm, 3), arm=arm, seed=seed))
        return [d.active_indices for d in _drive(ctrl, 12, np.random.default_rng(42))]

    for arm in ARMS:
        assert history(arm, 5) == history(arm, 5)
    assert history("random", 5) != history("random", 6)
    assert history("static-random", 5) != history("static-random", 6)


@pytest.mark.parametrize("arm", [a for a in ARMS if a != "all"])
def test_warmup_rounds_keep_all_active(arm):
    """During the configured warm-up rounds every module stays active and nothing is decided."""
    ctrl = KRController(10, KRConfig(budget=_budget(arm, 2), arm=arm, warmup_rounds=3))
    ctrl.set_baseline(np.ones(10))
    decisions = _drive(ctrl, 5, np.random.default_rng(1))
    assert [d.warmup for d in decisions] == [True, True, True, False, False]
    # kill-only halves (kill_keep_fraction=0.5) towards B; head-only cuts to nothing
    first_cut = {"kill-only": 5, "head-only": 0}.get(arm, 2)
    assert all(d.active.all() for d in decisions[:3]) and decisions[3].active.sum() == first_cut


def test_first_norm_diff_round_without_baseline_only_records():
    """Without set_baseline, the first norm-diff round has no evidence and keeps everything active."""
    ctrl = KRController(5, KRConfig(budget=1, arm="kr", warmup_rounds=0))
    decision = ctrl.round(np.arange(5.0))
    assert decision.warmup and decision.active.all()
    random_arm = KRController(5, KRConfig(budget=1, arm="random", warmup_rounds=0))
    assert random_arm.round(np.arange(5.0)).active.sum() == 1  # random needs no evidence


def test_static_topb_freezes_after_its_cut():
    """static-topB picks the top B once and never changes afterwards."""
    ctrl = KRController(12, KRConfig(budget=4, arm="static-topB"))
    decisions = _drive(ctrl, 8, np.random.default_rng(3))
    cut = [d.active_indices for d in decisions[1:]]
    assert all(row == cut[0] for row in cut) and len(cut[0]) == 4


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), data=st.data(), warmup=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_static_random_draws_once_with_the_seed_and_keeps_exactly_b(n, data, warmup, seed):
    """static-random: exactly B after warm-up, the same B every round, drawn from the seed alone
    (whatever the norms say), so two runs with one seed but different dynamics train one set."""
    budget = data.draw(st.integers(1, n))
    histories = []
    for dynamics in (1, 2):
        ctrl = KRController(n, KRConfig(budget=budget, arm="static-random", warmup_rounds=warmup, seed=seed))
        decisions = _drive(ctrl, warmup + 5, np.random.default_rng(dynamics))
        after = [d.active_indices for d in decisions[warmup:]]
        assert all(len(row) == budget for row in after) and all(row == after[0] for row in after)
        assert all(d.active.all() for d in decisions[:warmup])
        histories.append(after[0])
    assert histories[0] == histories[1]


def test_static_random_differs_from_random_only_in_how_often_it_redraws():
    """Same seed: static-random's set is random's first draw, which random then re-draws."""
    def rows(arm: str) -> list[list[int]]:
        ctrl = KRController(24, KRConfig(budget=3, arm=arm, seed=11, warmup_rounds=1))
        return [d.active_indices for d in _drive(ctrl, 6, np.random.default_rng(0))]

    static, moving = rows("static-random"), rows("random")
    assert static[1] == moving[1] and any(row != moving[1] for row in moving[2:])


def test_head_only_trains_no_module_after_warmup():
    """head-only: budget 0, every module during warm-up, none afterwards, no KR work."""
    ctrl = KRController(24, KRConfig(budget=0, arm="head-only", warmup_rounds=2))
    decisions = _drive(ctrl, 6, np.random.default_rng(0))
    assert [int(d.active.sum()) for d in decisions] == [24, 24, 0, 0, 0, 0]
    assert decisions[2].killed == tuple(range(24)) and all(d.revived == () for d in decisions)
    work = ctrl.round_work()
    assert (work.norm_modules, work.probe_batches) == (0, 0)


@pytest.mark.parametrize(("arm", "budget"), [("head-only", 3), ("head-only", 1), ("kr", 0), ("random", 0),
                                             ("static-random", 0)])
def test_budget_zero_belongs_to_head_only_alone(arm, budget):
    """B = 0 means head-only, and head-only means B = 0; anything else is refused by name."""
    with pytest.raises(ValueError, match="budget"):
        KRConfig(budget=budget, arm=arm)


def test_update_norm_diff_ranks_by_change_of_the_update_norm():
    """update-norm-diff takes levels (‖ΔW‖) like norm-diff and ranks by their change per window."""
    ctrl = KRController(4, KRConfig(budget=2, arm="kr", warmup_rounds=0, score="update-norm-diff",
                                    normalisation="none"))
    ctrl.set_baseline(np.zeros(4))  # ΔW(0) = 0: B starts at zero
    first = ctrl.round(np.array([0.1, 0.9, 0.5, 0.2]))
    assert first.active_indices == [1, 2] and not first.warmup
    # Module 1 stopped growing, module 0 grew fastest: the change, not the level, decides.
    ctrl2 = KRController(4, KRConfig(budget=1, arm="static-topB", warmup_rounds=1, score="update-norm-diff",
                                     normalisation="none"))
    ctrl2.set_baseline(np.zeros(4))
    ctrl2.round(np.array([0.1, 0.9, 0.5, 0.2]))
    assert ctrl2.round(np.array([0.6, 0.95, 0.6, 0.3])).active_indices == [0]


def test_round_work_of_the_unscored_arms_is_nothing():
    """static-random and head-only need neither norms nor probes, in warm-up or after."""
    for arm in ("static-random", "head-only"):
        config = KRConfig(budget=_budget(arm, 2), arm=arm)
        for active in (np.ones(6, dtype=bool), np.array([True, True, False, False, False, False])):
            work = kr_round_work(config, active)
            assert (work.norm_modules, work.probe_modules, work.probe_batches, work.snapshot_modules) == (0, 0, 0, 0)


def test_sqrt_params_normalisation_favours_change_per_parameter():
    """With sqrt-params, a small module that moved less in total but more per sqrt(param) wins."""
    config = KRConfig(budget=1, arm="kr", warmup_rounds=0, normalisation="sqrt-params")
    ctrl = KRController(2, config, module_params=[10_000, 100])
    ctrl.set_baseline(np.zeros(2))
    decision = ctrl.round(np.array([5.0, 1.0]))     # 5/100 = 0.05 < 1/10 = 0.1
    assert decision.active_indices == [1]


def test_round_work_counts_kr_costs():
    """Only kr probes, only once something is frozen; norms are needed for the active modules."""
    active = np.array([True, True, False, False])
    work = kr_round_work(KRConfig(budget=2, arm="kr", probe="all"), active)
    assert (work.norm_modules, work.probe_modules, work.probe_batches) == (2, 4, 1)
    killed_only = kr_round_work(KRConfig(budget=2, arm="kr", probe="killed"), active)
    assert killed_only.probe_modules == 2 and killed_only.probe_mask.tolist() == [False, False, True, True]
    assert kr_round_work(KRConfig(budget=2, arm="random"), active).probe_batches == 0
    assert kr_round_work(KRConfig(budget=2, arm="kr"), np.ones(4, dtype=bool)).probe_batches == 0
    assert kr_round_work(KRConfig(budget=2, arm="kr", score="diff-norm"), active).snapshot_modules == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"budget": 0}, "budget"),
        ({"budget": 2, "arm": "greedy"}, "arm"),
        ({"budget": 2, "window_steps": 0}, "window_steps"),
        ({"budget": 2, "hysteresis": -0.1}, "hysteresis"),
        ({"budget": 2, "hysteresis": float("nan")}, "hysteresis"),
        ({"budget": 2, "ema": 1.0}, "ema"),
        ({"budget": 2, "score": "l1"}, "score"),
        ({"budget": 2, "normalisation": "relative", "score": "diff-norm"}, "normalisation"),
        ({"budget": 2, "normalisation": "relative", "score": "update-norm-diff"}, "normalisation"),
        ({"budget": 2, "arm": "head-only"}, "budget"),
        ({"budget": True, "arm": "kr"}, "budget"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(kwargs, field):
    """Impossible settings raise ValueError whose message starts with the field name."""
    with pytest.raises(ValueError, match=f"^{field}"):
        KRConfig(**kwargs)


def test_controller_rejects_budget_above_modules_and_bad_inputs():
    """Budget above N, wrong-length norms and negative values are refused."""
    with pytest.raises(ValueError, match="budget 5 exceeds the 4 modules"):
        KRController(4, KRConfig(budget=5))
    ctrl = KRController(4, KRConfig(budget=2))
    with pytest.raises(ValueError, match="norms must hold 4"):
        ctrl.round([1.0, 2.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        ctrl.round([1.0, -2.0, 0.0, 0.0])


def test_probe_grad_scores_every_module_by_the_probe():
    """With score probe-grad the top-B by probe gradient train; a module whose gradient fades is swapped."""
    config = KRConfig(budget=2, arm="kr", score="probe-grad", warmup_rounds=1, hysteresis=0.1, revival_pressure=0.0)
    ctrl = KRController(4, config)
    assert ctrl.round_work().probe_batches == 0                 # warm-up needs no probe
    ctrl.round(np.ones(4))
    work = ctrl.round_work()
    assert work.probe_batches == 1 and work.probe_mask.all()   # every module, active ones included
    first = ctrl.round(np.ones(4), probe_change=np.array([0.9, 0.1, 0.8, 0.2]))
    assert first.active_indices == [0, 2]
    # Module 0 absorbed its signal; module 3's gradient is now clearly larger.
    second = ctrl.round(np.ones(4), probe_change=np.array([0.1, 0.1, 0.8, 0.5]))
    assert second.killed == (0,) and second.revived == (3,)


def test_probe_grad_requires_probing_all_modules():
    """probe-grad with a probe that skips modules is refused, naming the probe field."""
    with pytest.raises(ValueError, match="^probe must not be 'none'"):
        KRConfig(budget=1, score="probe-grad", probe="none")


def test_per_module_calibration_revives_when_its_own_gradient_grows():
    """Per-module calibration: a frozen module returns when its probe grows against its own first probe."""
    config = KRConfig(budget=1, arm="kr", warmup_rounds=1, hysteresis=0.25, revival_pressure=0.0,
                      normalisation="none", probe_calibration="per-module")
    ctrl = KRController(2, config)
    ctrl.set_baseline(np.zeros(2))
    ctrl.round(np.array([1.0, 0.9]))                         # warm-up: module 1 changed 0.9
    assert ctrl.round(np.array([2.0, 1.8])).active_indices == [0]  # cut: 1.0 beats 0.9, module 1 frozen
    # Module 1's probe is on a very different scale from module 0's change: only its ratio matters.
    steady = ctrl.round(np.array([3.0, 1.8]), probe_change=np.array([np.nan, 50.0]))
    assert steady.active_indices == [0] and steady.scores[1] == pytest.approx(0.9)
    # Its gradient grows 1.5x against its own reference: 0.9 * 1.5 = 1.35 > 1.0 * 1.25.
    grown = ctrl.round(np.array([4.0, 1.8]), probe_change=np.array([np.nan, 75.0]))
    assert grown.revived == (1,) and grown.killed == (0,)


def test_per_module_calibration_ignores_probe_scale_differences_between_modules():
    """Two frozen modules with equal past change but probes 100x apart are scored equally."""
    config = KRConfig(budget=1, arm="kr", warmup_rounds=1, revival_pressure=0.0, normalisation="none",
                      probe="killed", probe_calibration="per-module")
    ctrl = KRController(3, config)
    ctrl.set_baseline(np.zeros(3))
    ctrl.round(np.array([1.0, 0.5, 0.5]))
    ctrl.round(np.array([2.0, 1.0, 1.0]))
    decision = ctrl.round(np.array([3.0, 1.0, 1.0]), probe_change=np.array([np.nan, 100.0, 1.0]))
    assert decision.scores[1] == pytest.approx(decision.scores[2]) == pytest.approx(0.5)
