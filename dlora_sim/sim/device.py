"""One user's device as a SimPy process: open a session, run DLoRA steps, survive disconnections.

The device is a courier with a route card: for every step it computes its part (embedding,
active PEFT modules, head), carries activations up, waits while the cloud runs the frozen base,
carries results back down, and posts a "step done" note to the scheduler. At KR rounds the
job's KR schedule (the cost model's ``kr_schedule``, the same for every device) adds the round's
exchanges: a probe batch where it probes, the norms, and the decision with the weights of newly
killed modules. A round is applied once per step that the device keeps: a retry of the step
after it does not run it again, and a rollback to a checkpoint before it voids it (counted in
``kr_rounds_redone``) so that it runs again when the step is redone.

When its availability says *offline*, the process is interrupted wherever it is: the compute,
transfer or cloud work in flight is lost (and counted), the device waits out the outage, then
rolls its PEFT state back to the last checkpoint and re-opens the session, re-uploading its
offloaded modules if the cloud dropped the session meanwhile (after ``session_timeout_s``).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import simpy

from dlora_sim.sim.faults import FaultHandling
from dlora_sim.sim.rates import RateSchedule
from dlora_sim.kr import KRRound, KRSchedule
from dlora_sim.sim.work import Exchange, StepWork, kr_round_work

if TYPE_CHECKING:
    from dlora_sim.sim.engine import StrategyRun

__all__ = ["DeviceSpec", "Device"]


@dataclass(frozen=True)
class DeviceSpec:
    """Everything fixed about one device, identical for every strategy of a paired run."""

    index: int
    group: str
    flops_per_s: float
    joules_per_flop: float
    memory_bytes: float
    up_bytes_per_s: float
    down_bytes_per_s: float
    rtt_s: float
    up_links: tuple[str, ...]
    down_links: tuple[str, ...]
    offline: tuple[tuple[float, float], ...]
    radio_up_w_per_mbps: float = 0.0
    radio_down_w_per_mbps: float = 0.0
    radio_active_w: float = 0.0
    up_schedule: RateSchedule | None = None  # the own link's rate over time, if traced (else up_bytes_per_s)
    down_schedule: RateSchedule | None = None

    @property
    def up_rate(self) -> float | RateSchedule:
        """What the device's uploads run at: its constant rate or the schedule it follows."""
        return self.up_schedule if self.up_schedule is not None else self.up_bytes_per_s

    @property
    def down_rate(self) -> float | RateSchedule:
        return self.down_schedule if self.down_schedule is not None else self.down_bytes_per_s


@dataclass
class DeviceStats:
    """Per-device totals of one strategy (becomes one row of devices.parquet)."""

    steps_done: int = 0
    completion_s: float | None = None
    edge_flops: float = 0.0
    cloud_flops: float = 0.0
    cloud_gpu_s: float = 0.0
    up_sent_bytes: float = 0.0
    up_received_bytes: float = 0.0
    up_lost_bytes: float = 0.0
    down_sent_bytes: float = 0.0
    down_received_bytes: float = 0.0
    down_lost_bytes: float = 0.0
    round_trips: int = 0
    kr_rounds: int = 0
    kr_probes: int = 0
    kr_up_bytes: float = 0.0
    kills: int = 0
    revives: int = 0
    kr_rounds_redone: int = 0
    disconnections: int = 0
    session_drops: int = 0
    reupload_bytes: float = 0.0
    aborted_steps: int = 0
    redone_steps: int = 0
    lost_edge_flops: float = 0.0
    lost_bytes: float = 0.0
    lost_gpu_s: float = 0.0
    offline_s: float = 0.0
    wait_s: float = 0.0
    link_s: float = 0.0
    cloud_wait_s: float = 0.0
    memory_wait_s: float = 0.0
    recomputed_steps: int = 0
    steady_steps: int = 0
    steady_bytes: float = 0.0
    applied_steps: list[int] = field(default_factory=list)


class Device(FaultHandling):
    """The process of one device under one strategy (fault handling in :mod:`.faults`)."""

    def __init__(
        self, run: StrategyRun, spec: DeviceSpec, steps: dict[int, StepWork], job: Any,
        schedule: KRSchedule, sampled: bool,
    ) -> None:
        self.run = run
        self.env: simpy.Environment = run.env
        self.spec = spec
        self.steps = steps  # n_active -> StepWork
        self.job = job  # the cost model's JobSpec: prices the KR rounds
        self.schedule = schedule
        self._round_after = [r.after_step for r in schedule.rounds]
        self._round_before = {r.after_step + 1: r for r in schedule.rounds}  # step -> round run before it
        self.n_modules = schedule.n_modules
        self.steady_active = schedule.rounds[-1].n_active if schedule.rounds else schedule.n_modules
        self.sampled = sampled
        self.stats = DeviceStats()
        self.next_step = 0
        self.checkpoint = 0
        self.attempts: dict[int, int] = {}  # step -> attempt number of its latest run
        self.unacked: set[tuple[int, int]] = set()  # (step, attempt) notes not yet acknowledged
        self._acks: deque[tuple[float, int, int]] = deque()  # (arrival time, step, attempt) on the way
        self._rounds_held: set[int] = set()  # steps whose preceding KR round has run and holds
        self._rounds_since_ckpt: list[tuple[int, KRRound, float]] = []  # rounds a rollback would void
        self.online = True
        self.connected = False  # a handshake is due (start, and after every outage)
        self.setup_done = False
        self.session_alive = False  # the cloud still holds this device's session
        self.slot: Any = None
        self.memory_slot: Any = None  # this session's activations' room on a GPU during a step
        self.current: tuple[str, Any, float] | None = None
        self._since_ckpt = [0.0, 0.0, 0.0]  # edge FLOPs, delivered bytes, GPU-s since the checkpoint
        self._outage: tuple[float, float] | None = None
        self._next_outage = 0
        self.proc = self.env.process(self._life())
        self._arm_outage()

    # -- helpers -------------------------------------------------------------------------------

    def n_active(self, step: int) -> int:
        """Active modules during ``step``: set by the last KR round before it (all before any)."""
        i = bisect.bisect_left(self._round_after, step) - 1
        return self.schedule.rounds[i].n_active if i >= 0 else self.n_modules

    def _log(self, kind: str, start_s: float) -> None:
        if self.sampled and self.env.now > start_s:
            self.run.timeline.append((self.spec.index, kind, start_s, self.env.now))

    def _log_span(self, kind: str, start_s: float, end_s: float) -> None:
        if end_s > start_s:
            self.run.timeline.append((self.spec.index, kind, start_s, end_s))

    # -- the life of the device -------------------------------------------------------------------

    def _life(self) -> Generator[simpy.Event, Any, None]:
        total = self.run.total_steps
        final_done = self.run.final_down_bytes == 0
        while self.next_step < total or not final_done:
            try:
                if not self.connected:
                    yield from self._open_session()
                if self.next_step < total:
                    yield from self._step(self.next_step)
                else:  # cloud-only: fetch the trained PEFT weights once training is over
                    yield from self._exchange(Exchange(0.0, 0.0, 0.0, 0.0, self.run.final_down_bytes, 1))
                    final_done = True
            except simpy.Interrupt:
                self._abort()
                if not (yield from self._outage_wait()):
                    return
        self.stats.completion_s = self.env.now
        self._release_memory()
        self._release_slot()

    def _open_session(self) -> Generator[simpy.Event, Any, None]:
        """Get an admission slot, then one handshake round trip; re-upload offloaded modules if the
        cloud no longer holds them (new session after a drop)."""
        if self.slot is None:
            start = self.env.now
            request = self.run.admission.request()
            self.current = ("admit", request, start)
            yield request
            self.slot = request
            self.stats.wait_s += self.env.now - start
            self._log("wait", start)
        reupload = 0.0
        if not self.session_alive and self.run.offload:
            reupload = (self.n_modules - self.n_active(self.next_step)) * self.run.module_weight_bytes
        # The first session also fetches the one-off set-up download (embedding/head, or the whole
        # model for edge-only; the cost model's ``setup_bytes_down``).
        setup = self.run.setup_down_bytes if not self.setup_done else 0.0
        start = self.env.now
        yield from self._exchange(Exchange(0.0, reupload, 0.0, 0.0, setup, 1))
        self.setup_done = True
        self.stats.reupload_bytes += reupload
        self.session_alive = True
        self.connected = True
        self._log("session", start)

    def _step(self, step: int) -> Generator[simpy.Event, Any, None]:
        recompute = yield from self._hold_memory()
        kr_round = self._round_before.get(step)
        if kr_round is not None and step not in self._rounds_held:
            yield from self._kr_round(step, kr_round)
        n_active = self.n_active(step)
        work = self.run.recompute_steps[n_active] if recompute else self.steps[n_active]
        exchanges = work.exchanges if self.run.granularity == "module" else (work.total,)
        before = self.stats.up_received_bytes + self.stats.down_received_bytes
        for exchange in exchanges:
            yield from self._exchange(exchange)
        every = self.run.sync_every
        if every and (step + 1) % every == 0:  # the strategy's periodic exchange ends this step
            sync = self.run.sync
            for exchange in sync.exchanges if self.run.granularity == "module" else (sync.total,):
                yield from self._exchange(exchange)
        if n_active == self.steady_active:
            self.stats.steady_steps += 1
            self.stats.steady_bytes += self.stats.up_received_bytes + self.stats.down_received_bytes - before
        self._commit(step)
        self._release_memory()
        put = self.run.queue.put(self.spec.index, step, self.attempts[step])
        if put is not None and not put.triggered:
            start = self.env.now
            self.current = ("put", put, start)
            yield put
            self.stats.wait_s += self.env.now - start
            self._log("wait", start)
        self.current = None

    def _hold_memory(self) -> Generator[simpy.Event, Any, bool]:
        """Room for this step's activations on a GPU: wait for it (``queue``), or, when the GPUs
        are full under ``recompute``, go without and have the cloud recompute (True)."""
        memory = self.run.memory
        if memory is None or self.memory_slot is not None:
            return False
        if self.run.recompute_steps is not None and memory.count >= memory.capacity:
            self.stats.recomputed_steps += 1
            return True
        start = self.env.now
        request = memory.request()
        self.current = ("memory", request, start)
        yield request
        self.memory_slot = request
        self.run.memory_peak = max(self.run.memory_peak, memory.count)
        if self.env.now > start:
            self.stats.memory_wait_s += self.env.now - start
            self._log("memory", start)
        self.current = None
        return False

    def _release_memory(self) -> None:
        if self.memory_slot is not None:
            self.run.memory.release(self.memory_slot)
            self.memory_slot = None

    def _kr_round(self, step: int, kr_round: KRRound) -> Generator[simpy.Event, Any, None]:
        """Run the KR round before ``step``. Its outcome (the decision and the cloud's copies of the
        killed modules) is kept from then on; right after a checkpoint it extends the checkpoint,
        otherwise a rollback before ``step`` voids it."""
        start = self.env.now
        since_ckpt = list(self._since_ckpt)
        work = kr_round_work(self.job, kr_round)
        for exchange in work.exchanges if self.run.granularity == "module" else (work.total,):
            yield from self._exchange(exchange)
        stats = self.stats
        stats.kr_rounds += 1
        stats.kr_probes += int(kr_round.probe)
        stats.kills += kr_round.kills
        stats.revives += kr_round.revives
        stats.kr_up_bytes += work.total.up_bytes
        self._rounds_held.add(step)
        if step == self.checkpoint:
            self._since_ckpt = since_ckpt  # kept with the checkpoint: never lost to a rollback
        else:
            self._rounds_since_ckpt.append((step, kr_round, work.total.up_bytes))
        self._log("kr", start)

    def _exchange(self, e: Exchange) -> Generator[simpy.Event, Any, None]:
        """One round trip: edge compute, upload (+ half the RTTs), cloud, download (+ the rest)."""
        spec, run, stats = self.spec, self.run, self.stats
        half_rtt_s = 0.5 * e.round_trips * spec.rtt_s
        compute_s = e.edge_flops / spec.flops_per_s
        stats.round_trips += e.round_trips
        if compute_s or half_rtt_s:
            # One timeout for the edge compute and the upward half of the RTTs (fewer events);
            # an interruption inside it loses only the compute part already done.
            start = self.env.now
            self.current = ("compute", compute_s, start)
            yield self.env.timeout(compute_s + half_rtt_s)
            stats.link_s += half_rtt_s
            stats.edge_flops += e.edge_flops
            self._since_ckpt[0] += e.edge_flops
            if self.sampled:
                self._log_span("compute", start, start + compute_s)
                self._log_span("upload", start + compute_s, self.env.now)
        if e.up_bytes:
            start = self.env.now
            flow = run.net.transfer(e.up_bytes, spec.up_rate, spec.up_links)
            self.current = ("up", flow, start)
            yield flow.done
            stats.link_s += self.env.now - start
            stats.up_sent_bytes += e.up_bytes
            stats.up_received_bytes += e.up_bytes
            self._since_ckpt[1] += e.up_bytes
            self._log("upload", start)
        if e.cloud_flops:
            start = self.env.now
            request = run.pool.submit(spec.index, e.cloud_flops, e.weight_bytes)
            self.current = ("cloud", request, start)
            yield request.done
            stats.cloud_flops += e.cloud_flops
            stats.cloud_gpu_s += request.gpu_s
            stats.cloud_wait_s += request.start_t - start
            self._since_ckpt[2] += request.gpu_s
            if self.sampled:  # queueing for a GPU (and the batching window), then the GPU work
                self._log_span("wait", start, request.start_t)
                self._log_span("cloud", request.start_t, self.env.now)
        if e.down_bytes or half_rtt_s:
            start = self.env.now
            if e.down_bytes:
                flow = run.net.transfer(e.down_bytes, spec.down_rate, spec.down_links)
                self.current = ("down", flow, start)
                yield flow.done
                stats.down_sent_bytes += e.down_bytes
                stats.down_received_bytes += e.down_bytes
                self._since_ckpt[1] += e.down_bytes
            if half_rtt_s:
                self.current = ("latency", None, start)
                yield self.env.timeout(half_rtt_s)
            stats.link_s += self.env.now - start
            self._log("download", start)
        self.current = None

    def _commit(self, step: int) -> None:
        """The step's update is applied on the device; checkpoint every ``checkpoint_interval``."""
        self.stats.applied_steps.append(step)
        self.stats.steps_done += 1
        self.next_step = step + 1
        self.attempts[step] = self.attempts.get(step, 0) + 1
        self.unacked.add((step, self.attempts[step]))
        self._flush_acks()
        if self.next_step % self.run.checkpoint_interval == 0 or self.next_step == self.run.total_steps:
            self.checkpoint = self.next_step
            self._since_ckpt = [0.0, 0.0, 0.0]
            self._rounds_since_ckpt.clear()
