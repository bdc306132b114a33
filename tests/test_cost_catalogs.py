"""Catalogs, module tables and job validation of the cost model."""

import pytest

from dlora_sim.cost import (
    DEVICES,
    GPUS,
    LINKS,
    MODELS,
    JobSpec,
    PeftSpec,
    get_device,
    get_gpu,
    get_link,
    get_model,
    module_table,
)
from dlora_sim.errors import InputError


@pytest.mark.parametrize("getter, catalog, kind", [
    (get_model, MODELS, "model"), (get_device, DEVICES, "device"),
    (get_link, LINKS, "link"), (get_gpu, GPUS, "gpu"),
])
def test_unknown_name_lists_allowed(getter, catalog, kind):
    """An unknown catalog name raises InputError naming the bad value and every allowed one."""
    with pytest.raises(InputError) as info:
        getter("nope")
    message = str(info.value)
    assert f"unknown {kind} 'nope'" in message
    assert all(name in message for name in catalog)
    assert "\n" not in message


def test_required_catalog_entries_exist():
    """The issue's catalog entries are all present."""
    assert {"llama-7b", "llama-13b", "llama-2-7b", "opt-6.7b", "minilm-l6"} <= set(MODELS)
    assert {"phone-low", "phone-mid", "phone-high", "laptop", "jetson"} <= set(DEVICES)
    assert {"3g", "lte", "5g", "wifi", "fibre"} <= set(LINKS)
    assert {"a100", "h100"} <= set(GPUS)


def test_minilm_shape_matches_issue():
    """MiniLM-L6: 6 layers, d=384, 12 heads, ffn 1536, vocab 30522, plain GELU FFN."""
    m = get_model("minilm-l6")
    assert (m.n_layers, m.d_model, m.n_heads, m.d_ff, m.vocab, m.ffn) == (6, 384, 12, 1536, 30522, "gelu")


def test_llama7b_lora_qkvo_has_128_square_modules():
    """LLaMA-7B with LoRA r=8 on q,k,v,o: 128 modules of 4096x4096, 65,536 parameters each."""
    t = module_table(get_model("llama-7b"), PeftSpec("lora", rank=8, targets=("q", "k", "v", "o")))
    assert t.n_modules == 128
    assert set(t.d_in.tolist()) == {4096} and set(t.d_out.tolist()) == {4096}
    assert set(t.params.tolist()) == {65536}
    assert t.name[0] == "model.layers.0.self_attn.q_proj.lora"
    assert (t.bwd_flops_per_token == 2 * t.fwd_flops_per_token).all()


def test_model_naming_families():
    """Targets map onto each model's own layer names (BERT, OPT) and GQA shrinks k/v."""
    bert = module_table(get_model("minilm-l6"), PeftSpec("lora", targets=("o", "up")))
    assert bert.name[:2] == ("encoder.layer.0.attention.output.dense.lora", "encoder.layer.0.intermediate.dense.lora")
    opt = module_table(get_model("opt-6.7b"), PeftSpec("lora", targets=("o",)))
    assert opt.name[0].endswith("self_attn.out_proj.lora")
    tiny = module_table(get_model("tinyllama-1.1b"), PeftSpec("lora", targets=("k",)))
    assert tiny.d_out[0] == 256


def test_adapter_and_ia3_tables():
    """Adapters sit after attention and FFN (d->m->d); IA3 scales k, v and the FFN input."""
    m = get_model("llama-7b")
    ad = module_table(m, PeftSpec("adapter", adapter_size=64))
    assert ad.n_modules == 64 and ad.kind[:2] == ("adapter-attn", "adapter-ffn")
    assert ad.fwd_flops_per_token[0] == 4 * 4096 * 64
    ia3 = module_table(m, PeftSpec("ia3"))
    assert ia3.n_modules == 96 and ia3.d_in.tolist()[:3] == [4096, 4096, 11008]


@pytest.mark.parametrize("kwargs, needle", [
    ({"budget": 129}, "budget 129 is out of range; allowed: 1..128"),
    ({"budget": 0}, "budget 0"),
    ({"peft": None}, None),
    ({"killed_policy": "drop"}, "killed_policy 'drop'"),
    ({"exchange": "gossip"}, "allowed: activations, weights"),
])
def test_jobspec_rejects_bad_values(kwargs, needle):
    """JobSpec validates its fields and names the bad one."""
    if needle is None:
        with pytest.raises(InputError, match="rank -1 is not allowed; allowed: a positive integer"):
            PeftSpec(rank=-1)
        return
    with pytest.raises(InputError) as info:
        JobSpec(**kwargs)
    assert needle in str(info.value)


def test_unknown_target_lists_allowed():
    """A LoRA target the model lacks (gate on a GELU model) is refused with the allowed list."""
    with pytest.raises(InputError, match="allowed: q, k, v, o, up, down"):
        JobSpec(model="minilm-l6", peft=PeftSpec("lora", targets=("q", "gate")), budget=3)


def test_cost_model_imports_without_torch():
    """Importing the cost model pulls in neither torch nor any project area but kr (layering)."""
    import subprocess
    import sys

    code = ("import sys, dlora_sim.cost; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'peft') "
            "or m.startswith(('dlora_sim.sim', 'dlora_sim.profiling', 'dlora_sim.scenario', "
            "'dlora_sim.cli', 'dlora_sim.report', 'dlora_sim.profile'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
