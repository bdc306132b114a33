"""How fast the simulator runs fleets, side by side with a fair naive SimPy model.

    python benchmarks/bench_scale.py            # 1k side by side, then segment at 10k, 100k, 1M
    python benchmarks/bench_scale.py --quick    # 1k side by side, segment at 10k
    python benchmarks/bench_scale.py --record benchmarks/results/scale.json   # and keep the numbers

The fleet is ``scenarios/fleet-100k.toml`` (LLaMA-7B, 1,000 steps, four strategies, Markov
outages, shared access and region links, a GPU pool), scaled: group counts, link capacities and
GPUs all multiplied by ``devices / 100,000``, so every size meets the same contention.

Three engines on 1,000 devices and the shipped 1,000-step job (the length a planner runs; the
reference engine needs minutes for it, ``--quick`` shortens the job to 100 steps), each timed on
the same four strategies, each in one process (``run.workers = 1``, as the naive model has):

- **naive**: an independent per-step SimPy model written here, the way one would write it
  first: one process per device, one event per step phase (compute and upward latency, upload,
  GPU, download), the GPU pool a plain ``simpy.Resource`` with one server per GPU, outages as
  interrupts with rollback to the last checkpoint. It reads the scenario through the public
  loader and prices a step with the cost model's ``step_cost`` (the one source of truth of
  what a step moves and computes), but builds its own fleet, draws its own outages and keeps
  no shared links and no batching: less work per step than ``step`` does, never more. Its
  device-steps count every step it ran, the ones an outage rolled back included, as the
  engines' do.
- **step**: dlora-sim's reference engine (every exchange an event, fair-shared links, batched
  GPU queue, memory slots, KR rounds, acknowledgements).
- **segment**: dlora-sim's fast engine (closed form between state changes).

For ``step`` against ``segment`` it prints the largest relative difference over the figures a
planner reads (completion percentiles, totals of FLOPs, bytes, GPU time, money) and over every
summary figure, and names each figure further apart than 1%. A saving against the baseline,
``1 - value / baseline``, is compared through ``value / baseline`` (its relative difference): a
saving near zero has no relative precision of its own, and a large one (0.875) is held tighter
this way, not looser. ``peak_flows_per_shared_link`` is left out: the segment engine reports a
bound there (docs/simulator.md). Then ``segment`` alone at 10k, 100k and 1M devices, each in its
own process so that peak RSS is its own, with the scenario's ``run.workers`` (two processes for the four
strategies): wall time, device-steps per second, peak RSS of the largest process. Beside wall time it
prints the CPU seconds each engine used (its workers' included): on a machine busy with other work, wall time measures
the machine's load, and the CPU ratio is the fairer comparison. Nothing here is a test: speeds
depend on the machine; docs/simulator.md shows how to read them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import simpy

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "fleet-100k.toml"
BASE_DEVICES = 100_000
QUICK_STEPS = 100  # --quick: the reference engine is slow, so a short job
CLOSE = 0.01  # step and segment should agree within 1%
PLANNER = ("completion_p50_s", "completion_p95_s", "makespan_s", "finished_devices", "steps_done", "edge_flops",
           "bytes_total", "cloud_gpu_s", "money_usd", "energy_j")


def scaled(devices: int, granularity: str, steps: int | None = None, workers: int | None = None) -> Any:
    """The 100k fleet scaled to ``devices`` (counts, links and GPUs alike), ``steps`` a job;
    ``workers`` processes for the strategies (default: the scenario's)."""
    from dlora_sim.scenario import load_scenario

    base = load_scenario(SCENARIO)
    f = devices / BASE_DEVICES
    over: dict[str, Any] = {"run.granularity": granularity, "run.workers": workers or base.run.workers,
                            "cloud.count": max(1, round(base.cloud.count * f)),
                            "network.access_capacity_bps": base.network.access_capacity_bps * f,
                            "network.region_capacity_bps": base.network.region_capacity_bps * f}
    for i, group in enumerate(base.fleet.groups):
        over[f"fleet.groups.{i}.count"] = max(1, round(group.count * f))
    if steps is not None:
        over["job.steps"] = steps
    return load_scenario(SCENARIO, overrides=over)


# -- the naive model ------------------------------------------------------------------------------

def naive(scenario: Any) -> dict[str, float]:
    """Simulate every strategy with the naive per-step model: the device-steps it ran (redone ones
    included)."""
    from dlora_sim import cost

    spec = scenario.job.to_job_spec()
    gpu = scenario.cloud.gpu_spec
    steps_total = int(scenario.job.total_steps)
    ckpt = int(scenario.scheduler.checkpoint_interval_steps)
    horizon = float(scenario.run.horizon_s)
    rng = np.random.default_rng(12345)
    fleet = []
    for group in scenario.fleet.groups:
        for _ in range(group.count):
            spread = group.compute_spread
            speed = group.device.flops_per_s * (1.0 + spread * (2 * rng.random() - 1)) if spread else group.device.flops_per_s
            model = group.availability
            outages = []
            if getattr(model, "kind", "always") == "markov":
                t = 0.0
                while t < horizon:
                    t += rng.exponential(model.mean_online_s)
                    off = rng.exponential(model.mean_offline_s)
                    outages.append((t, t + off))
                    t += off
            fleet.append((speed, group.link.up_bps / 8, group.link.down_bps / 8, group.link.rtt_s, outages))
    done = 0
    for strategy in scenario.run.strategies:
        step = cost.step_cost(spec, strategy, n_active=None if cost.get_strategy(strategy).kr_arm is None else spec.budget)
        env = simpy.Environment()
        pool = simpy.Resource(env, capacity=scenario.cloud.count)
        gpu_s = float(step.cloud_flops) / gpu.flops_per_s
        counts = []

        def device(speed, up, down, rtt, outages, out):
            applied, checkpoint, ran = 0, 0, 0
            while applied < steps_total:
                try:
                    yield env.timeout(float(step.edge_flops) / speed + rtt / 2)
                    yield env.timeout(float(step.bytes_up) / up)
                    with pool.request() as slot:
                        yield slot
                        yield env.timeout(gpu_s)
                    yield env.timeout(float(step.bytes_down) / down + rtt / 2)
                    applied += 1
                    ran += 1
                    if applied % ckpt == 0:
                        checkpoint = applied
                except simpy.Interrupt as back_at:
                    applied = checkpoint
                    yield env.timeout(max(0.0, back_at.cause - env.now))
            out.append(ran)

        def outage_driver(proc, outages):
            for t_off, t_on in outages:
                if t_off >= horizon:
                    return
                yield env.timeout(max(0.0, t_off - env.now))
                if proc.is_alive:
                    proc.interrupt(t_on)
                else:
                    return
                yield env.timeout(max(0.0, t_on - env.now))

        for speed, up, down, rtt, outages in fleet:
            proc = env.process(device(speed, up, down, rtt, outages, counts))
            env.process(outage_driver(proc, outages))
        env.run(until=horizon)
        done += sum(counts)
    return {"device_steps": done}


# -- measuring ----------------------------------------------------------------------------------

def _flat(block: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in block.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def _comparable(key: str, value: float) -> float:
    """The figure a difference is taken on: a saving ``1 - v / baseline`` as ``v / baseline``."""
    return 1.0 - value if key.startswith("savings_vs_baseline.") else value


def differences(a: dict, b: dict, keys: tuple[str, ...] | None = None) -> list[tuple[float, str, float, float]]:
    """Relative differences of every summary figure of every strategy, largest first:
    (difference, "strategy figure", the figure in ``a``, in ``b``)."""
    out = []
    for strategy in a:
        fa, fb = _flat(a[strategy]), _flat(b[strategy])
        for key in fa:
            if (keys is not None and key not in keys) or key.startswith("peak_flows"):
                continue
            x, y = _comparable(key, fa[key]), _comparable(key, fb.get(key, math.nan))
            scale = max(abs(x), abs(y))
            out.append((abs(x - y) / scale if scale else 0.0, f"{strategy} {key}", fa[key], fb.get(key, math.nan)))
    return sorted(out, key=lambda d: (-d[0], d[1]))


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the strategies' workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _own_peak_kb() -> int:
    """This process's peak RSS in KiB since it started: ``VmHWM``, which belongs to the address
    space that ``exec`` made. (``getrusage(RUSAGE_SELF).ru_maxrss`` keeps the high-water mark of
    the process before ``exec``, here the benchmark that had just run the step engine.)"""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def run_engine(devices: int, granularity: str, steps: int | None = None, workers: int | None = None) -> dict[str, Any]:
    from dlora_sim.sim.engine import simulate

    scenario = scaled(devices, granularity, steps, workers)
    start, cpu = time.perf_counter(), _cpu_s()
    result = simulate(scenario)
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu
    steps = sum(b["steps_done"] + b["work_lost"]["redone_steps"] for b in result.summary["strategies"].values())
    rss = max(_own_peak_kb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"wall_s": wall, "cpu_s": cpu, "device_steps": steps, "summary": result.summary["strategies"],
            "rss_mb": rss / 1024, "workers": scenario.run.workers}


def side_by_side(devices: int, steps: int | None = None) -> dict[str, Any]:
    """naive, step and segment on one core each (one process, ``run.workers = 1``), on the
    scenario's job or a ``steps`` one."""
    scenario = scaled(devices, "step", steps, workers=1)
    start, cpu = time.perf_counter(), time.process_time()
    base = naive(scenario)
    engines = {"naive": {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                         "device_steps": base["device_steps"]}}
    summaries = {}
    for name in ("step", "segment"):
        run = run_engine(devices, name, steps, workers=1)
        engines[name] = {k: run[k] for k in ("wall_s", "cpu_s", "device_steps")}
        summaries[name] = run["summary"]
    first = engines["naive"]
    for run in engines.values():
        run["device_steps_per_s"] = run["device_steps"] / run["wall_s"]
        run["vs_naive"] = run["device_steps_per_s"] / (first["device_steps"] / first["wall_s"])
        run["vs_naive_by_cpu"] = (run["device_steps"] / run["cpu_s"]) / (first["device_steps"] / first["cpu_s"])
    every = differences(summaries["step"], summaries["segment"])
    planner = differences(summaries["step"], summaries["segment"], PLANNER)
    return {"devices": devices, "steps": scenario.job.total_steps, "strategies": len(scenario.run.strategies),
            "engines": engines, "largest_difference": {"planner": list(planner[0]), "any": list(every[0])},
            "apart": [list(d) for d in every if d[0] > CLOSE]}


def print_engines(record: dict[str, Any]) -> None:
    print(f"{record['devices']:,} devices × {record['steps']} steps × {record['strategies']} strategies, one process each")
    print(f"{'engine':>8} {'wall s':>8} {'CPU s':>8} {'device-steps/s':>15} {'vs naive':>9} {'by CPU':>7}")
    for name, run in record["engines"].items():
        print(f"{name:>8} {run['wall_s']:8.1f} {run['cpu_s']:8.1f} {run['device_steps_per_s']:15,.0f} "
              f"{run['vs_naive']:9.2f} {run['vs_naive_by_cpu']:7.2f}")


def print_side_by_side(record: dict[str, Any]) -> None:
    print_engines(record)
    planner, every = record["largest_difference"]["planner"], record["largest_difference"]["any"]
    print(f"step vs segment, largest relative difference: planner figures {planner[0]:.2%} ({planner[1]}); "
          f"any summary figure {every[0]:.2%} ({every[1]})")
    for rel, name, x, y in record["apart"]:
        print(f"  further apart than {CLOSE:.0%}: {name} {rel:.2%} ({x:.4g} in step, {y:.4g} in segment)")


def alone(devices: int) -> dict[str, Any]:
    """One segment run of the full 1,000-step job in its own process (its peak RSS its own)."""
    out = subprocess.run([sys.executable, __file__, "--one", str(devices)], capture_output=True, text=True, check=True)
    run = json.loads(out.stdout.strip().splitlines()[-1])
    run["devices"] = devices
    run["device_steps_per_s"] = run["device_steps"] / run["wall_s"]
    print(f"segment {devices:>9,} devices, {run['workers']} workers: {run['wall_s']:7.1f} s ({run['cpu_s']:.1f} CPU s), "
          f"{run['device_steps_per_s']:12,.0f} device-steps/s, peak RSS {run['rss_mb']:,.0f} MB")
    return run


def machine() -> dict[str, Any]:
    """What the numbers depend on: cores, and how busy the machine was when the run began."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1min": os.getloadavg()[0]}


def goals(record: dict[str, Any]) -> list[str]:
    """Issue 10's goals against what this run measured, one line each (met / not met / not run)."""
    lines = []
    side = record.get("side_by_side")
    if side is not None and side["steps"] != QUICK_STEPS:
        seg = side["engines"]["segment"]
        ok = seg["vs_naive_by_cpu"] >= 20 and seg["vs_naive"] >= 20
        lines.append(f"segment >= 20x the naive model ({side['steps']:,}-step job): {'met' if ok else 'not met'} "
                     f"({seg['vs_naive']:.1f}x by wall, {seg['vs_naive_by_cpu']:.1f}x by CPU)")
        planner = side["largest_difference"]["planner"]
        lines.append(f"step and segment within {CLOSE:.0%} on the planner's figures: "
                     f"{'met' if planner[0] <= CLOSE else 'not met'} ({planner[0]:.2%}, {planner[1]})")
    by_size = {run["devices"]: run for run in record.get("segment", [])}
    if 100_000 in by_size:
        run = by_size[100_000]
        ok = run["wall_s"] <= 60 and run["rss_mb"] <= 2048
        lines.append(f"100k devices x 1,000 steps x 4 strategies in <= 60 s, <= 2 GB: {'met' if ok else 'not met'} "
                     f"({run['wall_s']:.1f} s, {run['rss_mb']:,.0f} MB)")
    if 1_000_000 in by_size:
        lines.append(f"1M devices completes: met ({by_size[1_000_000]['wall_s']:.0f} s)")
    return lines


#: the benchmark's parts, in the order it runs them
PARTS = ("side-by-side", "segment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"1k side by side on a {QUICK_STEPS}-step job, segment at 10k only")
    parser.add_argument("--record", type=Path, help="also write the numbers as JSON (docs/simulator.md's table reads "
                                                    "benchmarks/results/scale.json)")
    parser.add_argument("--part", action="append", choices=PARTS,
                        help="run only this part (repeatable); with --record, the file's other parts are kept")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one segment run, JSON out
    args = parser.parse_args()
    if args.one:
        run = run_engine(args.one, "segment")
        print(json.dumps({k: run[k] for k in ("wall_s", "cpu_s", "device_steps", "rss_mb", "workers")}))
        return
    parts = args.part or list(PARTS)
    record: dict[str, Any] = {}
    if args.record and args.part and args.record.exists():  # refresh some parts, keep the rest
        record = json.loads(args.record.read_text(encoding="utf-8"))
    record["command"] = "python benchmarks/bench_scale.py" + (" --quick" if args.quick else "")
    record["machine"] = machine()
    if "side-by-side" in parts:
        record["side_by_side"] = side_by_side(1_000, QUICK_STEPS if args.quick else None)
        print_side_by_side(record["side_by_side"])
    if "segment" in parts:
        record["segment"] = [alone(devices) for devices in ((10_000,) if args.quick else (10_000, 100_000, 1_000_000))]
    record["goals"] = goals(record)
    for line in record["goals"]:
        print(f"goal: {line}")
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
