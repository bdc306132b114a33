"""Simulated device-steps per second of the engine at ``step`` granularity, next to a naive model.

Both models run in this one process, one after the other, on the same fleet (``phone-fleet-lte``,
scaled to ``--devices`` devices with its group proportions) and the same job (``--steps`` steps,
``dlora-all``, every device always online so both simulate exactly the same work):

- the engine: ``dlora_sim.sim.engine.run_strategy`` (aggregated step, shared links, GPU batching);
- the naive reference: one SimPy process per device and one event per round trip of the cost
  model's ``step_exchanges`` (edge compute, upload, GPU as a plain ``simpy.Resource``, download),
  no aggregation, no sharing, no batching.

It prints both rates and their ratio. Not a test: timings depend on the machine.

    .venv/bin/python benchmarks/bench_sim.py --devices 100 --steps 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import simpy

from dlora_sim import cost
from dlora_sim.scenario import load_scenario
from dlora_sim.sim.engine import build_devices, run_strategy

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "phone-fleet-lte.toml"


def scaled_scenario(n_devices: int, steps: int, faults: bool):
    """phone-fleet-lte with ``n_devices`` devices in the same group proportions."""
    base = load_scenario(SCENARIO)
    total = base.fleet.device_count
    overrides: dict[str, object] = {"job.steps": steps, "run.strategies": ["dlora-all"]}
    for i, group in enumerate(base.fleet.groups):
        overrides[f"fleet.groups.{i}.count"] = max(1, round(group.count * n_devices / total))
        if not faults:
            overrides[f"fleet.groups.{i}.availability"] = {"kind": "always"}
    return load_scenario(SCENARIO, overrides)


def naive(scenario, devices) -> int:
    """The reference: one process per device, one event chain per round trip. Returns device-steps."""
    env = simpy.Environment()
    gpu = scenario.cloud.gpu_spec
    pool = simpy.Resource(env, capacity=scenario.cloud.count)
    exchanges = cost.step_exchanges(scenario.job.to_job_spec(), "dlora-all")
    steps = scenario.job.total_steps
    done = [0]

    def device(d):
        for _ in range(steps):
            for e in exchanges:
                yield env.timeout(e.edge_flops / d.flops_per_s)
                yield env.timeout(e.bytes_up / d.up_bytes_per_s + 0.5 * e.round_trips * d.rtt_s)
                if e.cloud_flops:
                    with pool.request() as request:
                        yield request
                        yield env.timeout(e.cloud_flops / gpu.flops_per_s)
                yield env.timeout(e.bytes_down / d.down_bytes_per_s + 0.5 * e.round_trips * d.rtt_s)
            done[0] += 1

    for d in devices:
        env.process(device(d))
    env.run()
    return done[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100, help="fleet size (phone-fleet-lte proportions)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per device")
    args = parser.parse_args()

    scenario = scaled_scenario(args.devices, args.steps, faults=False)
    devices = build_devices(scenario)
    t0 = time.perf_counter()
    outcome = run_strategy(scenario, "dlora-all", devices)
    engine_s = time.perf_counter() - t0
    engine_steps = sum(s.steps_done for s in outcome.stats)

    t0 = time.perf_counter()
    naive_steps = naive(scenario, devices)
    naive_s = time.perf_counter() - t0

    faulty = scaled_scenario(args.devices, args.steps, faults=True)
    t0 = time.perf_counter()
    outcome_f = run_strategy(faulty, "dlora-all", build_devices(faulty))
    faulty_s = time.perf_counter() - t0
    executed = sum(s.steps_done + s.redone_steps + s.aborted_steps for s in outcome_f.stats)

    engine_rate, naive_rate = engine_steps / engine_s, naive_steps / naive_s
    print(f"fleet: {len(devices)} devices of phone-fleet-lte, {args.steps} steps each, dlora-all, always online")
    print(f"engine (step granularity): {engine_steps:,} device-steps in {engine_s:.2f} s = {engine_rate:,.0f} device-steps/s")
    print(f"naive reference (one event per round trip): {naive_steps:,} device-steps in {naive_s:.2f} s = {naive_rate:,.0f} device-steps/s")
    print(f"ratio engine / naive: {engine_rate / naive_rate:.1f}x")
    print(f"engine with the scenario's Markov outages: {executed:,} step executions (incl. aborted and redone) "
          f"in {faulty_s:.2f} s = {executed / faulty_s:,.0f} per s")


if __name__ == "__main__":
    main()
