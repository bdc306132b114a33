"""Split learning with LoRA (SplitLoRA-style): the device runs the first k blocks, the cloud the rest.

The device embeds its tokens and runs blocks ``0 .. k-1`` (``JobSpec.split_blocks``) with their
LoRA modules; the activations at the cut cross once per step, and their gradient comes back
once. With the head on the device (``head_placement = "edge"``, the U-shaped variant) the cloud
also returns the loss tokens' final hidden states and gets their gradient back, so the labels
stay on the device; with the head in the cloud the labels go up with the activations.
``JobSpec.split_lora`` says where LoRA trains: ``"edge"`` (only the device's blocks; the cloud's
blocks stay frozen but still run their backward to bring the gradient to the cut) or ``"both"``
(the cloud trains LoRA on its blocks too, so the cloud holds part of the personal parameters).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.models import base_backward_flops_per_token, base_forward_flops_per_token, head_flops_per_loss_token
from dlora_sim.cost.strategies.base import (
    OPTIMIZER_STATE_BYTES_PER_PARAM,
    Exchange,
    Strategy,
    kept_values_per_token_per_block,
)


class _Side:
    """The blocks and PEFT modules one side runs, and their FLOPs per step."""

    def __init__(self, job: JobSpec, blocks: int, modules: np.ndarray) -> None:
        s, t = job.shape, job.table
        per_block_fwd = base_forward_flops_per_token(s, job.seq_len) / s.n_layers
        per_block_bwd = base_backward_flops_per_token(s, job.seq_len) / s.n_layers
        self.params = float(t.params[modules].sum())
        self.forward = job.tokens * (blocks * per_block_fwd + float(t.fwd_flops_per_token[modules].sum()))
        self.backward = job.tokens * (blocks * per_block_bwd + float(t.bwd_flops_per_token[modules].sum()))
        self.optimizer = job.optimizer_flops_per_param * self.params
        self.module_inputs = float(t.d_in[modules].sum())


class SplitLoRA(Strategy):
    """Split learning at block k with LoRA on the device's blocks (and, optionally, the cloud's)."""

    name: ClassVar[str] = "split-lora"
    summary: ClassVar[str] = "split learning: the device runs the first k blocks, activations cross at the cut"

    def _sides(self, job: JobSpec) -> tuple[_Side, _Side]:
        k, layers = job.split_blocks, job.table.layer
        cloud_modules = layers >= k if job.split_lora == "both" else np.zeros(layers.shape, dtype=bool)
        return _Side(job, k, layers < k), _Side(job, job.shape.n_layers - k, cloud_modules)

    def step_exchanges(self, job: JobSpec, n_active: int | None = None,
                       active: np.ndarray | None = None) -> list[Exchange]:
        edge, cloud = self._sides(job)
        s, ds = job.shape, job.dtype_bytes
        cut = job.tokens * s.d_model * ds  # activations at the cut, and their gradient
        hidden = job.loss_tokens * s.d_model * ds
        head_f, head_b = head_flops_per_loss_token(s, job.head_out_dim)
        head = job.loss_tokens * (head_f + head_b)
        cloud_train = cloud.backward + cloud.optimizer
        if job.head_placement == "edge":  # U-shaped: labels and the loss stay on the device
            return [
                Exchange("cut:forward", cut, hidden, edge.forward + edge.optimizer, cloud.forward),
                Exchange("head", hidden, cut, head, cloud_train),
                Exchange("cut:backward", 0.0, 0.0, edge.backward, 0.0, round_trips=0),
            ]
        labels = job.loss_tokens * job.token_id_bytes
        return [
            Exchange("cut", cut + labels, cut, edge.forward + edge.optimizer, cloud.forward + head + cloud_train),
            Exchange("cut:backward", 0.0, 0.0, edge.backward, 0.0, round_trips=0),
        ]

    def setup_bytes_down(self, job: JobSpec) -> float:
        """The embedding table, the device's k blocks, and the head when it runs on the device."""
        s = job.shape
        head_dim = s.vocab if job.head_out_dim is None else job.head_out_dim
        head = head_dim * s.d_model if job.head_placement == "edge" else 0
        blocks = job.split_blocks * s.block_linear_macs()
        return float((s.vocab * s.d_model + blocks + head) * job.weight_bytes_per_param)

    def edge_weight_bytes(self, job: JobSpec) -> float:
        edge, _ = self._sides(job)
        return self.setup_bytes_down(job) + edge.params * (job.dtype_bytes + OPTIMIZER_STATE_BYTES_PER_PARAM)

    def cloud_weight_bytes(self, job: JobSpec) -> float:
        s = job.shape
        return float((s.n_layers - job.split_blocks) * s.block_linear_macs() * job.weight_bytes_per_param)

    def cloud_session_values_per_token(self, job: JobSpec) -> float:
        _, cloud = self._sides(job)
        return (job.shape.n_layers - job.split_blocks) * kept_values_per_token_per_block(job) + cloud.module_inputs

    def cloud_sees(self, job: JobSpec) -> tuple[str, ...]:
        seen = ["hidden states"]
        if job.head_placement == "cloud":
            seen.insert(0, "labels")
        if job.split_lora == "both":
            seen += ["module weights", "module updates"]
        return tuple(seen)
