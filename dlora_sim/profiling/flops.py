"""Measured FLOPs of the real model: per PEFT module (forward, backward) and the frozen base.

The meter is ``torch.utils.flop_counter.FlopCounterMode``: it counts matrix products
(mm/addmm/bmm/attention) at 2 FLOPs per multiply-accumulate (1 MAC = 2 FLOPs) and attributes
them to the module that ran them, in the forward and in the backward pass. Elementwise work
(bias adds, GELU, LayerNorm) is not counted; for IA3, whose whole work is an elementwise
product, the multiplies *are* the module, so for IA3 modules ``aten.mul`` is counted as 1 FLOP
per output element (the cost model's convention for IA3).

Convention of the measurement, chosen to match the cost model (``dlora_sim.cost``):
* every PEFT module is trainable, so its backward = weight gradients + input gradients;
* the embedding output is made to require grad, so even layer 0 computes its input
  gradients (the steady state of a layer in the middle of a deeper model); in real training
  autograd skips them for layer 0, which is cheaper than the profile says by that much;
* no padding: rows of exactly ``seq_len`` tokens, and attention is costed at that ``seq_len``;
* per token = the difference between a batch of 2·b rows and one of b rows, divided by the b·T
  extra tokens (per-call constants cancel);
* base = everything the counter saw minus the PEFT modules' own work and the task head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dlora_sim.profiling.models import PeftClassifier, PeftModule

SOURCE = "torch.utils.flop_counter.FlopCounterMode (matrix products; aten.mul for IA3 modules)"
CONVENTION = "1 MAC = 2 FLOPs; elementwise IA3 scaling = 1 FLOP per element"


@dataclass(frozen=True)
class FlopMeasurement:
    """Per-token FLOPs: one entry per PEFT module, plus the frozen base (no head)."""

    fwd_per_token: np.ndarray
    bwd_per_token: np.ndarray
    base_fwd_per_token: float
    base_bwd_per_token: float
    seq_len: int


def _mul_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return int(np.prod(out_shape)) if out_shape is not None else 0


def _snapshot(counter: FlopCounterMode) -> dict[str, int]:
    """Total FLOPs per module name (all ops summed) at this moment."""
    return {name: int(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}


def _own(counts: dict[str, int], prefix: str, module: PeftModule) -> int:
    """FLOPs of the module's own tensors: the wrapper minus the frozen layer it wraps."""
    name = f"{prefix}.{module.name}"
    return counts.get(name, 0) - counts.get(f"{name}.base_layer", 0)


def _count_pass(net: PeftClassifier, rows: int, seq_len: int, custom: dict) -> tuple[dict, dict]:
    """(forward, backward) FLOPs per module name for one ``rows × seq_len`` batch."""
    ids = torch.randint(1000, 2000, (rows, seq_len), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    # One counter for both passes: it attributes backward ops to modules only when it also
    # saw their forward. The forward share is read off before the backward runs.
    with FlopCounterMode(display=False, custom_mapping=custom) as counter:
        logits = net(input_ids=ids, attention_mask=mask)
        fwd = _snapshot(counter)
        logits.float().pow(2).mean().backward()
    both = _snapshot(counter)
    net.zero_grad(set_to_none=True)
    return fwd, {k: v - fwd.get(k, 0) for k, v in both.items()}


def measure_flops(net: PeftClassifier, modules: list[PeftModule], method: str,
                  seq_len: int, batch: int = 2) -> FlopMeasurement:
    """Count one forward + backward at ``batch`` and at ``2·batch`` rows; per token = the slope.

    Why the slope: some work is paid once per call, not per token (peft's IA3 multiplies its
    vector once per call, for example); the difference of two batch sizes cancels it, so the
    numbers are per-token costs as the cost model defines them.

    Args:
        net: the model as trained (PEFT attached, head present).
        modules: its PEFT modules (all made trainable for the measurement, then restored).
        method: ``lora``, ``adapter`` or ``ia3`` (IA3 counts its multiplies).
        seq_len: tokens per row; attention FLOPs per token grow with it.
        batch: rows of the smaller measurement (examples; 4 rows each for multiple-choice).

    Returns:
        Per-token FLOPs per module and for the base.
    """
    before = [m.params[0].requires_grad for m in modules]
    for m in modules:
        for p in m.params:
            p.requires_grad_(True)
    was_training = net.training
    net.eval()
    rows = 4 * batch if net.multiple_choice else batch
    hook = net.encoder.embeddings.register_forward_hook(lambda _m, _i, out: out.detach().requires_grad_(True))
    custom = {torch.ops.aten.mul: _mul_flops} if method == "ia3" else {}
    try:
        small = _count_pass(net, rows, seq_len, custom)
        large = _count_pass(net, 2 * rows, seq_len, custom)
    finally:
        hook.remove()
        net.zero_grad(set_to_none=True)
        net.train(was_training)
        for m, on in zip(modules, before):
            for p in m.params:
                p.requires_grad_(on)
    tokens = rows * seq_len  # the extra tokens of the larger measurement
    prefix = type(net).__name__ + ".encoder"
    head_name = type(net).__name__ + ".head"
    out = []
    for a, b in zip(small, large):  # forward, then backward
        counts = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
        own = np.array([_own(counts, prefix, m) for m in modules], dtype=float)
        base = counts.get("Global", 0) - own.sum() - counts.get(head_name, 0)
        out.append((own / tokens, float(base) / tokens))
    return FlopMeasurement(out[0][0], out[1][0], out[0][1], out[1][1], seq_len)
