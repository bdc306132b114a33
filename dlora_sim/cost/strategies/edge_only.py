"""Edge-only: the device downloads the whole model once and fine-tunes alone."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.strategies.base import Exchange, Strategy, whole_step_flops


class EdgeOnly(Strategy):
    """Everything on the device; the link carries the model download only."""

    name: ClassVar[str] = "edge-only"
    summary: ClassVar[str] = "the device downloads the model and fine-tunes alone"

    def step_exchanges(self, job: JobSpec, n_active: int | None = None,
                       active: np.ndarray | None = None) -> list[Exchange]:
        return [Exchange("local", 0.0, 0.0, whole_step_flops(job), 0.0, round_trips=0)]

    def weight_bytes_per_param(self, job: JobSpec) -> float:
        """Bytes per frozen weight on the device (the job's weight dtype)."""
        return job.weight_bytes_per_param

    def setup_bytes_down(self, job: JobSpec) -> float:
        """The whole base model."""
        return float(job.shape.base_params() * self.weight_bytes_per_param(job))

    def cloud_weight_bytes(self, job: JobSpec) -> float:
        return 0.0

    def cloud_session_values_per_token(self, job: JobSpec) -> float:
        return 0.0

    def cloud_sees(self, job: JobSpec) -> tuple[str, ...]:
        return ()
