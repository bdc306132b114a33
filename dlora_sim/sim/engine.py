"""``simulate``: run every strategy of a scenario on the same fleet, same outages, same seed.

The engine is the stage manager: it builds the world once (devices with their speeds, links,
paths through the shared network and outage intervals, all drawn from per-device random
streams), then, for each strategy, builds a fresh SimPy environment with its own GPU pool,
shared links, scheduler queue and admission limit, starts one process per device, and runs until
every device has finished or the horizon is reached. Because the world is built before any
strategy runs, the strategies differ only in what the cost model says each step costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import simpy
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from dlora_sim import cost
from dlora_sim.errors import InputError
from dlora_sim.sim import availability
from dlora_sim.sim.cloud import GpuPool
from dlora_sim.sim.device import Device, DeviceSpec
from dlora_sim.sim.links import FlowNetwork
from dlora_sim.sim.network import build_topology
from dlora_sim.sim.queue import UpdateQueue
from dlora_sim.sim.results import SimulationResult, StrategyOutcome, assemble_result
from dlora_sim.sim.rng import stream
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

    Each random quantity comes from the device's own stream (seed, device index, purpose), so a
    device is the same whatever the strategy or the other groups.
    """
    topology = build_topology(scenario)
    seed = scenario.run.seed
    horizon_s = scenario.run.horizon_s
    devices: list[DeviceSpec] = []
    index = 0
    for group in scenario.fleet.groups:
        path = topology.path(group.name)
        up_links = tuple(f"{link.id}:up" for link in path)
        down_links = tuple(f"{link.id}:down" for link in path)
        base_rtt_s = group.link.rtt_s + topology.added_rtt_s(group.name)
        goodput = 1.0 - group.link.loss_rate  # lost packets are resent: goodput falls by the loss rate
        radio = _radio_watts(group.link)
        capacities = group.capacities()
        for member in range(group.count):
            spread = group.compute_spread
            factor = 1.0 + spread * (2.0 * stream(seed, index, "speed").random() - 1.0) if spread else 1.0
            flops_per_s, memory_bytes = group.device.flops_per_s * factor, group.device.memory_bytes
            up_bps, down_bps = group.link.up_bps, group.link.down_bps
            if capacities:  # a trace device drawn with the run seed replaces the catalog's numbers
                row = capacities[int(stream(seed, index, "capacity").integers(len(capacities)))]
                flops_per_s, memory_bytes, up_bps, down_bps = row.flops_per_s, row.memory_bytes, row.up_bps, row.down_bps
            jitter_s = group.link.jitter_s * stream(seed, index, "jitter").random() if group.link.jitter_s else 0.0
            offline = availability.offline_intervals(
                group.availability, horizon_s, stream(seed, index, "availability"), member
            )
            devices.append(DeviceSpec(
                index=index,
                group=group.name,
                flops_per_s=flops_per_s,
                joules_per_flop=group.device.joules_per_flop,
                memory_bytes=memory_bytes,
                up_bytes_per_s=up_bps / 8.0 * goodput,
                down_bytes_per_s=down_bps / 8.0 * goodput,
                rtt_s=base_rtt_s + jitter_s,
                up_links=up_links,
                down_links=down_links,
                offline=tuple(offline),
                radio_up_w_per_mbps=radio[0],
                radio_down_w_per_mbps=radio[1],
                radio_active_w=radio[2],
            ))
            index += 1
    return devices


def _radio_watts(link: Any) -> tuple[float, float, float]:
    """The link's radio power model (Huang et al. 2012, as in the cost model's catalogue):
    from the scenario's link if it states it, else from the catalogue entry of the same name,
    else none (0 W)."""
    names = ("up_w_per_mbps", "down_w_per_mbps", "active_w")
    if all(hasattr(link, n) for n in names):
        return tuple(float(getattr(link, n)) for n in names)  # type: ignore[return-value]
    entry = cost.LINKS.get(getattr(link, "name", ""))
    if entry is None:
        return (0.0, 0.0, 0.0)
    return tuple(float(getattr(entry, n, 0.0)) for n in names)  # type: ignore[return-value]


def shared_capacities(scenario: Any) -> dict[str, float]:
    """Capacity of each direction of each shared link, in bytes/s."""
    topology = build_topology(scenario)
    out: dict[str, float] = {}
    for link in topology.links.values():
        out[f"{link.id}:up"] = link.capacity_bps / 8.0
        out[f"{link.id}:down"] = link.capacity_bps / 8.0
    return out


def _memory_slots(env: simpy.Environment, scenario: Any, spec: Any, strategy: str) -> simpy.Resource | None:
    """Sessions that fit in the pool's GPU memory at once, as a resource (None for edge-only).

    Raises:
        InputError: not one session fits beside the frozen weights on a GPU.
    """
    if strategy == "edge-only":
        return None
    gpu = scenario.cloud.gpu_spec
    per_gpu = cost.sessions_per_gpu(spec, strategy, gpu)
    if per_gpu < 1:
        raise InputError(
            f"cloud.memory_gib: {strategy} needs {cost.cloud_weight_bytes(spec, strategy) / 2**30:.1f} GiB of "
            f"weights + {cost.cloud_session_bytes(spec, strategy) / 2**30:.1f} GiB per session on one GPU, "
            f"but a {gpu.name} has {gpu.memory_bytes / 2**30:.1f} GiB")
    return simpy.Resource(env, capacity=min(per_gpu * scenario.cloud.count, 2**31 - 1))


def _profile(scenario: Any) -> Any:
    """The job's profile; a file that vanished since validation is the user's to fix."""
    try:
        return scenario.job.load_profile()
    except ValueError as error:
        raise InputError(f"{scenario.job.profile}: {error}") from None


def fits_on_devices(scenario: Any, strategy: str, devices: list[DeviceSpec]) -> list[bool]:
    """Which devices hold what the strategy keeps on them: weights and trainer state (the
    whole model for edge-only and fed-lora; activations not counted)."""
    needed_bytes = cost.edge_weight_bytes(scenario.job.to_job_spec(), strategy)
    return [d.memory_bytes >= needed_bytes for d in devices]


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
    feasible = fits_on_devices(scenario, strategy, devices)
    plan = cost.get_strategy(strategy)
    admitted = sched.admission_limit or max(1, len(devices))
    run = StrategyRun(
        env=env,
        net=FlowNetwork(env, shared_capacities(scenario)),
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
    return StrategyOutcome(
        strategy=strategy,
        devices=devices,
        stats=[p.stats if p is not None else None for p in procs],
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

    Args:
        scenario: a validated :class:`dlora_sim.scenario.Scenario`.
        progress: show a rich progress bar per strategy (device-steps done of all).

    Returns:
        The result records (:mod:`dlora_sim.sim.results`); write them with ``write_results``.

    Raises:
        InputError: the job's profile can no longer be read.
    """
    _profile(scenario)  # fail before simulating anything if the profile is gone
    devices = build_devices(scenario)
    strategies = list(scenario.run.strategies)
    outcomes: list[StrategyOutcome] = []
    total_steps = len(devices) * scenario.job.total_steps
    if progress:
        columns = (TextColumn("{task.description:>14}"), BarColumn(), TextColumn("{task.completed:,.0f}/{task.total:,.0f} device-steps"), TimeElapsedColumn())
        with Progress(*columns, transient=False) as bar:
            for strategy in strategies:
                task = bar.add_task(strategy, total=total_steps)
                outcome = run_strategy(scenario, strategy, devices, lambda done, t=task: bar.update(t, completed=done))
                bar.update(task, completed=sum(s.steps_done for s in outcome.stats if s is not None))
                outcomes.append(outcome)
    else:
        outcomes = [run_strategy(scenario, strategy, devices) for strategy in strategies]
    return assemble_result(scenario, outcomes)
