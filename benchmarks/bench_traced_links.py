"""Change points per second on links that follow bandwidth traces (``sim/links.py``, issue 15).

Two cases, each with N long flows on one shared link that is saturated by them:

- ``shared``: the shared link follows a trace (a change a second), the flows have four private
  rates (four classes): a change re-times the classes on the link, O(distinct rates + classes);
- ``device``: every flow's own rate follows its own trace (a change a second each, offsets
  spread over the trace), the shared link is constant: each change moves one flow to its new
  rate, and with N distinct rates there are N classes on the link, so a change costs O(N).

Prints change points applied per second of wall time and the simulated seconds covered. Not a
test: timings depend on the machine and its load.

    .venv/bin/python benchmarks/bench_traced_links.py                 # N = 100 and 1,000
    .venv/bin/python benchmarks/bench_traced_links.py --flows 10 100 1000 --seconds 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import simpy

from dlora_sim.sim.links import FlowNetwork
from dlora_sim.sim.rates import RateSchedule

RATES = (1.0e6, 2.5e6, 6.0e6, 1.2e7)  # private rates, bytes/s


def _trace(seed: int, mean: float, points: int = 600) -> RateSchedule:
    rng = np.random.default_rng(seed)
    rates = mean * np.exp(0.5 * rng.standard_normal(points))
    return RateSchedule(np.arange(points, dtype=float), rates, float(points), True, 0.0)


def run(case: str, n_flows: int, max_seconds: float) -> tuple[int, float, float]:
    """(change points applied, wall s, simulated s) for one case."""
    env = simpy.Environment()
    demand = n_flows * sum(RATES) / len(RATES)
    if case == "shared":
        net = FlowNetwork(env, {"L": 1.0}, {"L": _trace(0, 0.25 * demand)})
        privates = [RATES[i % len(RATES)] for i in range(n_flows)]
    else:
        net = FlowNetwork(env, {"L": 0.25 * demand})
        shape = _trace(1, sum(RATES) / len(RATES))
        privates = [shape.with_offset(600.0 * i / n_flows, (i,)) for i in range(n_flows)]
    for private in privates:
        net.transfer(1e15, private, ("L",))
    began = time.perf_counter()
    step = 1.0
    while time.perf_counter() - began < max_seconds:
        env.run(until=env.now + step)
    return net.rate_changes, time.perf_counter() - began, env.now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per case")
    args = parser.parse_args()
    print(f"{'case':>8} {'flows':>7} {'changes':>9} {'changes/s':>11} {'simulated s':>12}")
    for case in ("shared", "device"):
        for n in args.flows:
            changes, wall, simulated = run(case, n, args.seconds)
            print(f"{case:>8} {n:>7,} {changes:>9,} {changes / wall:>11,.0f} {simulated:>12,.0f}")


if __name__ == "__main__":
    main()
