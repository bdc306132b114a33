"""The vectorised CostModel agrees with the plain per-point code and hits the paper's figures."""

import dataclasses

import numpy as np
import pytest

from dlora_sim.cost import (
    STRATEGIES,
    CostModel,
    JobSpec,
    PeftSpec,
    get_device,
    get_gpu,
    get_link,
    grid,
    job_totals,
    priced,
    step_cost,
)
from dlora_sim.errors import InputError

PAPER = JobSpec(model="llama-7b", peft=PeftSpec("lora", rank=8, targets=("q", "k", "v", "o")), budget=16)


def test_paper_headline_ratios():
    """LLaMA-7B, LoRA r=8 q,k,v,o, B=16, offload: 0.875 per step; the job saves less, because every
    module trains for two KR windows (100 of 1000 steps) before the first cut, and probes cost;
    without warm-up the job's edge-FLOP saving comes within reach of the paper's 82%."""
    h = {k: float(v) for k, v in CostModel(PAPER).evaluate().headline.items()}
    assert h["unshared_comm_bytes_reduction"] == pytest.approx(0.875, abs=1e-12)
    # q, k, v share their input: the all-modules step moves 12 tensors a layer, not 16
    assert h["comm_bytes_reduction"] == pytest.approx(1 - 16 * 4 / (32 * 12), abs=1e-12)
    assert h["step_total_bytes_reduction"] < h["comm_bytes_reduction"]
    assert h["job_comm_bytes_reduction"] < h["step_total_bytes_reduction"]
    assert 0.70 <= h["edge_flops_reduction"] < h["step_edge_flops_reduction"]
    early = CostModel(dataclasses.replace(PAPER, kr_warmup_rounds=0)).evaluate().headline
    assert h["edge_flops_reduction"] < float(early["edge_flops_reduction"]) <= 0.82


@pytest.mark.parametrize("variant", [
    {}, {"killed_policy": "edge-forward"}, {"head_placement": "cloud"}, {"exchange": "weights"},
    {"peft": PeftSpec("adapter", adapter_size=32), "budget": 8}, {"peft": PeftSpec("ia3"), "budget": 12},
    {"model": "tinyllama-1.1b", "peft": PeftSpec("lora", targets=("q", "k", "v", "o", "down"))},
    {"samples_per_epoch": 1000, "steps": 777, "kr_warmup_rounds": 2, "probe_batch": 1},
])
def test_grid_equals_per_point_loop(variant):
    """Every point of a grid equals job_totals/priced computed one point at a time."""
    job = dataclasses.replace(PAPER, **variant)
    sizes = [job.peft.size] if job.peft.method == "ia3" else [job.peft.size, 2 * job.peft.size]
    g = grid(budget=[1, job.budget], seq_len=[64, 256], size=sizes, link=["3g", "fibre"],
             device=["phone-low", "jetson"])
    table = CostModel(job, gpu="h100").evaluate(**g)
    for i in range(len(g["budget"])):
        size = int(g["size"][i])
        peft = job.peft
        peft = dataclasses.replace(peft, rank=size) if peft.method == "lora" else (
            dataclasses.replace(peft, adapter_size=size) if peft.method == "adapter" else peft)
        point = dataclasses.replace(job, budget=int(g["budget"][i]), seq_len=int(g["seq_len"][i]), peft=peft)
        for s in STRATEGIES:
            ref = job_totals(point, s)
            ref.update(priced(ref, get_device(g["device"][i]), get_link(g["link"][i]), get_gpu("h100")))
            for m in ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "module_bytes",
                      "kr_bytes", "warmup_extra_bytes", "warmup_extra_edge_flops", "edge_s", "energy_j",
                      "radio_energy_j", "device_energy_j",
                      "link_s", "cloud_gpu_s", "usd", "time_s"):
                assert table.values[s][f"job_{m}"][i] == pytest.approx(ref[m], rel=1e-9), (s, m)
            st = step_cost(point, s)
            assert table.values[s]["step_edge_flops"][i] == pytest.approx(st.edge_flops, rel=1e-9)
            assert table.values[s]["step_round_trips"][i] == st.round_trips


def test_reductions_against_baseline():
    """Reductions are 1 - x / dlora-all, zero for the baseline itself."""
    t = CostModel(dataclasses.replace(PAPER, share_inputs=False)).evaluate(budget=np.array([16, 128]))
    assert np.allclose(t.reductions["dlora-all"]["job_edge_flops"], 0.0)
    kr = t.reductions["dlora-kr"]["step_module_bytes"]
    assert kr[0] == pytest.approx(0.875) and kr[1] == pytest.approx(0.0)


def test_epoch_is_job_scaled():
    """Per-epoch totals are the job totals times steps_per_epoch / steps."""
    job = dataclasses.replace(PAPER, samples_per_epoch=2000, steps=1000)  # 500 steps per epoch
    v = CostModel(job).evaluate().values["dlora-kr"]
    assert float(v["epoch_bytes_total"]) == pytest.approx(float(v["job_bytes_total"]) / 2)


def test_edge_only_llama_does_not_fit_a_phone():
    """A 7B model's fp16 weights exceed a mid phone's memory; DLoRA's edge share fits."""
    v = CostModel(PAPER, device="phone-mid").evaluate().values
    assert not bool(v["edge-only"]["fits_on_device"])
    assert bool(v["dlora-kr"]["fits_on_device"])


def test_same_inputs_same_numbers():
    """The evaluation is deterministic."""
    a = CostModel(PAPER).evaluate(budget=np.arange(1, 129))
    b = CostModel(PAPER).evaluate(budget=np.arange(1, 129))
    for s in STRATEGIES:
        for k in a.values[s]:
            assert np.array_equal(a.values[s][k], b.values[s][k])


@pytest.mark.parametrize("params, needle", [
    ({"budget": [16, 200]}, "budget 200 is out of range; allowed: 1..128"),
    ({"link": ["lte", "dialup"]}, "unknown link 'dialup'; allowed: 3g, lte, 5g, wifi, fibre"),
    ({"rank": [-1]}, "size must be positive"),
    ({"colour": [1]}, "unknown grid field 'colour'"),
])
def test_grid_rejects_bad_values(params, needle):
    """Bad grid values raise InputError naming the value and the allowed ones."""
    with pytest.raises(InputError) as info:
        CostModel(PAPER).evaluate(**params)
    assert needle in str(info.value)


def test_radio_energy_follows_the_linear_power_model():
    """Radio energy = W/Mbps up x Mbit up + W/Mbps down x Mbit down + active W x link seconds."""
    v = CostModel(PAPER, link="lte").evaluate().values["dlora-kr"]
    lte = get_link("lte")
    want = (lte.up_w_per_mbps * float(v["job_bytes_up"]) * 8e-6 + lte.down_w_per_mbps * float(v["job_bytes_down"]) * 8e-6
            + lte.active_w * float(v["job_link_s"]))
    assert float(v["job_radio_energy_j"]) == pytest.approx(want, rel=1e-12)
    assert float(v["job_device_energy_j"]) == pytest.approx(want + float(v["job_energy_j"]), rel=1e-12)


def test_an_unset_probe_batch_follows_the_batch_on_a_grid():
    """evaluate(batch=1) with no probe batch given probes with 1 sample, as JobSpec does."""
    table = CostModel(PAPER).evaluate(batch=np.array([1, 4]))
    for i, batch in enumerate((1, 4)):
        ref = job_totals(dataclasses.replace(PAPER, batch=batch), "dlora-kr")
        assert table.values["dlora-kr"]["job_edge_flops"][i] == pytest.approx(ref["edge_flops"], rel=1e-12)
