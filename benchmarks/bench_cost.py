"""How many configuration points per second: the vectorised CostModel vs a plain Python loop.

Both sides price the same points (budget x sequence length x device x link, every strategy, whole
job) in the same process; the loop calls ``job_totals`` + ``priced`` once per point and strategy,
which is how the numbers would be computed without numpy. The two results are checked equal
before the ratio is printed.

    .venv/bin/python benchmarks/bench_cost.py [--budgets 64] [--repeat 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, default=32, help="budgets 1..N on the grid")
    parser.add_argument("--repeat", type=int, default=5, help="vectorised repetitions (best is kept)")
    args = parser.parse_args()

    job = JobSpec(model="llama-7b", peft=PeftSpec("lora", rank=8, targets=("q", "k", "v", "o")), budget=16)
    g = grid(budget=np.arange(1, args.budgets + 1), seq_len=[128, 256],
             device=["phone-low", "phone-mid", "jetson"], link=["3g", "lte", "5g", "fibre"])
    n = len(g["budget"])
    model = CostModel(job)

    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        table = model.evaluate(**g)
        best = min(best, time.perf_counter() - start)

    start = time.perf_counter()
    loop = []
    gpu = get_gpu("a100")
    for i in range(n):
        point = dataclasses.replace(job, budget=int(g["budget"][i]), seq_len=int(g["seq_len"][i]))
        device, link = get_device(str(g["device"][i])), get_link(str(g["link"][i]))
        row = {}
        for s in STRATEGIES:
            totals = job_totals(point, s)
            row[s] = {**totals, **priced(totals, device, link, gpu)}
        loop.append(row)
    loop_s = time.perf_counter() - start

    for s in STRATEGIES:  # same numbers, or the timing means nothing
        got = table.values[s]["job_time_s"]
        want = np.asarray([row[s]["time_s"] for row in loop])
        assert np.allclose(got, want, rtol=1e-9), s

    vec_rate, loop_rate = n / best, n / loop_s
    print(f"points: {n} (x {len(STRATEGIES)} strategies, step/epoch/job totals each)")
    print(f"vectorised CostModel.evaluate: {best * 1e3:9.2f} ms  -> {vec_rate:12,.0f} points/s (best of {args.repeat})")
    print(f"plain Python loop            : {loop_s * 1e3:9.2f} ms  -> {loop_rate:12,.0f} points/s")
    print(f"speed-up (vectorised / loop) : {vec_rate / loop_rate:9.1f}x")


if __name__ == "__main__":
    main()
