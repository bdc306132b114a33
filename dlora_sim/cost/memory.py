"""GPU memory of the cloud side: the frozen weights a GPU holds and what one session adds.

A session's activations stay alive on the GPU from its step's forward pass until its backward
pass is done, so HBM bounds the sessions in flight, not only FLOP/s. Under DLoRA the blocks are
frozen: a frozen linear layer needs only its weight for the input gradient, so its input need
not be kept. What a block's backward does keep, per token (the accounting of Korthikanti et al.
2022, "Reducing Activation Recomputation in Large Transformer Models", with a fused attention
kernel that keeps no ``seq x seq`` scores):

- the inputs of the two norms (``2 d``), Q, K and V and the attention output (``4 d``);
- the FFN activation's inputs: gate and up (``2 d_ff``) for SwiGLU, up (``d_ff``) otherwise.

Cloud-only trains the PEFT modules in the cloud too, so it also keeps each module's input
(their weight gradients need it). Edge-only uses no GPU.

When a GPU is full a session either waits for memory (``queue``) or drops its activations and
recomputes the forward pass during the backward (``recompute``): one more forward through the
frozen blocks (:func:`recompute_cloud_flops`).
"""

from __future__ import annotations

import numpy as np

from dlora_sim.cost.hardware import CloudGPU
from dlora_sim.cost.job import JobSpec, check_strategy
from dlora_sim.cost.models import base_forward_flops_per_token

MEMORY_FULL_POLICIES = ("queue", "recompute")


def _kept_values_per_token_per_block(job: JobSpec) -> float:
    s = job.shape
    ffn = 2 * s.d_ff if s.ffn == "swiglu" else s.d_ff
    return 6.0 * s.d_model + ffn


def cloud_session_bytes(job: JobSpec, strategy: str) -> float:
    """Activation bytes one session keeps on a GPU through a step (0 for edge-only)."""
    check_strategy(strategy)
    if strategy == "edge-only":
        return 0.0
    tokens = job.seq_len * max(job.batch, job.probe_samples)
    per_token = job.shape.n_layers * _kept_values_per_token_per_block(job)
    if strategy == "cloud-only":
        per_token += float(np.sum(job.table.d_in))
    return tokens * per_token * job.dtype_bytes


def cloud_weight_bytes(job: JobSpec, strategy: str) -> float:
    """Frozen weights every GPU holds: the blocks (DLoRA), the whole model (cloud-only)."""
    check_strategy(strategy)
    if strategy == "edge-only":
        return 0.0
    params = job.shape.base_params() if strategy == "cloud-only" else job.shape.block_params()
    return float(params * job.dtype_bytes)


def sessions_per_gpu(job: JobSpec, strategy: str, gpu: CloudGPU) -> int:
    """Sessions whose activations fit beside the weights in one GPU's memory (0: not even one)."""
    session = cloud_session_bytes(job, strategy)
    free = gpu.memory_bytes - cloud_weight_bytes(job, strategy)
    if session <= 0:
        return 0 if free < 0 else 2**31 - 1
    return max(0, int(free // session))


def recompute_cloud_flops(job: JobSpec) -> float:
    """Extra cloud FLOPs of a step whose activations were dropped: the frozen forward again."""
    return float(job.tokens * base_forward_flops_per_token(job.shape, job.seq_len))
