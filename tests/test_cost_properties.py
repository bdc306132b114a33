"""Properties of the cost model over random valid configurations (hypothesis)."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlora_sim.cost import STRATEGIES, CostModel, JobSpec, PeftSpec, job_totals, step_cost, step_exchanges

MODELS = ["llama-7b", "opt-6.7b", "minilm-l6", "tinyllama-1.1b"]
TARGETS = {"lora": [("q", "k", "v", "o"), ("q", "v"), ("o", "up", "down")], "adapter": [("attn", "ffn"), ("ffn",)],
           "ia3": [("k", "v", "down")]}


@st.composite
def jobs(draw):
    method = draw(st.sampled_from(sorted(TARGETS)))
    peft = PeftSpec(method, rank=draw(st.integers(1, 64)), targets=draw(st.sampled_from(TARGETS[method])),
                    adapter_size=draw(st.integers(1, 128)))
    model = draw(st.sampled_from(MODELS))
    job = JobSpec(model=model, peft=peft, budget=1)
    n = job.table.n_modules
    seq = draw(st.integers(1, 512))
    return dataclasses.replace(
        job, budget=draw(st.integers(1, n)), batch=draw(st.integers(1, 16)), seq_len=seq,
        steps=draw(st.integers(1, 3000)), kr_interval_steps=draw(st.integers(1, 200)),
        kr_warmup_rounds=draw(st.integers(0, 3)), kr_churn=draw(st.floats(0, 4)),
        loss_tokens_per_sample=draw(st.integers(1, seq)),
        killed_policy=draw(st.sampled_from(["offload", "edge-forward"])),
        head_placement=draw(st.sampled_from(["edge", "cloud"])),
        exchange=draw(st.sampled_from(["activations", "weights"])),
    )


@settings(max_examples=60, deadline=None)
@given(jobs())
def test_exchanges_always_sum_to_step_cost(job):
    """For any valid job and strategy, the round trips add up to the step totals, all non-negative."""
    for s in STRATEGIES:
        ex = step_exchanges(job, s)
        total = step_cost(job, s)
        assert total.round_trips == sum(e.round_trips for e in ex)
        assert all(min(e.bytes_up, e.bytes_down, e.edge_flops, e.cloud_flops) >= 0 for e in ex)


@settings(max_examples=60, deadline=None)
@given(jobs())
def test_offload_module_traffic_scales_with_budget(job):
    """Under offload, per-module traffic of a KR step is exactly B/N of all-modules (each module
    with its own input; shared inputs make the all-modules step cheaper, never dearer)."""
    shared = dataclasses.replace(job, killed_policy="offload")
    job = dataclasses.replace(shared, share_inputs=False)
    assert step_cost(shared, "dlora-all").module_bytes <= step_cost(job, "dlora-all").module_bytes
    ratio = step_cost(job, "dlora-kr").module_bytes / step_cost(job, "dlora-all").module_bytes
    assert ratio == pytest.approx(job.budget / job.table.n_modules, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(jobs())
def test_job_bytes_decompose_into_steady_warmup_kr_setup(job):
    """KR job bytes = steps x steady step + warm-up extra + KR's own bytes + set-up download."""
    t = job_totals(job, "dlora-kr")
    steady = step_cost(job, "dlora-kr").bytes_total
    parts = job.steps * steady + t["warmup_extra_bytes"] + t["kr_bytes"] + t["setup_bytes_down"]
    assert t["bytes_up"] + t["bytes_down"] == pytest.approx(parts, rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(jobs())
def test_vectorised_equals_scalar_on_random_jobs(job):
    """CostModel and job_totals agree on random jobs, every strategy."""
    table = CostModel(job).evaluate()
    for s in STRATEGIES:
        ref = job_totals(job, s)
        for m in ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "kr_bytes"):
            assert float(table.values[s][f"job_{m}"]) == pytest.approx(ref[m], rel=1e-9, abs=1e-6), (s, m)
