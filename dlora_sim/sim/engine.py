"""``simulate``: run every strategy of a scenario on the same fleet, same outages, same seed.

The engine is the stage manager: it builds the world once (devices with their speeds, links,
paths through the shared network and outage intervals, all drawn from per-group random
streams: :mod:`dlora_sim.sim.fleet`), then, for each strategy, builds a fresh SimPy environment with its own GPU pool,
shared links, scheduler queue and admission limit, starts one process per device, and runs until
every device has finished or the horizon is reached. Because the world is built before any
strategy runs, the strategies differ only in what the cost model says each step costs.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import simpy
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dlora_sim import cost
from dlora_sim.errors import InputError
from dlora_sim.sim.capacity import fits_on_devices, memory_slot_count, shared_capacities, shared_schedules
from dlora_sim.sim.cloud import GpuPool
from dlora_sim.sim.device import Device, DeviceSpec
from dlora_sim.sim.fleet import build_fleet
from dlora_sim.sim.links import FlowNetwork
from dlora_sim.sim.parallel import StrategyWorkers, can_fork_workers
from dlora_sim.sim.queue import UpdateQueue
from dlora_sim.sim.results import SimulationResult, StrategyOutcome, assemble_result, counters_from_stats
from dlora_sim.sim.segment import run_segment_strategy
from dlora_sim.sim.work import StepWork, step_work, sync_work, with_recompute

__all__ = ["simulate", "build_devices"]


@dataclass
class StrategyRun:
    """The shared world of one strategy's run: what every device process talks to."""

    env: simpy.Environment
    net: FlowNetwork
    pool: GpuPool
    queue: UpdateQueue
    admission: simpy.Resource
    granularity: str
    offload: bool
    total_steps: int
    horizon_s: float
    checkpoint_interval: int
    session_timeout_s: float
    setup_down_bytes: float = 0.0
    final_down_bytes: float = 0.0
    sync_every: int | None = None  # steps between the strategy's periodic exchanges (fed-lora)
    sync: StepWork | None = None
    module_weight_bytes: float = 0.0
    memory: simpy.Resource | None = None  # session slots in the GPUs' memory (None: unbounded)
    recompute_steps: dict[int, StepWork] | None = None  # steps of sessions that found memory full
    memory_peak: int = 0
    timeline: list[tuple[int, str, float, float]] = field(default_factory=list)


def build_devices(scenario: Any) -> list[DeviceSpec]:
    """Every device of the fleet, in group order, with its own speed, path and outages.

    The fleet's columns (:func:`dlora_sim.sim.fleet.build_fleet`, the ``segment`` engine's
    input too) as one record per device, outages listed for the whole horizon.
    """
    fleet = build_fleet(scenario)
    horizon_s = scenario.run.horizon_s
    devices: list[DeviceSpec] = []
    for index in range(len(fleet)):
        g, member = int(fleet.group[index]), int(fleet.member[index])
        traced = fleet.bandwidth[g] if fleet.bandwidth else None
        devices.append(DeviceSpec(
            index=index,
            group=fleet.group_names[g],
            flops_per_s=float(fleet.flops_per_s[index]),
            joules_per_flop=float(fleet.joules_per_flop[index]),
            memory_bytes=float(fleet.memory_bytes[index]),
            up_bytes_per_s=float(fleet.up_bytes_per_s[index]),
            down_bytes_per_s=float(fleet.down_bytes_per_s[index]),
            rtt_s=float(fleet.rtt_s[index]),
            up_links=fleet.up_links[g],
            down_links=fleet.down_links[g],
            offline=tuple(fleet.outages[g].intervals(member, horizon_s)),
            radio_up_w_per_mbps=float(fleet.radio_up_w_per_mbps[index]),
            radio_down_w_per_mbps=float(fleet.radio_down_w_per_mbps[index]),
            radio_active_w=float(fleet.radio_active_w[index]),
            up_schedule=traced.schedule(member, "up") if traced is not None else None,
            down_schedule=traced.schedule(member, "down") if traced is not None else None,
        ))
    return devices


def _memory_slots(env: simpy.Environment, scenario: Any, spec: Any, strategy: str) -> simpy.Resource | None:
    """Sessions that fit in the pool's GPU memory at once, as a resource (None for edge-only)."""
    slots = memory_slot_count(scenario, spec, strategy)
    return None if slots is None else simpy.Resource(env, capacity=slots)


def _profile(scenario: Any) -> Any:
    """The job's profile; a file that vanished since validation is the user's to fix."""
    try:
        return scenario.job.load_profile()
    except ValueError as error:
        raise InputError(f"{scenario.job.profile}: {error}") from None


def _sampled(n_devices: int, k: int) -> set[int]:
    if k <= 0 or n_devices == 0:
        return set()
    if k >= n_devices:
        return set(range(n_devices))
    return {round(i * (n_devices - 1) / (k - 1)) for i in range(k)} if k > 1 else {0}


def run_strategy(scenario: Any, strategy: str, devices: list[DeviceSpec], on_progress: Any = None) -> StrategyOutcome:
    """Simulate one strategy on the given fleet in a fresh SimPy environment.

    Args:
        scenario: the validated scenario (job, cloud, scheduler, run settings).
        strategy: one of the cost model's strategies.
        devices: the fleet from :func:`build_devices` (shared by every strategy of a paired run).
        on_progress: called with the device-steps applied so far, about 200 times per run.

    Returns:
        The per-device statistics and run totals, SimPy-free.
    """
    job = scenario.job
    spec = job.to_job_spec()
    cloud, sched, run_cfg = scenario.cloud, scenario.scheduler, scenario.run
    env = simpy.Environment()
    gpu = cloud.gpu_spec
    pool = GpuPool(env, cloud.count, gpu.flops_per_s, gpu.memory_bandwidth_bytes_per_s,
                   cloud.batch_max_users, cloud.batch_window_s)
    feasible = fits_on_devices(scenario, strategy, [d.memory_bytes for d in devices])
    plan = cost.get_strategy(strategy)
    admitted = sched.admission_limit or max(1, len(devices))
    run = StrategyRun(
        env=env,
        net=FlowNetwork(env, shared_capacities(scenario), shared_schedules(scenario)),
        pool=pool,
        queue=UpdateQueue(env, sched.queue_capacity),
        admission=simpy.Resource(env, capacity=admitted),
        granularity=run_cfg.granularity,
        offload=job.killed_policy == "offload",
        total_steps=job.total_steps,
        horizon_s=run_cfg.horizon_s,
        checkpoint_interval=sched.checkpoint_interval_steps,
        session_timeout_s=sched.session_timeout_s,
        setup_down_bytes=plan.setup_bytes_down(spec),
        final_down_bytes=plan.final_bytes_down(spec),
        sync_every=plan.sync_every(spec),
        sync=sync_work(spec, strategy),
        module_weight_bytes=cost.offloaded_module_bytes(spec),
        memory=_memory_slots(env, scenario, spec, strategy),
    )
    # the job's one KR schedule, the same that the cost model prices (cost.kr_schedule)
    schedule = cost.kr_schedule(spec, strategy)
    n_modules = job.module_count
    steps: dict[int, StepWork] = {
        n: step_work(spec, strategy, None if plan.kr_arm is None else n)
        for n in {n_modules} | set(schedule.steps_by_active())
    }
    if run.memory is not None and cloud.memory_full == "recompute":
        extra = cost.recompute_cloud_flops(spec)
        run.recompute_steps = {n: with_recompute(work, extra) for n, work in steps.items()}

    sampled = _sampled(len(devices), run_cfg.timeline_sample_devices)
    procs: list[Device | None] = []
    for d, ok in zip(devices, feasible):
        if not ok:
            procs.append(None)
            continue
        device = Device(run, d, steps, spec, schedule, d.index in sampled)
        run.queue.register(d.index, device.ack)
        procs.append(device)
    live = [p for p in procs if p is not None]
    horizon_s = run_cfg.horizon_s
    chunk_s = horizon_s / 200.0
    while env.now < horizon_s:
        env.run(until=min(horizon_s, env.now + chunk_s))
        if on_progress is not None:
            on_progress(sum(p.stats.steps_done for p in live))
        if all(not p.proc.is_alive for p in live):
            break
    stats = [p.stats if p is not None else None for p in procs]
    counters, completion, feasible_mask = counters_from_stats(stats)
    return StrategyOutcome(
        strategy=strategy,
        devices=devices,
        counters=counters,
        completion_s=completion,
        feasible=feasible_mask,
        stats=stats,
        schedule=schedule,
        pool_busy_s=pool.busy_s,
        pool_lost_s=pool.lost_gpu_s,
        pool_batches=pool.batches,
        pool_batched_requests=pool.batched_requests,
        usd_per_gpu_hour=float(gpu.usd_per_hour),
        n_gpus=cloud.count,
        end_s=env.now,
        queue_delivered=run.queue.delivered,
        queue_duplicates=run.queue.duplicates,
        queue_stale=run.queue.stale,
        steps_applied=len(run.queue.applied),
        memory_slots=run.memory.capacity if run.memory is not None else None,
        memory_peak_sessions=run.memory_peak,
        session_bytes=cost.cloud_session_bytes(spec, strategy),
        weight_bytes_per_gpu=cost.cloud_weight_bytes(spec, strategy),
        queue_applied=dict(run.queue.applied),
        peak_link_flows=dict(run.net.peak_flows),
        timeline=run.timeline,
        steady_active=min((r.n_active for r in schedule.rounds), default=n_modules),
    )


def simulate(scenario: Any, progress: bool = False) -> SimulationResult:
    """Simulate every strategy of ``scenario`` on the same fleet and return the paired results.

    With ``run.workers`` above 1 the strategies run side by side in that many processes
    (:mod:`dlora_sim.sim.parallel`); the results are the same, byte for byte.

    Args:
        scenario: a validated :class:`dlora_sim.scenario.Scenario`.
        progress: show a rich progress bar per strategy (device-steps done of all).

    Returns:
        The result records (:mod:`dlora_sim.sim.results`); write them with ``write_results``.

    Raises:
        InputError: the job's profile can no longer be read.
    """
    _profile(scenario)  # fail before simulating anything if the profile is gone
    if scenario.run.granularity == "segment":
        fleet: Any = build_fleet(scenario)
        runner = run_segment_strategy
    else:
        fleet = build_devices(scenario)
        runner = run_strategy
    strategies = list(scenario.run.strategies)
    workers = min(int(scenario.run.workers), len(strategies))
    parallel = workers > 1 and can_fork_workers()
    total_steps = len(fleet) * scenario.job.total_steps
    with ExitStack() as stack:
        # the workers start first: forked, they must meet no other thread (the bar's)
        running = (stack.enter_context(StrategyWorkers(scenario, runner, fleet, strategies, workers, progress))
                   if parallel else None)
        if not progress:
            outcomes = running.results() if running else [runner(scenario, s, fleet) for s in strategies]
            return assemble_result(scenario, outcomes)
        columns = (TextColumn("{task.description:>14}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} device-steps"), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            tasks = {strategy: bar.add_task(strategy, total=total_steps) for strategy in strategies}
            if running:
                outcomes = running.results(lambda strategy, done: bar.update(tasks[strategy], completed=done))
            else:
                outcomes = [runner(scenario, strategy, fleet, lambda done, t=tasks[strategy]: bar.update(t, completed=done))
                            for strategy in strategies]
            for outcome in outcomes:
                bar.update(tasks[outcome.strategy], completed=float(outcome.counters["steps_done"].sum()))
    return assemble_result(scenario, outcomes)
