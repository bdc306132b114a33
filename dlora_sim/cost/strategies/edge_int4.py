"""Edge-only on a 4-bit base: the frozen weights are quantised so that a 7B model fits a phone.

QLoRA-style: the base is stored in 4 bits (0.5 bytes a weight) and dequantised on the fly;
activations, gradients and the PEFT modules keep the job's ``dtype_bytes``. The FLOPs are those
of edge-only (dequantisation is elementwise and not counted, as everywhere in the cost model);
what changes is the download and the memory the device needs.
"""

from __future__ import annotations

from typing import ClassVar

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.strategies.edge_only import EdgeOnly

INT4_BYTES_PER_WEIGHT = 0.5


class EdgeOnlyInt4(EdgeOnly):
    """Edge-only with the frozen base in 4 bits."""

    name: ClassVar[str] = "edge-only-int4"
    summary: ClassVar[str] = "the device fine-tunes alone on a 4-bit base (QLoRA-style)"

    def weight_bytes_per_param(self, job: JobSpec) -> float:
        return INT4_BYTES_PER_WEIGHT
