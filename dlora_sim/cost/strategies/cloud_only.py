"""Cloud-only: the device uploads its raw data and the cloud fine-tunes; the user gets the weights."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.strategies.base import Exchange, Strategy, trainable_bytes, whole_step_flops


class CloudOnly(Strategy):
    """Raw token ids and labels go up each step; the cloud runs the whole step."""

    name: ClassVar[str] = "cloud-only"
    summary: ClassVar[str] = "the cloud fine-tunes on the uploaded raw data"
    trains_modules_in_cloud: ClassVar[bool] = True

    def step_exchanges(self, job: JobSpec, n_active: int | None = None,
                       active: np.ndarray | None = None) -> list[Exchange]:
        raw_up = (job.tokens + job.loss_tokens) * job.token_id_bytes  # token ids + labels
        return [Exchange("batch", float(raw_up), 0.0, 0.0, whole_step_flops(job))]

    def final_bytes_down(self, job: JobSpec) -> float:
        """The trained PEFT weights, fetched once training is over."""
        return float(job.table.params.sum() * job.dtype_bytes)

    def edge_weight_bytes(self, job: JobSpec) -> float:
        return 0.0

    def cloud_weight_bytes(self, job: JobSpec) -> float:
        """The whole model, and every user's PEFT modules with their optimizer state."""
        return float(job.shape.base_params() * job.weight_bytes_per_param) + trainable_bytes(job)

    def cloud_session_values_per_token(self, job: JobSpec) -> float:
        """The blocks' kept activations, and every PEFT module's input (its weight gradient needs it)."""
        return super().cloud_session_values_per_token(job) + float(np.sum(job.table.d_in))

    def cloud_sees(self, job: JobSpec) -> tuple[str, ...]:
        return ("raw text", "labels", "module weights", "module updates")
