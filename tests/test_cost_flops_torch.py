"""Analytical FLOPs agree with torch's FlopCounterMode on a tiny LLaMA built in code (no download).

Convention on both sides: matrix products only, 1 MAC = 2 FLOPs. The backward pass is run with
the embeddings' output requiring grad so that every block computes its input gradients, which is
what the analytical activation-only backward counts (see docs/cost.md on block 0).
"""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft_lib = pytest.importorskip("peft")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from dlora_sim.cost import (  # noqa: E402
    ModelShape,
    PeftSpec,
    base_backward_flops_per_token,
    base_forward_flops_per_token,
    head_flops_per_loss_token,
    module_table,
)

pytestmark = pytest.mark.torch

BATCH, SEQ = 2, 32
CASES = [  # (n_kv_heads, targets)
    (4, ("q", "k", "v", "o")),
    (2, ("q", "k", "v", "o", "gate", "up", "down")),  # grouped-query attention, FFN targets too
]
PEFT_NAMES = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj",
              "up": "up_proj", "down": "down_proj"}


def _tiny(n_kv_heads: int):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=n_kv_heads, vocab_size=128, max_position_embeddings=SEQ,
        tie_word_embeddings=False, attn_implementation="eager",
    )
    model = transformers.LlamaForCausalLM(config).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    shape = ModelShape("tiny-llama", 2, 64, 4, n_kv_heads, 176, 128, "swiglu", "llama")
    return model, shape


def _measure(model, logits_to_keep: int) -> tuple[int, int]:
    """(forward FLOPs, backward FLOPs) of one step on a random batch."""
    ids = torch.randint(0, 128, (BATCH, SEQ), generator=torch.Generator().manual_seed(1))
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    with FlopCounterMode(display=False) as fwd:
        logits = model(inputs_embeds=embeds, logits_to_keep=logits_to_keep).logits
    with FlopCounterMode(display=False) as bwd:
        logits.float().pow(2).mean().backward()
    return fwd.get_total_flops(), bwd.get_total_flops()


@pytest.mark.parametrize("n_kv_heads", [4, 2])
@pytest.mark.parametrize("loss_tokens", [1, SEQ])
def test_frozen_base_forward_and_backward(n_kv_heads, loss_tokens):
    """Frozen base + head: forward and activation-only backward within 2% of FlopCounterMode."""
    model, shape = _tiny(n_kv_heads)
    measured_fwd, measured_bwd = _measure(model, loss_tokens)
    head_f, head_b = head_flops_per_loss_token(shape)
    tokens = BATCH * SEQ
    fwd = tokens * base_forward_flops_per_token(shape, SEQ) + BATCH * loss_tokens * head_f
    bwd = tokens * base_backward_flops_per_token(shape, SEQ) + BATCH * loss_tokens * head_b
    assert measured_fwd == pytest.approx(fwd, rel=0.02)
    assert measured_bwd == pytest.approx(bwd, rel=0.02)


@pytest.mark.parametrize("n_kv_heads, targets", CASES)
def test_lora_modules_forward_and_backward(n_kv_heads, targets):
    """LoRA modules add their table's forward and (weight + input gradient) backward FLOPs, within 2%."""
    model, shape = _tiny(n_kv_heads)
    base_fwd, base_bwd = _measure(model, 1)
    config = peft_lib.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                 target_modules=[PEFT_NAMES[t] for t in targets])
    lora = peft_lib.get_peft_model(model, config)
    lora_fwd, lora_bwd = _measure(lora, 1)
    table = module_table(shape, PeftSpec("lora", rank=4, targets=targets))
    tokens = BATCH * SEQ
    assert table.n_modules == 2 * len(targets)
    assert lora_fwd - base_fwd == pytest.approx(tokens * table.fwd_flops_per_token.sum(), rel=0.02)
    assert lora_bwd - base_bwd == pytest.approx(tokens * table.bwd_flops_per_token.sum(), rel=0.02)
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert trainable == table.params.sum()
