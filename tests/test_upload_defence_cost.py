"""The device FLOPs of DLoRA's upload defences (noise, a private rotation), counted by hand.

The cost model counts them once (``upload_defence_flops`` in the DLoRA start exchange); the
grid model, the scenario's job and the simulator read that count.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _sim_scenarios import REPO, small

from dlora_sim.cost import CostModel, JobSpec, job_totals, kr_schedule, step_cost
from dlora_sim.errors import InputError
from dlora_sim.sim.engine import build_devices, run_strategy

# llama-7b: d_model 4096; 4 samples × 256 tokens = 1024 uploaded embeddings a step
D, TOKENS = 4096, 4 * 256
NOISE = 2 * D * TOKENS  # scale and add, per value: 8,388,608
ROTATION = 2 * D * D * TOKENS  # one d × d matrix-vector product per token: 34,359,738,368


def _extra(strategy: str, **defence) -> tuple[float, float]:
    """(extra edge FLOPs, extra bytes) of one step with ``defence``, against the same job without."""
    plain = JobSpec(model="llama-7b", batch=4, seq_len=256)
    defended = dataclasses.replace(plain, **defence)
    a, b = step_cost(plain, strategy), step_cost(defended, strategy)
    return b.edge_flops - a.edge_flops, b.bytes_total - a.bytes_total


@pytest.mark.parametrize("strategy", ["dlora-all", "dlora-kr"])
def test_noise_and_rotation_cost_what_the_hand_count_says(strategy):
    assert NOISE == 8_388_608 and ROTATION == 34_359_738_368
    assert _extra(strategy, upload_noise=1.0) == (NOISE, 0.0)
    assert _extra(strategy, upload_noise=4.0) == (NOISE, 0.0)  # σ sets privacy, not cost
    assert _extra(strategy, upload_rotation=True) == (ROTATION, 0.0)
    assert _extra(strategy, upload_noise=1.0, upload_rotation=True) == (NOISE + ROTATION, 0.0)
    assert _extra(strategy, upload_noise=0.0) == (0.0, 0.0)


def test_the_grid_model_and_the_job_totals_count_it_too():
    job = JobSpec(model="llama-7b", batch=4, seq_len=256, steps=100, upload_rotation=True)
    plain = dataclasses.replace(job, upload_rotation=False)
    for strategy in ("dlora-all", "dlora-kr"):
        extra = job_totals(job, strategy)["edge_flops"] - job_totals(plain, strategy)["edge_flops"]
        # every step uploads once, and so does every KR probe batch (4 samples here)
        probes = sum(r.probe for r in kr_schedule(job, strategy).rounds)
        assert extra == pytest.approx(ROTATION * (100 + probes), rel=1e-12)
        grid = CostModel(job).evaluate((strategy,), metrics=("job_edge_flops",)).values[strategy]
        assert float(np.asarray(grid["job_edge_flops"])) == pytest.approx(job_totals(job, strategy)["edge_flops"],
                                                                         rel=1e-9)


def test_a_scenario_job_carries_the_defence_and_the_simulator_counts_it():
    overrides = {"fleet.groups.0.count": 1, "job.steps": 60, "run.horizon_s": 1e9,
                 "job.profile": str(REPO / "profiles" / "noun-supersense-lora-all-b3-s0.json")}
    plain, noisy = small(overrides), small({**overrides, "job.upload_noise": 2.0})
    assert noisy.job.to_job_spec().upload_noise == 2.0
    flops = [run_strategy(s, "dlora-all", build_devices(s)).stats[0].edge_flops for s in (plain, noisy)]
    d, tokens = plain.job.to_job_spec().shape.d_model, plain.job.to_job_spec().tokens
    assert flops[1] - flops[0] == pytest.approx(60 * 2 * d * tokens, rel=1e-9)


def test_bad_noise_is_refused():
    with pytest.raises(InputError, match="upload_noise"):
        JobSpec(upload_noise=float("nan"))
