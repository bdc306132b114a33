"""Simulated device-steps per second of the engine at ``step`` granularity, next to a fair naive model.

Both models run in this one process, one after the other, on the same fleet and job
(``phone-fleet-lte`` scaled to ``--devices`` devices in its group proportions, ``dlora-all``,
every device always online, no compute spread, shared links wide enough never to saturate), so
they simulate the same work at the same granularity — one step at a time:

- the engine: ``dlora_sim.sim.engine.run_strategy`` (aggregated step, shared links, GPU batching,
  checkpoints, the scheduler's queue);
- the naive reference, written here from the scenario alone (not the engine's fleet builder): one
  SimPy process per device, one event per phase of a step — edge compute, upload and half the
  round trips, the GPU as a plain ``simpy.Resource`` of ``cloud.count`` slots, download and the
  other half — priced by the cost model's ``step_cost`` (the one source of per-step numbers).

It prints both rates, their ratio and the largest relative difference of the mean completion time.
Not a test: timings depend on the machine and its load.

    .venv/bin/python benchmarks/bench_sim.py --devices 1000 --steps 20
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


def scaled_scenario(n_devices: int, steps: int):
    """phone-fleet-lte with ``n_devices`` devices in the same proportions, nothing left to chance."""
    base = load_scenario(SCENARIO)
    total = base.fleet.device_count
    overrides: dict[str, object] = {"job.steps": steps, "run.strategies": ["dlora-all"],
                                    "network.access_capacity_bps": 1e15, "network.region_capacity_bps": 1e15,
                                    "cloud.batch_max_users": 1, "cloud.batch_window_s": 0.0}
    for i, group in enumerate(base.fleet.groups):
        overrides[f"fleet.groups.{i}.count"] = max(1, round(group.count * n_devices / total))
        overrides[f"fleet.groups.{i}.availability"] = {"kind": "always"}
        overrides[f"fleet.groups.{i}.compute_spread"] = 0.0
    return load_scenario(SCENARIO, overrides)


def naive(scenario) -> tuple[int, float]:
    """The reference: one process per device, one event per step phase. Returns (device-steps,
    mean completion time)."""
    env = simpy.Environment()
    gpu = simpy.Resource(env, capacity=scenario.cloud.count)
    gpu_flops = scenario.cloud.gpu_spec.flops_per_s
    step = cost.step_cost(scenario.job.to_job_spec(), "dlora-all")
    steps = scenario.job.total_steps
    done, finish = [0], []

    def device(flops_per_s: float, up_bps: float, down_bps: float, rtt_s: float):
        half_rtt_s = 0.5 * step.round_trips * rtt_s
        for _ in range(steps):
            yield env.timeout(step.edge_flops / flops_per_s)
            yield env.timeout(8 * step.bytes_up / up_bps + half_rtt_s)
            with gpu.request() as request:
                yield request
                yield env.timeout(step.cloud_flops / gpu_flops)
            yield env.timeout(8 * step.bytes_down / down_bps + half_rtt_s)
            done[0] += 1
        finish.append(env.now)

    for group in scenario.fleet.groups:
        for _ in range(group.count):
            env.process(device(group.device.flops_per_s, group.link.up_bps, group.link.down_bps, group.link.rtt_s))
    env.run()
    return done[0], sum(finish) / len(finish)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000, help="fleet size (phone-fleet-lte proportions)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per device")
    args = parser.parse_args()

    scenario = scaled_scenario(args.devices, args.steps)
    t0 = time.perf_counter()
    outcome = run_strategy(scenario, "dlora-all", build_devices(scenario))
    engine_s = time.perf_counter() - t0
    engine_steps = sum(s.steps_done for s in outcome.stats)
    engine_mean = sum(s.completion_s for s in outcome.stats) / len(outcome.stats)

    t0 = time.perf_counter()
    naive_steps, naive_mean = naive(scenario)
    naive_s = time.perf_counter() - t0

    engine_rate, naive_rate = engine_steps / engine_s, naive_steps / naive_s
    print(f"fleet: {scenario.fleet.device_count} devices of phone-fleet-lte, {args.steps} steps each, "
          "dlora-all, always online, no contention on the links")
    print(f"engine (step granularity): {engine_steps:,} device-steps in {engine_s:.2f} s = {engine_rate:,.0f}/s")
    print(f"naive per-step SimPy model: {naive_steps:,} device-steps in {naive_s:.2f} s = {naive_rate:,.0f}/s")
    print(f"ratio engine / naive: {engine_rate / naive_rate:.2f}x")
    print(f"mean completion: engine {engine_mean / 3600:.3f} h, naive {naive_mean / 3600:.3f} h "
          f"(relative difference {abs(engine_mean - naive_mean) / naive_mean:.2%}; the engine adds the "
          "session handshake and set-up download)")


if __name__ == "__main__":
    main()
