"""PEFT methods and the module table: which small trainable modules a model gets, and their cost.

A PEFT *module* is the unit Kill-and-Revive switches on and off and the unit of one DLoRA
exchange: the cloud sends the module's input (``d_in`` values per token) to the edge and gets the
module's output contribution (``d_out`` values per token) back.

- LoRA (rank r) on a linear layer ``d_in -> d_out``: ``A: d_in -> r``, ``B: r -> d_out``.
  Forward ``2 r (d_in + d_out)`` FLOPs per token; backward = weight gradients + input
  gradients = twice that. Targets use generic names (q, k, v, o, gate, up, down) mapped to
  each model's own layer names.
- Bottleneck Adapter (Houlsby) of size m after attention (``attn``) and/or after the FFN
  (``ffn``): ``d -> m -> d``. Forward ``4 d m`` FLOPs per token, backward twice that.
- IA3: a learned vector that scales the output of k and v (``d_kv`` wide) and the input of the
  FFN down projection (``d_ff`` wide), as peft does. Elementwise: forward ``dim`` FLOPs per token
  (one multiply each), backward ``2 dim`` (input and weight gradient). FlopCounterMode would
  count 0 for these, since it only counts matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlora_sim.cost.models import ModelShape
from dlora_sim.errors import InputError

PEFT_METHODS = ("lora", "adapter", "ia3")
DEFAULT_TARGETS = {"lora": ("q", "k", "v", "o"), "adapter": ("attn", "ffn"), "ia3": ("k", "v", "down")}

# generic target -> (module path inside block i, formatted with i) per naming family
_LAYER_NAMES = {
    "llama": {
        "q": "model.layers.{i}.self_attn.q_proj", "k": "model.layers.{i}.self_attn.k_proj",
        "v": "model.layers.{i}.self_attn.v_proj", "o": "model.layers.{i}.self_attn.o_proj",
        "gate": "model.layers.{i}.mlp.gate_proj", "up": "model.layers.{i}.mlp.up_proj",
        "down": "model.layers.{i}.mlp.down_proj",
    },
    "opt": {
        "q": "model.decoder.layers.{i}.self_attn.q_proj", "k": "model.decoder.layers.{i}.self_attn.k_proj",
        "v": "model.decoder.layers.{i}.self_attn.v_proj", "o": "model.decoder.layers.{i}.self_attn.out_proj",
        "up": "model.decoder.layers.{i}.fc1", "down": "model.decoder.layers.{i}.fc2",
    },
    "bert": {
        "q": "encoder.layer.{i}.attention.self.query", "k": "encoder.layer.{i}.attention.self.key",
        "v": "encoder.layer.{i}.attention.self.value", "o": "encoder.layer.{i}.attention.output.dense",
        "up": "encoder.layer.{i}.intermediate.dense", "down": "encoder.layer.{i}.output.dense",
    },
}
_ADAPTER_AFTER = {"attn": "o", "ffn": "down"}  # adapter placement: after this linear layer
# LoRA targets that read one tensor: the attention input (q, k, v) and the FFN input (gate, up)
_SHARED_INPUT = {"q": "attn-in", "k": "attn-in", "v": "attn-in", "gate": "ffn-in", "up": "ffn-in"}


@dataclass(frozen=True)
class PeftSpec:
    """Which PEFT method, how big, and where.

    Args:
        method: ``"lora"``, ``"adapter"`` or ``"ia3"``.
        rank: LoRA rank r (used by lora).
        targets: generic target names; ``None`` -> the method's default
            (lora: q,k,v,o; adapter: attn,ffn; ia3: k,v,down).
        adapter_size: bottleneck width m (used by adapter).
    """

    method: str = "lora"
    rank: int = 8
    targets: tuple[str, ...] | None = None
    adapter_size: int = 64

    def __post_init__(self) -> None:
        if self.method not in PEFT_METHODS:
            raise InputError(f"unknown peft method {self.method!r}; allowed: {', '.join(PEFT_METHODS)}")
        if self.rank <= 0:
            raise InputError(f"rank {self.rank} is not allowed; allowed: a positive integer")
        if self.adapter_size <= 0:
            raise InputError(f"adapter_size {self.adapter_size} is not allowed; allowed: a positive integer")
        targets = DEFAULT_TARGETS[self.method] if self.targets is None else tuple(self.targets)
        if not targets:
            raise InputError("targets: at least one target is needed")
        if len(set(targets)) != len(targets):
            raise InputError(f"targets: duplicate names in {','.join(targets)}")
        object.__setattr__(self, "targets", targets)

    @property
    def size(self) -> int:
        """The method's size knob: rank for LoRA, bottleneck width for Adapter, 1 for IA3."""
        return {"lora": self.rank, "adapter": self.adapter_size, "ia3": 1}[self.method]


@dataclass(frozen=True, eq=False)
class ModuleTable:
    """One row per PEFT module, in execution order (block by block, forward direction).

    All per-token FLOPs follow 1 MAC = 2 FLOPs. ``bwd_input_flops_per_token`` is the part of the
    backward that a *frozen* copy of the module still needs (the input gradient) — what the cloud
    runs for a killed module under the ``offload`` policy. Modules with the same ``input_group``
    read the same input tensor (LoRA on q, k and v of one layer; on gate and up), so a careful
    protocol sends that input once and sums their input gradients (``JobSpec.share_inputs``).
    """

    name: tuple[str, ...]
    layer: np.ndarray
    kind: tuple[str, ...]
    d_in: np.ndarray
    d_out: np.ndarray
    params: np.ndarray
    fwd_flops_per_token: np.ndarray
    bwd_flops_per_token: np.ndarray
    bwd_input_flops_per_token: np.ndarray
    input_group: np.ndarray

    def __len__(self) -> int:
        return len(self.name)

    @property
    def n_modules(self) -> int:
        return len(self.name)

    def means(self, active: np.ndarray | None = None) -> dict[str, float]:
        """Mean per-module quantities over all modules, or over those where ``active`` is True."""
        sel = slice(None) if active is None else np.asarray(active, dtype=bool)
        cols = ("d_in", "d_out", "params", "fwd_flops_per_token", "bwd_flops_per_token",
                "bwd_input_flops_per_token")
        return {c: float(np.mean(getattr(self, c)[sel])) for c in cols}


def allowed_targets(model: ModelShape, method: str) -> tuple[str, ...]:
    """Generic target names that ``method`` accepts on ``model``."""
    if method == "adapter":
        return tuple(_ADAPTER_AFTER)
    return tuple(model.linear_shapes())


def module_table(model: ModelShape, peft: PeftSpec) -> ModuleTable:
    """Build the PEFT module table of ``model`` under ``peft``.

    Raises:
        InputError: a target the model does not have (message lists the allowed ones).
    """
    allowed = allowed_targets(model, peft.method)
    for t in peft.targets:
        if t not in allowed:
            raise InputError(
                f"unknown {peft.method} target {t!r} for model {model.name}; allowed: {', '.join(allowed)}")
    shapes = model.linear_shapes()
    order = [t for t in (*shapes, "attn", "ffn") if t in peft.targets]  # execution order in a block
    if peft.method == "adapter":  # adapters sit after o and after down
        order = sorted(order, key=lambda t: list(shapes).index(_ADAPTER_AFTER[t]))
    rows: list[tuple] = []
    groups: list[tuple[int, str]] = []
    names = _LAYER_NAMES[model.family]
    for i in range(model.n_layers):
        for t in order:
            rows.append(_row(model, peft, t, i, names))
            groups.append((i, _SHARED_INPUT.get(t, t) if peft.method == "lora" else t))
    group_ids = {g: n for n, g in enumerate(dict.fromkeys(groups))}
    cols = list(zip(*rows))
    as_int = lambda c: np.asarray(c, dtype=np.int64)  # noqa: E731
    return ModuleTable(
        name=tuple(cols[0]), layer=as_int(cols[1]), kind=tuple(cols[2]), d_in=as_int(cols[3]),
        d_out=as_int(cols[4]), params=as_int(cols[5]), fwd_flops_per_token=as_int(cols[6]),
        bwd_flops_per_token=as_int(cols[7]), bwd_input_flops_per_token=as_int(cols[8]),
        input_group=as_int([group_ids[g] for g in groups]),
    )


def _row(model: ModelShape, peft: PeftSpec, target: str, i: int, names: dict[str, str]) -> tuple:
    """(name, layer, kind, d_in, d_out, params, fwd, bwd, bwd_input) of one module."""
    if peft.method == "lora":
        d_in, d_out = model.linear_shapes()[target]
        r = peft.rank
        fwd = 2 * r * (d_in + d_out)
        return (f"{names[target].format(i=i)}.lora", i, target, d_in, d_out, r * (d_in + d_out),
                fwd, 2 * fwd, fwd)
    if peft.method == "adapter":
        d, m = model.d_model, peft.adapter_size
        fwd = 4 * d * m
        base = names[_ADAPTER_AFTER[target]].format(i=i)
        return (f"{base}.adapter", i, f"adapter-{target}", d, d, 2 * d * m + d + m, fwd, 2 * fwd, fwd)
    # ia3: scales the output of a linear layer, or the input of the FFN down projection
    d_in, d_out = model.linear_shapes()[target]
    dim = d_in if target == "down" else d_out
    return (f"{names[target].format(i=i)}.ia3", i, target, dim, dim, dim, dim, 2 * dim, dim)
