"""The simulator against live DLoRA: predicted vs measured per-step time, bytes and round trips.

For exchange {activations, weights} × links {loopback, wifi, 5g, lte} × KR {off, on}: a live run
(an edge process and a cloud process, the link shaped with namespaces, tbf and netem when root)
and the simulation of its matching scenario (dlora_sim.live.compare: compute calibrated once per
exchange on loopback, the link both as the catalog states it and as the run measured it). Prints
the table and the median step-time errors, and writes every run, scenario and row under --out.

KR on is a job that cuts once (2 steps with every module, the cut, 2 steps at B; no later
round, so no profile's churn enters). Not a test: timings depend on the machine and its load.

    .venv/bin/python benchmarks/bench_fidelity.py --out results/fidelity
    .venv/bin/python benchmarks/bench_fidelity.py --links loopback lte --exchanges activations
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

from dlora_sim.live.compare import calibration_run, format_table, row
from dlora_sim.live.job import LiveJob
from dlora_sim.live.shaping import SHAPES, plan, shape_named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/fidelity"))
    parser.add_argument("--links", nargs="+", default=["loopback", *SHAPES])
    parser.add_argument("--exchanges", nargs="+", default=["activations", "weights"])
    parser.add_argument("--kr", nargs="+", choices=("off", "on"), default=["off", "on"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=32)
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    shapes = [shape_named(name) for name in args.links]
    for shape in shapes:
        print(f"link {shape.name}: {plan(shape)[1]}", flush=True)
    base = LiveJob(batch=args.batch, seq_len=args.seq_len, steps=args.steps, checkpoint_every=args.steps,
                   budget=3, kr_window=args.steps // 2, kr_warmup=0)
    rows = []
    start = time.monotonic()
    for exchange in args.exchanges:
        job = dataclasses.replace(base, exchange=exchange)
        compute, loopback = calibration_run(job, args.out / exchange / "calibration")
        print(f"{exchange}: edge {compute.edge_flops_per_s:.3g} FLOP/s, cloud {compute.cloud_flops_per_s:.3g} FLOP/s, "
              f"loopback round trip {1e3 * loopback.rtt_s:.3g} ms", flush=True)
        for shape in shapes:
            for kr in args.kr:
                variant = dataclasses.replace(job, kr=kr == "on")
                rows.append(row(variant, shape, compute, loopback, args.out / exchange / shape.name / f"kr-{kr}"))
                print(format_table(rows[-1:]).splitlines()[2], flush=True)
    print()
    print(format_table(rows))
    print(f"{time.monotonic() - start:.0f} s")
    (args.out / "table.txt").write_text(format_table(rows) + "\n", encoding="utf-8")
    (args.out / "rows.json").write_text(json.dumps([dataclasses.asdict(r) for r in rows], indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
