"""How much a training step of MiniLM-L6 + LoRA costs with all modules vs B=3 active, and a KR round.

Freezing a module saves its weight gradient and, when every module below a layer is frozen,
autograd stops the backward pass early: so *which* three modules are active matters. This
benchmark times, side by side in one process and interleaved (so machine load hits every case
alike), a training step with all 24 modules, with 3 in the top layer, with 3 in the bottom layer,
and one KR round's own work (norms + probe batch). It prints medians and ratios to "all 24".

Run: ``.venv/bin/python benchmarks/bench_profiling_step.py [--repeats 15] [--batch 8]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dlora_sim.profiling.freezing import module_norms, probe_grad_norms, set_active
from dlora_sim.profiling.models import PeftSpecLocal, build_model, load_tokenizer
from dlora_sim.profiling.tasks import batch_indices, encode, load_task
from dlora_sim.profiling.train import _loss_fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_task("noun-supersense", "train")
    tokenizer = load_tokenizer()
    net, modules = build_model(PeftSpecLocal(), data.n_classes, False, seed=0)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    batches = [encode(tokenizer, data, idx, 48) for idx in batch_indices(len(data), args.batch, 4, 0)]
    n = len(modules)
    masks = {"all 24": np.ones(n, bool), "3 in top layer": np.isin(np.arange(n), [20, 21, 22]),
             "3 in bottom layer": np.isin(np.arange(n), [0, 1, 2])}

    def step(mask: np.ndarray, enc: dict) -> float:
        set_active(modules, mask, opt)
        t0 = time.perf_counter()
        _loss_fn(net, enc).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    def kr_round(enc: dict) -> float:
        set_active(modules, masks["3 in top layer"], opt)
        t0 = time.perf_counter()
        module_norms(modules)
        probe_grad_norms(net, modules, lambda: _loss_fn(net, enc), np.ones(n, bool))
        return time.perf_counter() - t0

    cases = {name: (lambda e, m=m: step(m, e)) for name, m in masks.items()}
    cases["KR round (norms + probe)"] = kr_round
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.repeats + 1):
        for name, fn in cases.items():
            t = fn(batches[r % len(batches)])
            if r:  # the first round warms up allocator and caches
                times[name].append(t)
    base = float(np.median(times["all 24"]))
    print(f"batch {args.batch}, {args.repeats} repeats, 1 thread; median seconds and ratio to 'all 24'")
    for name, ts in times.items():
        med = float(np.median(ts))
        print(f"  {name:26s} {med:7.4f} s   x{med / base:5.2f}")


if __name__ == "__main__":
    main()
