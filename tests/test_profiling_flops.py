"""Measured FLOPs (torch FlopCounterMode on the real model) against the analytical cost model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from dlora_sim.cost import (  # noqa: E402
    PeftSpec, base_backward_flops_per_token, base_forward_flops_per_token, get_model, module_table,
)
from dlora_sim.profiling.flops import measure_flops  # noqa: E402
from dlora_sim.profiling.models import PeftSpecLocal, build_model  # noqa: E402

pytestmark = pytest.mark.torch

CASES = [  # (name, our spec, the cost model's spec, module count)
    ("lora-r8", PeftSpecLocal(method="lora", rank=8), PeftSpec(method="lora", rank=8), 24),
    ("lora-r4-ffn", PeftSpecLocal(method="lora", rank=4, targets="attention+ffn"),
     PeftSpec(method="lora", rank=4, targets=("q", "k", "v", "o", "up", "down")), 36),
    ("adapter-16", PeftSpecLocal(method="adapter", adapter_size=16), PeftSpec(method="adapter", adapter_size=16), 12),
    ("ia3", PeftSpecLocal(method="ia3"), PeftSpec(method="ia3"), 18),
]


@pytest.mark.parametrize("name,ours,theirs,n", CASES, ids=[c[0] for c in CASES])
def test_per_module_flops_match_the_cost_model_within_2_percent(name, ours, theirs, n):
    """Forward and backward FLOPs per token of every module agree with module_table (same order)."""
    torch.set_num_threads(1)
    net, modules = build_model(ours, 26, False, seed=0)
    measured = measure_flops(net, modules, ours.method, seq_len=16, batch=1)
    table = module_table(get_model("minilm-l6"), theirs)
    assert len(modules) == len(table) == n
    assert [m.kind for m in modules] == list(table.kind)
    assert [m.n_params for m in modules] == list(table.params)
    np.testing.assert_allclose(measured.fwd_per_token, table.fwd_flops_per_token, rtol=0.02)
    np.testing.assert_allclose(measured.bwd_per_token, table.bwd_flops_per_token, rtol=0.02)


def test_base_flops_match_the_cost_model_at_the_measured_length():
    """The frozen encoder's forward and input-gradient backward match the analytical count."""
    torch.set_num_threads(1)
    net, modules = build_model(PeftSpecLocal(), 26, False, seed=0)
    m = measure_flops(net, modules, "lora", seq_len=24, batch=1)
    model = get_model("minilm-l6")
    assert m.base_fwd_per_token == pytest.approx(base_forward_flops_per_token(model, 24), rel=0.02)
    assert m.base_bwd_per_token == pytest.approx(base_backward_flops_per_token(model, 24), rel=0.02)


def test_measurement_restores_the_training_state():
    """Measuring leaves requires_grad flags, gradients and train mode as they were."""
    torch.set_num_threads(1)
    net, modules = build_model(PeftSpecLocal(), 26, False, seed=0)
    for p in modules[0].params:
        p.requires_grad_(False)
    measure_flops(net, modules, "lora", seq_len=8, batch=1)
    assert net.training
    assert [m.params[0].requires_grad for m in modules] == [False] + [True] * 23
    assert all(p.grad is None for p in net.parameters())
