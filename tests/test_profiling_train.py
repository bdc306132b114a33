"""Real training with KR on a tiny split: profile validity, falling loss, real freezing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from dlora_sim.kr import KRConfig  # noqa: E402
from dlora_sim.profile import load_profile  # noqa: E402
from dlora_sim.profiling.freezing import module_norms, probe_grad_norms, set_active  # noqa: E402
from dlora_sim.profiling.models import PeftSpecLocal, build_model, load_tokenizer  # noqa: E402
from dlora_sim.profiling.runner import run_profile  # noqa: E402
from dlora_sim.profiling.tasks import encode, load_task  # noqa: E402
from dlora_sim.profiling.train import TrainConfig, _loss_fn  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _tiny(arm: str = "kr", steps: int = 30, budget: int = 3, peft: str = "lora", **kr) -> TrainConfig:
    return TrainConfig(task="noun-supersense", peft=PeftSpecLocal(method=peft, rank=4),
                       kr=KRConfig(budget=budget, arm=arm, window_steps=5, seed=0, **kr),
                       steps=steps, batch=8, lr=3e-3, seed=0, max_len=32, train_limit=48,
                       dev_limit=16, test_limit=16, eval_every=15)


@pytest.fixture(scope="module")
def kr_profile(tmp_path_factory):
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("p") / "tiny.json"
    run_profile(_tiny(), path)
    return path


def test_tiny_run_writes_a_schema_valid_profile_whose_loss_falls(kr_profile):
    """load_profile accepts the file; mean loss of the last 5 steps < of the first 5."""
    profile = load_profile(kr_profile)
    loss = profile.traces.loss
    assert len(loss) == 30 and profile.setup.arm == "kr"
    assert np.mean(loss[-5:]) < np.mean(loss[:5])
    assert profile.kr_overhead.probe_batches >= 1 and profile.kr_overhead.probe_flops_per_step > 0


def test_killed_modules_do_not_move_between_rounds(kr_profile):
    """A module inactive through a whole window ends it with exactly the norm it started with."""
    tr = load_profile(kr_profile).traces
    checked = 0
    for r in range(len(tr.round_steps) - 1):
        for m in set(range(24)) - set(tr.active[r]):
            assert tr.norms[r + 1][m] == tr.norms[r][m]
            checked += 1
    assert checked > 0


def test_budget_holds_after_the_cut(kr_profile):
    """After warm-up exactly B=3 modules are active in every round."""
    tr = load_profile(kr_profile).traces
    sizes = [len(a) for a in tr.active]
    assert sizes[0] == 24 and all(s == 3 for s in sizes[1:])


def _model_and_batch():
    data = load_task("noun-supersense", "train", 16)
    net, modules = build_model(PeftSpecLocal(rank=4), data.n_classes, False, seed=0)
    enc = encode(load_tokenizer(), data, np.arange(8), 32)
    return net, modules, enc


def test_killed_modules_get_no_gradient_and_stay_bit_identical():
    """After kill: grad is None for every killed tensor and optimizer steps leave them untouched."""
    net, modules, enc = _model_and_batch()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # give every module Adam state first
        _loss_fn(net, enc).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    active = np.zeros(24, dtype=bool)
    active[[1, 5, 9]] = True
    set_active(modules, active, opt)
    frozen = {i: [p.detach().clone() for p in m.params] for i, m in enumerate(modules) if not active[i]}
    moving = [p.detach().clone() for p in modules[5].params]
    for _ in range(3):
        _loss_fn(net, enc).backward()
        for i in frozen:
            assert all(p.grad is None for p in modules[i].params)
        opt.step()
        opt.zero_grad(set_to_none=True)
    for i, before in frozen.items():
        assert all(torch.equal(p, q) for p, q in zip(modules[i].params, before))
    assert not all(torch.equal(p, q) for p, q in zip(modules[5].params, moving))


def test_revival_resets_adam_moments():
    """A revived module starts with no optimizer state (fresh moments, step count 0)."""
    net, modules, enc = _model_and_batch()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    _loss_fn(net, enc).backward()
    opt.step()
    assert all(p in opt.state for p in modules[0].params)
    off = np.ones(24, dtype=bool)
    off[0] = False
    assert set_active(modules, off, opt) == ([0], [])
    assert set_active(modules, np.ones(24, dtype=bool), opt) == ([], [0])
    assert all(p not in opt.state for p in modules[0].params)


def test_probe_gives_killed_modules_gradients_without_moving_anything():
    """The probe returns a positive gradient norm per probed module and changes no weight or flag."""
    net, modules, enc = _model_and_batch()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    _loss_fn(net, enc).backward()  # LoRA B starts at zero: one step so A gets gradients too
    opt.step()
    opt.zero_grad(set_to_none=True)
    active = np.zeros(24, dtype=bool)
    active[:3] = True
    set_active(modules, active, opt)
    before = module_norms(modules)
    grads = probe_grad_norms(net, modules, lambda: _loss_fn(net, enc), ~active)
    assert np.isnan(grads[:3]).all() and (grads[3:] > 0).all()
    assert np.array_equal(module_norms(modules), before)
    assert [m.params[0].requires_grad for m in modules] == list(active)
    assert all(p.grad is None for p in net.parameters())


def test_same_seed_same_run():
    """Two runs with the same config and seed give the same losses and KR decisions."""
    cfg = _tiny(steps=12)
    from dlora_sim.profiling.train import train

    a, b = train(cfg), train(cfg)
    assert a.loss == b.loss and a.active == b.active


def test_profile_records_predictions_update_norms_and_what_was_trained(kr_profile):
    """Per-example predictions reproduce the test accuracy; ‖ΔW‖ traces start above 0 (B moved)
    and stay put for killed modules; trainable params = head + the mean active modules."""
    profile = load_profile(kr_profile)
    res, tr = profile.result, profile.traces
    labels = load_task("noun-supersense", "test", 16).labels
    assert len(res.test_predictions) == 16
    assert np.mean(np.array(res.test_predictions) == labels) == pytest.approx(res.test_accuracy)
    assert tr.update_norms is not None and len(tr.update_norms) == len(tr.round_steps)
    for r in range(len(tr.round_steps) - 1):
        for m in set(range(24)) - set(tr.active[r]):
            assert tr.update_norms[r + 1][m] == tr.update_norms[r][m]
    per_module = profile.modules[0].params
    # window 5, warm-up 1: 10 steps with all 24 modules, 20 steps with 3
    assert res.trainable_params == round(res.head_params + (10 * 24 + 20 * 3) * per_module / 30)
    assert res.trainable_params < res.head_params + 24 * per_module


def test_update_norms_equal_the_product_they_stand_for():
    """update_norms is ‖(α/r)·B·A‖_F, computed without forming the product."""
    from dlora_sim.profiling.freezing import update_norms

    net, modules, _ = _model_and_batch()
    with torch.no_grad():
        for m in modules:
            m.lora[1].normal_()  # B starts at zero; give it something to measure
    a, b, scaling = modules[5].lora
    assert update_norms(modules)[5] == pytest.approx(float(torch.linalg.norm(scaling * (b @ a).detach())), rel=1e-6)


@pytest.mark.parametrize(("arm", "budget", "active_after"),
                         [("head-only", 0, 0), ("static-random", 3, 3), ("static-topB", 3, 3)])
def test_new_arms_train_exactly_their_budget(arm, budget, active_after):
    """head-only freezes every module after warm-up (their weights then stay bit-identical);
    static-random and static-topB keep one set of B for the whole run."""
    from dlora_sim.profiling.train import train

    result = train(_tiny(arm=arm, budget=budget, steps=20))
    assert [len(row) for row in result.active] == [24] + [active_after] * 2
    assert result.active[1] == result.active[2]
    frozen = set(range(24)) - set(result.active[1])
    assert all(result.norms[2][m] == result.norms[1][m] for m in frozen)
    assert all(result.update_norms[2][m] == result.update_norms[1][m] for m in frozen)


def test_update_norm_score_needs_lora():
    """Adapter has no B·A: the update-norm-diff score is refused with one clear line."""
    from dlora_sim.errors import InputError
    from dlora_sim.profiling.train import train

    with pytest.raises(InputError, match="needs --peft lora"):
        train(_tiny(peft="adapter", budget=2, score="update-norm-diff", steps=5))


def test_eval_test_records_the_test_accuracy_curve(tmp_path):
    """--eval-test: test accuracy at every evaluation step, the last one the run's test score;
    without it the profile has no curve (traces.test_eval is null)."""
    import dataclasses

    config = dataclasses.replace(_tiny(arm="all", steps=30), eval_test=True)
    profile = run_profile(config, tmp_path / "curve.json")
    loaded = load_profile(tmp_path / "curve.json")
    curve = loaded.traces.test_eval
    assert [p.step for p in curve] == [p.step for p in loaded.traces.eval] == [15, 30]
    assert curve[-1].accuracy == pytest.approx(profile.result.test_accuracy)
    labels = load_task("noun-supersense", "test", 16).labels
    assert np.mean(np.array(loaded.result.test_predictions) == labels) == pytest.approx(curve[-1].accuracy)
    from dlora_sim.profiling.train import train

    assert train(_tiny(arm="all", steps=5)).test_eval is None
