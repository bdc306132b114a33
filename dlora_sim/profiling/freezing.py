"""Kill and revive, mechanically: freezing PEFT modules, reading their norms, probing them.

Killing a module is like switching off a radiator: ``requires_grad=False`` on its tensors, so
autograd computes no weight gradient for it and the optimizer skips it (AdamW ignores
parameters whose ``grad`` is ``None``); its weights stay bit-identical until it is revived.

Optimizer state on revival: a revived module's Adam moments are *reset* (its state is dropped,
so the step count restarts with bias correction). Why: the moments describe gradients from
before the module was frozen, possibly hundreds of steps old; reusing them would push the
module along a stale direction on its first steps back. The moments of a killed module are
kept while it is frozen only because dropping them at revival time is equivalent and cheaper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from dlora_sim.errors import InputError
from dlora_sim.profiling.models import PeftModule


@torch.no_grad()
def module_norms(modules: Sequence[PeftModule]) -> np.ndarray:
    """L2 norm of each module's trainable tensors taken together (‖W_m‖, the score's input; docs/kr.md)."""
    return np.array(
        [float(torch.sqrt(sum((p.double() ** 2).sum() for p in m.params))) for m in modules]
    )


@torch.no_grad()
def update_norms(modules: Sequence[PeftModule]) -> np.ndarray:
    """‖ΔW_m‖_F of each LoRA module's effective update ΔW = (α/r)·B·A (score ``update-norm-diff``).

    Computed without forming the d_out × d_in product: ‖BA‖² = Σ (BᵀB) ∘ (AAᵀ), two r × r
    Gram matrices. Why this and not ‖[A;B]‖: A starts random and B at zero, so the raw norm is
    mostly A's initialisation, while ΔW starts at exactly 0 and is what changes the model.

    Raises:
        InputError: a module is not LoRA (Adapter and IA3 have no low-rank update).
    """
    out = np.zeros(len(modules))
    for i, m in enumerate(modules):
        if m.lora is None:
            raise InputError(f"score 'update-norm-diff' needs LoRA modules (ΔW = B·A); module {m.name} has none")
        a, b, scaling = m.lora
        a, b = a.double(), b.double()
        squared = float(((b.T @ b) * (a @ a.T)).sum())
        out[i] = scaling * max(squared, 0.0) ** 0.5
    return out


def update_norm_flops(modules: Sequence[PeftModule], mask: np.ndarray | None = None) -> int:
    """FLOPs of :func:`update_norms` for the masked modules: two r × r Gram matrices and their dot."""
    chosen = [m for m, on in zip(modules, np.ones(len(modules), bool) if mask is None else np.asarray(mask, bool)) if on]
    return int(sum(2 * m.lora[0].shape[0] ** 2 * (m.d_in + m.d_out) + 2 * m.lora[0].shape[0] ** 2
                   for m in chosen if m.lora is not None))


def norm_flops(modules: Sequence[PeftModule], mask: np.ndarray | None = None) -> int:
    """FLOPs of :func:`module_norms` for the masked modules: a square and an add per element."""
    sizes = np.array([m.n_params for m in modules])
    chosen = sizes if mask is None else sizes[np.asarray(mask, dtype=bool)]
    return int(2 * chosen.sum())


def set_active(modules: Sequence[PeftModule], active: np.ndarray,
               optimizer: torch.optim.Optimizer) -> tuple[list[int], list[int]]:
    """Freeze the modules that ``active`` marks off, unfreeze the ones it marks on.

    Returns:
        (killed, revived) module indices that actually changed state.
    """
    killed, revived = [], []
    for i, (module, on) in enumerate(zip(modules, np.asarray(active, dtype=bool))):
        was_on = module.params[0].requires_grad
        if was_on and not on:
            killed.append(i)
        elif on and not was_on:
            revived.append(i)
            for p in module.params:
                optimizer.state.pop(p, None)  # reset Adam moments: see module docstring
        for p in module.params:
            p.requires_grad_(bool(on))
            if not on:
                p.grad = None
    return killed, revived


def probe_grad_norms(net: torch.nn.Module, modules: Sequence[PeftModule],
                     loss_of: Callable[[], torch.Tensor], mask: np.ndarray) -> np.ndarray:
    """Gradient norm of each masked module on one probe batch, without any update.

    Every masked module is made trainable for the one backward pass, then the previous
    ``requires_grad`` flags are restored and all gradients dropped, so the probe changes no
    weight and leaves nothing for the optimizer. Unmasked entries are NaN.
    """
    before = [m.params[0].requires_grad for m in modules]
    mask = np.asarray(mask, dtype=bool)
    for m, on in zip(modules, mask):
        if on:
            for p in m.params:
                p.requires_grad_(True)
    net.zero_grad(set_to_none=True)
    loss_of().backward()
    out = np.full(len(modules), np.nan)
    with torch.no_grad():
        for i, m in enumerate(modules):
            if mask[i]:
                out[i] = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in m.params)))
    net.zero_grad(set_to_none=True)
    for m, on in zip(modules, before):
        for p in m.params:
            p.requires_grad_(on)
    return out
