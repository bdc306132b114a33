"""GPU memory of the cloud side: the frozen weights a GPU holds and what one session adds.

A session's activations stay alive on the GPU from its step's forward pass until its backward
pass is done, so HBM bounds the sessions in flight, not only FLOP/s. Under DLoRA the blocks are
frozen: a frozen linear layer needs only its weight for the input gradient, so its input need
not be kept. What a block's backward does keep, per token (the accounting of Korthikanti et al.
2022, "Reducing Activation Recomputation in Large Transformer Models", with a fused attention
kernel that keeps no ``seq x seq`` scores):

- the inputs of the two norms (``2 d``), Q, K and V and the attention output (``4 d``);
- the FFN activation's inputs: gate and up (``2 d_ff``) for SwiGLU, up (``d_ff``) otherwise.

(``strategies.base.kept_values_per_token_per_block``.) Each strategy states which blocks it
runs in the cloud and what else it keeps (``Strategy.cloud_session_values_per_token``):
cloud-only also keeps each PEFT module's input, since their weight gradients need it; edge-only
uses no GPU.

When a GPU is full a session either waits for memory (``queue``) or drops its activations and
recomputes the forward pass during the backward (``recompute``): one more forward through the
frozen blocks (:func:`recompute_cloud_flops`).
"""

from __future__ import annotations

from dlora_sim.cost.hardware import CloudGPU
from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.models import base_forward_flops_per_token
from dlora_sim.cost.strategies import get_strategy

MEMORY_FULL_POLICIES = ("queue", "recompute")


def cloud_session_bytes(job: JobSpec, strategy: str) -> float:
    """Activation bytes one session keeps on a GPU through a step (0 where the cloud runs nothing)."""
    tokens = job.seq_len * max(job.batch, job.probe_samples)
    return tokens * get_strategy(strategy).cloud_session_values_per_token(job) * job.dtype_bytes


def cloud_weight_bytes(job: JobSpec, strategy: str) -> float:
    """Frozen weights every GPU holds: the blocks (DLoRA), the whole model (cloud-only), ..."""
    return get_strategy(strategy).cloud_weight_bytes(job)


def sessions_per_gpu(job: JobSpec, strategy: str, gpu: CloudGPU) -> int:
    """Sessions whose activations fit beside the weights in one GPU's memory (0: not even one)."""
    session = cloud_session_bytes(job, strategy)
    free = gpu.memory_bytes - cloud_weight_bytes(job, strategy)
    if session <= 0:
        return 0 if free < 0 else 2**31 - 1
    return max(0, int(free // session))


def edge_weight_bytes(job: JobSpec, strategy: str) -> float:
    """Weights and trainer state the device holds (activations not counted)."""
    return get_strategy(strategy).edge_weight_bytes(job)


def recompute_cloud_flops(job: JobSpec) -> float:
    """Extra cloud FLOPs of a step whose activations were dropped: the frozen forward again."""
    return float(job.tokens * base_forward_flops_per_token(job.shape, job.seq_len))
