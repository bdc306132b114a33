"""The DLoRA step as round trips: byte formulas, round-trip counts, KR's own costs."""

import dataclasses

import numpy as np
import pytest

from dlora_sim.cost import (
    STRATEGIES,
    JobSpec,
    PeftSpec,
    StepCost,
    job_totals,
    kr_round_exchanges,
    kr_schedule,
    offloaded_module_bytes,
    probe_exchanges,
    step_cost,
    step_exchanges,
)

PAPER = JobSpec(model="llama-7b", peft=PeftSpec("lora", rank=8, targets=("q", "k", "v", "o")), budget=16)
VARIANTS = [
    {}, {"killed_policy": "edge-forward"}, {"head_placement": "cloud"}, {"exchange": "weights"},
    {"exchange": "weights", "head_placement": "cloud"}, {"exchange": "weights", "killed_policy": "edge-forward"},
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_exchanges_sum_to_step_cost(variant, strategy):
    """step_cost is exactly the sum of step_exchanges, for every strategy and protocol option."""
    job = dataclasses.replace(PAPER, **variant)
    exchanges = step_exchanges(job, strategy)
    cost = step_cost(job, strategy)
    assert cost == StepCost.of(exchanges)
    assert cost.round_trips == sum(e.round_trips for e in exchanges)


def test_paper_module_traffic_falls_by_seven_eighths():
    """LLaMA-7B, B=16 of 128, offload: per-module traffic falls by exactly 1 - 16/128."""
    unshared = dataclasses.replace(PAPER, share_inputs=False)
    all_ = step_cost(unshared, "dlora-all")
    kr = step_cost(unshared, "dlora-kr")
    assert 1 - kr.module_bytes / all_.module_bytes == pytest.approx(0.875, abs=1e-12)
    # fixed traffic (embeddings up, loss-token hidden states and their gradient) is in both arms
    fixed = PAPER.tokens * 4096 * 2 + 2 * PAPER.loss_tokens * 4096 * 2
    assert all_.bytes_total - all_.module_bytes == fixed
    assert 1 - kr.bytes_total / all_.bytes_total < 0.875


def test_activation_bytes_follow_design_formula():
    """Per active module and token: d_in down + d_out up (forward), d_out down + d_in up (backward)."""
    one = step_cost(PAPER, "dlora-kr", n_active=1)
    two = step_cost(PAPER, "dlora-kr", n_active=2)
    per_module = two.bytes_total - one.bytes_total
    assert per_module == PAPER.tokens * 2 * (4096 + 4096) * PAPER.dtype_bytes
    assert two.round_trips - one.round_trips == 2


def test_round_trips_per_step():
    """Activations, head on edge: 2 per active module + start + head = 2B + 2 (34 for B=16); with
    every module active and q, k, v sharing their input, 2 per input group (2 a layer) + 2."""
    assert step_cost(PAPER, "dlora-kr").round_trips == 34
    assert step_cost(dataclasses.replace(PAPER, share_inputs=False), "dlora-all").round_trips == 258
    assert step_cost(PAPER, "dlora-all").round_trips == 2 * 2 * 32 + 2
    assert step_cost(dataclasses.replace(PAPER, head_placement="cloud"), "dlora-kr").round_trips == 33


def test_shared_inputs_cross_once_per_layer():
    """q, k and v read one input: all-modules moves 12 tensors a layer (q,k,v,o outputs up, two
    inputs down; the same back), not 16; a partial set shares nothing."""
    shared, unshared = step_cost(PAPER, "dlora-all"), step_cost(dataclasses.replace(PAPER, share_inputs=False), "dlora-all")
    tensor = PAPER.tokens * 4096 * PAPER.dtype_bytes
    assert shared.module_bytes == 32 * 12 * tensor and unshared.module_bytes == 32 * 16 * tensor
    assert step_cost(PAPER, "dlora-kr") == step_cost(dataclasses.replace(PAPER, share_inputs=False), "dlora-kr")


def test_weights_exchange_matches_design_example():
    """b*T = 256 tokens, fp16, r=8, B=16: activations move ~134 MB, weights ~4 MB in 1-2 round trips."""
    job = dataclasses.replace(PAPER, batch=1, seq_len=256)
    act = step_cost(job, "dlora-kr")
    assert act.module_bytes == 2 * 16 * 256 * 8192 * 2  # 134,217,728 B
    w = step_cost(dataclasses.replace(job, exchange="weights"), "dlora-kr")
    assert w.module_bytes == 2 * 16 * 65536 * 2  # 4,194,304 B: up weights, down gradients
    assert w.round_trips == 2  # start + the head round trip (head on the device)
    wc = step_cost(dataclasses.replace(job, exchange="weights", head_placement="cloud"), "dlora-kr")
    assert wc.round_trips == 1
    longer = step_cost(dataclasses.replace(job, exchange="weights", seq_len=1024), "dlora-kr")
    assert longer.module_bytes == w.module_bytes  # independent of sequence length


def test_edge_forward_keeps_killed_forward_traffic():
    """edge-forward: killed modules still cost a forward exchange each, no backward, no upload."""
    job = dataclasses.replace(PAPER, killed_policy="edge-forward", share_inputs=False)
    kr = step_cost(job, "dlora-kr")
    assert kr.round_trips == 2 + 128 + 16
    assert kr.module_bytes == job.tokens * 2 * (128 + 16) * 4096 * 2
    assert offloaded_module_bytes(job) == 0
    assert offloaded_module_bytes(PAPER) == 65536 * 2


def test_offload_moves_killed_work_to_the_cloud():
    """offload: the cloud runs the killed modules frozen (forward + input gradient)."""
    all_ = step_cost(PAPER, "dlora-all")
    kr = step_cost(PAPER, "dlora-kr")
    lora_fwd = 2 * 8 * 8192
    extra = PAPER.tokens * 112 * (lora_fwd + lora_fwd)
    assert kr.cloud_flops - all_.cloud_flops == pytest.approx(extra, rel=1e-9)


def test_active_mask_gives_table_order_exchanges():
    """With an explicit active set, exchanges name those modules, forward in order, backward reversed."""
    mask = np.zeros(128, dtype=bool)
    mask[[5, 70]] = True
    names = [e.name for e in step_exchanges(PAPER, "dlora-kr", active=mask)]
    t = PAPER.table
    assert names == ["start", f"fwd:{t.name[5]}", f"fwd:{t.name[70]}", "head",
                     f"bwd:{t.name[70]}", f"bwd:{t.name[5]}"]
    assert step_cost(PAPER, "dlora-kr", active=mask) == step_cost(PAPER, "dlora-kr", n_active=2)


def test_probe_moves_every_module_and_skips_the_optimizer():
    """KR's probe is a forward+backward through all 128 modules (killed ones too) without update."""
    probe = StepCost.of(probe_exchanges(PAPER))
    all_ = step_cost(PAPER, "dlora-all")
    assert probe.module_bytes == all_.module_bytes
    assert probe.round_trips == all_.round_trips
    assert probe.edge_flops == pytest.approx(all_.edge_flops - PAPER.optimizer_flops_per_param * 128 * 65536)


def test_a_kr_round_prices_its_probe_norms_and_kill_uploads():
    """The cut round kills 112 modules: one round trip carrying their weights, and the norms of all
    128; a later round probes (a full all-modules exchange) and computes 16 + 128 norms."""
    rounds = kr_schedule(PAPER, "dlora-kr").rounds
    cut, later = rounds[1], rounds[2]
    assert (cut.kills, cut.probe, later.probe) == (112, False, True)
    cut_cost = StepCost.of(kr_round_exchanges(PAPER, cut))
    assert cut_cost.bytes_up == 112 * 65536 * 2 and cut_cost.round_trips == 1
    assert cut_cost.edge_flops == 2 * 65536 * 128
    later_cost = StepCost.of(kr_round_exchanges(PAPER, later))
    probe = StepCost.of(probe_exchanges(PAPER))
    assert later_cost.bytes_total == pytest.approx(probe.bytes_total + later.kills * 65536 * 2)
    assert later_cost.edge_flops == pytest.approx(probe.edge_flops + 2 * 65536 * (16 + 128))


def test_job_kr_costs_lower_the_job_reduction():
    """Over a job, KR's probes, norms, uploads and warm-up make the saving smaller than per step."""
    all_ = job_totals(PAPER, "dlora-all")
    kr = job_totals(PAPER, "dlora-kr")
    assert kr["kr_bytes"] > 0 and kr["kr_edge_flops"] > 0
    job_red = 1 - (kr["bytes_up"] + kr["bytes_down"]) / (all_["bytes_up"] + all_["bytes_down"])
    assert job_red < 0.875
    steady = dataclasses.replace(PAPER, kr_warmup_rounds=0, kr_churn=0, probe_batch=None)
    assert job_totals(steady, "dlora-kr")["kr_bytes"] > 0  # probes remain


def test_cloud_only_and_edge_only_do_the_same_work():
    """Cloud-only and edge-only run the same full step, on opposite sides."""
    c, e = step_cost(PAPER, "cloud-only"), step_cost(PAPER, "edge-only")
    assert c.cloud_flops == e.edge_flops and c.edge_flops == e.cloud_flops == 0
    assert e.round_trips == 0 and e.bytes_total == 0
