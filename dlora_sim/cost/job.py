"""The fine-tuning job being priced.

A :class:`JobSpec` is everything about the training run that changes its cost: model, PEFT,
batch and sequence, steps, the KR budget and schedule, and the DLoRA protocol options.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from dlora_sim.cost.models import ModelShape, get_model
from dlora_sim.cost.peft import ModuleTable, PeftSpec, module_table
from dlora_sim.errors import InputError

KILLED_POLICIES = ("offload", "edge-forward")
HEAD_PLACEMENTS = ("edge", "cloud")
EXCHANGES = ("activations", "weights")
SPLIT_LORA_SIDES = ("edge", "both")

# AdamW per trainable parameter and step, elementwise FLOPs: m update 3, v update 4, bias
# corrections 2, sqrt + eps 2, the update 3, decoupled weight decay 2 (torch.optim.AdamW).
ADAMW_FLOPS_PER_PARAM = 16


@dataclass(frozen=True)
class JobSpec:
    """One fine-tuning job.

    Args:
        model: catalog name (see ``MODELS``) or a :class:`ModelShape`.
        peft: PEFT method, size and targets.
        batch: samples per step.
        seq_len: tokens per sample (T).
        steps: optimizer steps in the whole job.
        budget: KR budget B, modules active after warm-up (1..module count).
        dtype_bytes: bytes per exchanged value (activations, gradients) and per PEFT weight
            (2 = fp16/bf16).
        weight_dtype_bytes: bytes per frozen base weight; None -> ``dtype_bytes``. 0.5 is a 4-bit
            base (QLoRA-style), which the ``edge-only-int4`` strategy always uses.
        killed_policy: ``offload`` (killed module's weights uploaded once, cloud applies them
            frozen) or ``edge-forward`` (killed modules keep running forward on the edge).
        head_placement: ``edge`` (head + loss on the device, labels stay there) or ``cloud``.
        exchange: ``activations`` (per-module round trips) or ``weights`` (the edge ships the
            active modules' weights each step and gets their gradients back).
        split_blocks: ``split-lora``: the blocks the device runs (the cut is after them).
        split_lora: ``split-lora``: where LoRA trains, ``edge`` (the device's blocks) or ``both``.
        fed_round_steps: ``fed-lora``: local steps between two FedAvg aggregations.
        share_inputs: ``activations`` only: modules that read one input tensor (LoRA on q, k, v
            of a layer; on gate, up) get it in one message when they run together, and return
            one summed input gradient. Only a whole group saves: KR's B modules are taken to be
            spread over groups (no two share), the conservative reading of its saving.
        kr_interval_steps: steps between KR rounds (the KR window).
        kr_warmup_rounds: KR windows with every module active before the first kill.
        kr_churn: modules swapped (killed and as many revived) over the whole job after the first
            cut, in units of the budget (1.0 = B swaps in all); take it from a profile's
            active-set history (:func:`dlora_sim.kr.profile_churn`). See
            :func:`dlora_sim.cost.strategies.kr_schedule`.
        probe_batch: samples in KR's probe batch (None -> ``batch``).
        loss_tokens_per_sample: tokens per sample that carry a loss and go through the head.
            1 for classification / multiple choice (the answer position), ``seq_len`` for
            generative instruction tuning.
        head_out_dim: head width; None -> the model's vocabulary (the LM head).
        samples_per_epoch: training samples in one epoch; None -> the job is one epoch.
        token_id_bytes: bytes per token id or label when raw data leaves the device.
        optimizer_flops_per_param: edge optimizer FLOPs per trainable parameter and step.
        upload_noise: DLoRA: Gaussian noise scale σ the device adds to the embeddings it uploads
            (0 = none); σ sets the privacy and the accuracy (docs/privacy.md), not the cost, which
            is :data:`~dlora_sim.cost.strategies.base.NOISE_FLOPS_PER_VALUE` per value.
        upload_rotation: DLoRA: the device multiplies every uploaded embedding by a private
            d × d rotation (docs/privacy.md says why it protects nothing against a public model).
    """

    model: str | ModelShape = "llama-7b"
    peft: PeftSpec = field(default_factory=PeftSpec)
    # LLM-Adapters commonsense set-up (Hu et al. 2023): micro-batch 4, cutoff length 256.
    batch: int = 4
    seq_len: int = 256
    steps: int = 1000
    budget: int = 16
    dtype_bytes: int = 2
    weight_dtype_bytes: float | None = None
    killed_policy: str = "offload"
    head_placement: str = "edge"
    exchange: str = "activations"
    share_inputs: bool = True
    split_blocks: int = 1
    split_lora: str = "both"
    fed_round_steps: int = 50
    kr_interval_steps: int = 50
    kr_warmup_rounds: int = 1
    kr_churn: float = 1.0
    probe_batch: int | None = None
    loss_tokens_per_sample: int = 1
    head_out_dim: int | None = None
    samples_per_epoch: int | None = None
    token_id_bytes: int = 4
    optimizer_flops_per_param: int = ADAMW_FLOPS_PER_PARAM
    upload_noise: float = 0.0
    upload_rotation: bool = False

    def __post_init__(self) -> None:
        shape = get_model(self.model) if isinstance(self.model, str) else self.model
        object.__setattr__(self, "_shape", shape)
        for name, allowed in (("killed_policy", KILLED_POLICIES), ("head_placement", HEAD_PLACEMENTS),
                              ("exchange", EXCHANGES)):
            if getattr(self, name) not in allowed:
                raise InputError(f"{name} {getattr(self, name)!r} is not allowed; allowed: {', '.join(allowed)}")
        if self.split_lora not in SPLIT_LORA_SIDES:
            raise InputError(f"split_lora {self.split_lora!r} is not allowed; allowed: {', '.join(SPLIT_LORA_SIDES)}")
        if not 1 <= self.split_blocks < shape.n_layers:
            raise InputError(f"split_blocks must be in 1..{shape.n_layers - 1} (the {shape.name} blocks), "
                             f"got {self.split_blocks}")
        for name in ("batch", "seq_len", "steps", "dtype_bytes", "kr_interval_steps", "token_id_bytes",
                     "fed_round_steps"):
            if int(getattr(self, name)) <= 0:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("kr_warmup_rounds", "optimizer_flops_per_param"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 1 <= self.loss_tokens_per_sample <= self.seq_len:
            raise InputError(f"loss_tokens_per_sample must be in 1..seq_len ({self.seq_len}), "
                             f"got {self.loss_tokens_per_sample}")
        if self.weight_dtype_bytes is not None and not (math.isfinite(self.weight_dtype_bytes)
                                                        and 0 < self.weight_dtype_bytes <= 8):
            raise InputError(f"weight_dtype_bytes must be in (0, 8], got {self.weight_dtype_bytes}")
        for name in ("probe_batch", "head_out_dim", "samples_per_epoch"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InputError(f"{name} must be a positive integer, got {value}")
        n = self.table.n_modules
        if not 1 <= self.budget <= n:
            raise InputError(f"budget {self.budget} is out of range; allowed: 1..{n} "
                             f"(the {self.shape.name} {self.peft.method} module count)")
        if not (math.isfinite(self.upload_noise) and self.upload_noise >= 0):
            raise InputError(f"upload_noise must be a finite number >= 0, got {self.upload_noise}")
        if not (math.isfinite(self.kr_churn) and self.kr_churn >= 0):
            raise InputError(f"kr_churn must be a finite number >= 0, got {self.kr_churn}")

    @property
    def shape(self) -> ModelShape:
        return self._shape  # type: ignore[attr-defined]

    @cached_property
    def table(self) -> ModuleTable:
        return module_table(self.shape, self.peft)

    @property
    def weight_bytes_per_param(self) -> float:
        """Bytes per frozen base weight (``weight_dtype_bytes``, else ``dtype_bytes``)."""
        return float(self.dtype_bytes if self.weight_dtype_bytes is None else self.weight_dtype_bytes)

    @property
    def tokens(self) -> int:
        return self.batch * self.seq_len

    @property
    def loss_tokens(self) -> int:
        return self.batch * self.loss_tokens_per_sample

    @property
    def probe_samples(self) -> int:
        return self.batch if self.probe_batch is None else self.probe_batch

    @property
    def steps_per_epoch(self) -> int:
        if self.samples_per_epoch is None:
            return self.steps
        return math.ceil(self.samples_per_epoch / self.batch)

