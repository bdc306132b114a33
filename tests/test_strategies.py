"""Each strategy's step, checked against a hand computation from the model shape (LLaMA-7B)."""

from __future__ import annotations

import dataclasses

import pytest

from dlora_sim.cost import (
    EXPOSURES,
    STRATEGIES,
    JobSpec,
    PeftSpec,
    edge_weight_bytes,
    get_device,
    get_strategy,
    job_totals,
    setup_bytes_down,
    step_cost,
    sync_rounds,
)

PAPER = JobSpec(model="llama-7b", peft=PeftSpec("lora", rank=8, targets=("q", "k", "v", "o")), budget=16)
D, FF, L, T, TOKENS, VOCAB = 4096, 11008, 32, 256, 4 * 256, 32000
BLOCK_MACS = 4 * D * D + 3 * D * FF  # q, k, v, o and SwiGLU gate, up, down
BLOCK_FWD = 2 * BLOCK_MACS + 4 * T * D  # per token: linears + attention scores and values
BLOCK_BWD = 2 * BLOCK_MACS + 8 * T * D  # input gradients only (frozen)
LORA_FWD, LORA_PARAMS = 2 * 8 * (D + D), 8 * (D + D)  # one r=8 module on a 4096x4096 layer
HEAD = 4 * D * VOCAB  # forward + input gradient of the LM head, per loss token (4 a step)


def test_every_strategy_states_the_whole_interface():
    """Registered strategies have a name, a summary, an exchange list, and see only known things."""
    for name in STRATEGIES:
        strategy = get_strategy(name)
        assert strategy.name == name and strategy.summary
        assert step_cost(PAPER, name).edge_flops >= 0
        assert set(strategy.cloud_sees(PAPER)) <= set(EXPOSURES)


def test_split_lora_moves_the_cut_activations_once_each_way():
    """k = 1, head on the device: up the cut activations and the loss tokens' hidden-state gradient,
    down the final hidden states and the cut gradient; the device runs block 0 and its 4 modules."""
    step = step_cost(PAPER, "split-lora")
    cut, hidden = TOKENS * D * 2, 4 * D * 2
    assert step.bytes_up == cut + hidden and step.bytes_down == hidden + cut
    assert step.round_trips == 2
    edge = TOKENS * (BLOCK_FWD + BLOCK_BWD + 4 * 3 * LORA_FWD) + 4 * HEAD + 16 * 4 * LORA_PARAMS
    assert step.edge_flops == pytest.approx(edge, rel=1e-12)
    deeper = step_cost(dataclasses.replace(PAPER, split_blocks=4), "split-lora")
    assert deeper.bytes_total == step.bytes_total and deeper.edge_flops > step.edge_flops


def test_split_lora_with_the_head_in_the_cloud_is_one_round_trip_and_shows_labels():
    job = dataclasses.replace(PAPER, head_placement="cloud", split_lora="edge")
    step = step_cost(job, "split-lora")
    assert step.round_trips == 1
    assert step.bytes_up == TOKENS * D * 2 + 4 * 4
    seen = get_strategy("split-lora").cloud_sees(job)
    assert "labels" in seen and "module weights" not in seen


def test_fed_lora_trains_locally_and_ships_the_lora_weights_every_round():
    """Each step is edge-only's; every 50 steps the 128 modules' weights go up and their average down."""
    job = JobSpec(model="llama-7b", budget=16, steps=1000)
    assert step_cost(job, "fed-lora") == step_cost(job, "edge-only")
    weights = 128 * LORA_PARAMS * 2
    assert sync_rounds(job, "fed-lora") == 20
    totals, local = job_totals(job, "fed-lora"), job_totals(job, "edge-only")
    assert totals["bytes_up"] - local["bytes_up"] == 20 * weights
    assert totals["round_trips"] - local["round_trips"] == 20


def test_a_4_bit_base_fits_the_phone_that_fp16_does_not():
    """LLaMA-7B has 6.74e9 weights with its untied head: 13.5 GB in fp16, 3.4 GB in 4 bits."""
    params = L * BLOCK_MACS + 2 * VOCAB * D
    assert setup_bytes_down(PAPER, "edge-only") == params * 2
    assert setup_bytes_down(PAPER, "edge-only-int4") == params * 0.5
    phone = get_device("phone-mid").memory_bytes
    assert edge_weight_bytes(PAPER, "edge-only") > phone > edge_weight_bytes(PAPER, "edge-only-int4")
    assert step_cost(PAPER, "edge-only-int4") == step_cost(PAPER, "edge-only")


def test_the_lm_head_is_counted_only_where_the_model_has_its_own():
    """OPT-6.7B ties its head to the embedding; MiniLM has none."""
    def params(model: str) -> int:
        return JobSpec(model=model, budget=1).shape.base_params()
    opt = JobSpec(model="opt-6.7b", budget=1).shape
    assert params("opt-6.7b") == opt.n_layers * opt.block_linear_macs() + opt.vocab * opt.d_model
    assert params("llama-7b") == L * BLOCK_MACS + 2 * VOCAB * D


def test_dlora_offload_shows_the_cloud_module_weights():
    """Under offload the killed modules' weights are uploaded: the cloud sees module weights."""
    assert "module weights" in get_strategy("dlora-kr").cloud_sees(PAPER)
    assert "module weights" not in get_strategy("dlora-kr").cloud_sees(
        dataclasses.replace(PAPER, killed_policy="edge-forward"))
    assert "module weights" not in get_strategy("dlora-all").cloud_sees(PAPER)


def test_results_and_dashboard_say_what_the_cloud_sees(tmp_path):
    """summary.json carries each strategy's exposures, and the dashboard tabulates them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _sim_scenarios import small

    from dlora_sim.report.dashboard import build_dashboard
    from dlora_sim.sim import simulate
    from dlora_sim.sim.results import write_results

    result = simulate(small({"fleet.groups.0.count": 1, "job.steps": 12,
                             "run.strategies": ["dlora-all", "dlora-kr", "cloud-only", "split-lora"]}))
    assert result.strategy("cloud-only")["cloud_sees"][0] == "raw text"
    assert "module weights" in result.strategy("dlora-kr")["cloud_sees"]
    write_results(result, tmp_path / "run")
    page = build_dashboard(tmp_path / "run", tmp_path / "run.html").read_text(encoding="utf-8")
    assert "What the cloud sees" in page and "token embeddings" in page
