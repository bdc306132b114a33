"""The vectorised grid path (factorised fields, per-combination counts, per-point gathers in
chunks) agrees with the plain per-point code on a random sample of a large, mixed grid."""

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
)
from dlora_sim.cost import model as cost_model
from dlora_sim.errors import InputError

JOB = JobSpec(model="tinyllama-1.1b", peft=PeftSpec("lora", rank=8, targets=("q", "v")), budget=8, steps=120,
              kr_interval_steps=20, samples_per_epoch=300)
METRICS = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "module_bytes", "kr_bytes",
           "warmup_extra_bytes", "setup_bytes_down", "edge_s", "energy_j", "radio_energy_j", "device_energy_j",
           "link_s", "cloud_gpu_s", "usd", "time_s")


def test_random_points_of_a_chunked_grid_equal_the_per_point_code(monkeypatch):
    """A 23,040-point grid in chunks of 4,096 (the chunks' seams included): 12 random points, every
    strategy, every job metric, equal to job_totals + priced at that point."""
    monkeypatch.setattr(cost_model, "CHUNK", 4096)
    g = grid(budget=[1, 7, 44], size=[4, 16], seq_len=[64, 200], batch=[1, 3], kr_churn=[0.0, 2.5],
             kr_warmup_rounds=[0, 3], device=["phone-low", "laptop", "jetson"], link=["3g", "wifi", "fibre", "lte"],
             gpu=["l4", "h100", "a100", "h200", "l40s"])
    n = len(g["budget"])
    assert n == 3 * 2 * 2 * 2 * 2 * 2 * 3 * 4 * 5
    table = CostModel(JOB).evaluate(**g)
    rng = np.random.default_rng(7)
    for i in [*rng.choice(n, 10, replace=False).tolist(), 4095, 4096]:
        point = dataclasses.replace(JOB, budget=int(g["budget"][i]), seq_len=int(g["seq_len"][i]),
                                    batch=int(g["batch"][i]), kr_churn=float(g["kr_churn"][i]),
                                    kr_warmup_rounds=int(g["kr_warmup_rounds"][i]),
                                    peft=dataclasses.replace(JOB.peft, rank=int(g["size"][i])))
        hw = get_device(str(g["device"][i])), get_link(str(g["link"][i])), get_gpu(str(g["gpu"][i]))
        for s in STRATEGIES:
            ref = job_totals(point, s)
            ref.update(priced(ref, *hw))
            for m in METRICS:
                assert table.values[s][f"job_{m}"][i] == pytest.approx(ref[m], rel=1e-9), (i, s, m)
            frac = point.steps_per_epoch / point.steps
            assert table.values[s]["epoch_time_s"][i] == pytest.approx(ref["time_s"] * frac, rel=1e-9)


def test_selected_metrics_are_the_full_tables_numbers():
    """metrics=/reductions= compute only what is asked, and exactly the numbers of a full evaluation."""
    g = grid(budget=[2, 8], seq_len=[64, 128], device=["phone-mid", "jetson"], gpu=["a100", "l4"])
    full = CostModel(JOB).evaluate(**g)
    some = CostModel(JOB).evaluate(metrics=("job_time_s", "step_usd", "fits_on_device"),
                                   reductions=("epoch_time_s",), **g)
    for s in STRATEGIES:
        assert list(some.values[s]) == ["job_time_s", "step_usd", "fits_on_device"]
        for k, v in some.values[s].items():
            assert np.array_equal(v, full.values[s][k])
        assert np.array_equal(some.reductions[s]["epoch_time_s"], full.reductions[s]["epoch_time_s"],
                              equal_nan=True)
    with pytest.raises(InputError, match="unknown metric 'job_speed'"):
        CostModel(JOB).evaluate(metrics=("job_speed",))


def test_open_mesh_axes_equal_the_flattened_grid():
    """Axes given as broadcastable arrays give the flattened grid's numbers, in its shape."""
    budget, link = np.array([1, 5, 9])[:, None], np.array(["3g", "5g"])[None, :]
    mesh = CostModel(JOB).evaluate(budget=budget, link=link)
    flat = CostModel(JOB).evaluate(**grid(budget=[1, 5, 9], link=["3g", "5g"]))
    assert mesh.shape == (3, 2)
    for s in STRATEGIES:
        for k, v in mesh.values[s].items():
            assert np.array_equal(v.ravel(), flat.values[s][k]), (s, k)
