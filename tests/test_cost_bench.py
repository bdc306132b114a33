"""The cost benchmark's scalar loop (``benchmarks/bench_cost.py``) computes what the vectorised
``CostModel`` does: otherwise the ratio it prints compares two different computations."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from dlora_sim.cost import STRATEGIES, CostModel, grid

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cost.py"


@pytest.fixture(scope="module")
def bench():
    """The benchmark script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_cost", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_scalar_loop_equals_the_vectorised_model_on_random_points(bench):
    """40 random points of a grid varying every field the benchmark varies, every strategy and
    every metric it times: the plain-Python closed form equals the grid path."""
    g = grid(budget=[4, 16, 64, 128], size=[4, 32], seq_len=[64, 512], batch=[1, 8],
             loss_tokens_per_sample=[1, 32], dtype_bytes=[2, 4], **bench.HARDWARE)
    table = CostModel(bench.JOB).evaluate(metrics=bench.METRICS, reductions=(), **g)
    indices = np.sort(np.random.default_rng(3).choice(len(g["budget"]), 40, replace=False))
    _, results = bench.run_loop(bench.JOB, g, indices)
    for s in STRATEGIES:
        for m in bench.METRICS:
            want = [r[s][m] for r in results]
            assert table.values[s][m][indices].tolist() == pytest.approx(want, rel=1e-9), (s, m)
