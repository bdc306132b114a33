"""Federated LoRA (FedIT-style): every device trains its LoRA locally, the cloud averages them.

The device holds the whole model (as edge-only) and runs ``fed_round_steps`` local steps between
aggregations; at the end of each round it uploads its LoRA weights and downloads the average of
every client's (FedAvg). The cloud's work is the average: one multiply-add per parameter per
client. Rounds are per device here (asynchronous aggregation, FedBuff-style): a device does not
wait for the slowest to start its next round.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.strategies.base import Exchange
from dlora_sim.cost.strategies.edge_only import EdgeOnly


class FedLoRA(EdgeOnly):
    """Local LoRA training on the device, FedAvg of the LoRA weights in the cloud every round."""

    name: ClassVar[str] = "fed-lora"
    summary: ClassVar[str] = "federated LoRA: local training, the cloud averages the LoRA weights"

    def sync_every(self, job: JobSpec) -> int | None:
        return job.fed_round_steps

    def sync_exchanges(self, job: JobSpec) -> list[Exchange]:
        params = float(np.sum(job.table.params))
        weights = params * job.dtype_bytes
        return [Exchange("fedavg", weights, weights, 0.0, 2.0 * params, module_bytes=2 * weights)]

    def cloud_sees(self, job: JobSpec) -> tuple[str, ...]:
        return ("module weights",)
