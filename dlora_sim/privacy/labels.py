"""Label recovery from the gradient the device sends back through a frozen, public head.

With the head on the device the cloud sends down the final hidden state ``h`` of each loss token
and receives the gradient ``g = ∂L/∂h``. For a frozen linear head ``W`` (classes × d, public or
known to the cloud) under softmax cross-entropy, ``g = Wᵀ (softmax(W h + b) − e_y)``. The cloud
computed ``h`` itself, so it knows ``p = softmax(W h + b)`` and recovers ``y`` as the class whose
``Wᵀ (p − e_c)`` is nearest to ``g``: exactly, unless two classes' head rows coincide.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LabelRecovery:
    recovered: int
    examples: int

    @property
    def rate(self) -> float:
        return self.recovered / self.examples if self.examples else 0.0


def gradient_to_cloud(head: torch.nn.Linear, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """What the device uploads: the loss gradient with respect to the loss tokens' hidden states."""
    hidden = hidden.detach().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(head(hidden), labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, hidden)
    return grad


@torch.no_grad()
def recover_labels(head: torch.nn.Linear, hidden: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """The cloud's guess of each example's label from ``hidden`` (its own) and ``gradient`` (received)."""
    p = torch.softmax(head(hidden), dim=-1)  # examples × classes
    eye = torch.eye(p.shape[1])
    # candidate gradients for every class: Wᵀ (p − e_c), examples × classes × d
    candidates = (p[:, None, :] - eye[None, :, :]) @ head.weight
    return (candidates - gradient[:, None, :]).norm(dim=-1).argmin(dim=1)


def label_recovery(head: torch.nn.Linear, hidden: torch.Tensor, labels: torch.Tensor) -> LabelRecovery:
    """Run the attack on one batch and count the labels recovered."""
    guesses = recover_labels(head, hidden, gradient_to_cloud(head, hidden, labels))
    return LabelRecovery(int((guesses == labels).sum()), int(labels.numel()))
