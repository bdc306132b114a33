"""The cloud GPU pool: a few GPUs serving every user's frozen base, in cross-user batches.

Like a bus stop: requests (one user's frozen-base work for a step, or for one round trip at
``module`` granularity) queue at the stop; a free GPU (bus) leaves with up to ``max_batch``
waiting requests as soon as the batch is full, or once the oldest request has waited
``window_s``; a request arriving at an idle pool with ``window_s = 0`` leaves at once.

Service time of a batch (a roofline, documented in docs/simulator.md): the GPU must stream the
frozen weights the batch touches once, whatever the batch size, and do every request's FLOPs::

    t_batch = max(max_i weight_bytes_i / hbm_bytes_per_s, sum_i flops_i / (peak * efficiency))

so batching pays where the work is memory-bound (few tokens per user) and is neutral where it is
compute-bound. ``weight_bytes`` of a request is supplied by the caller (the engine derives it
from the cost model's cloud FLOPs: 2 FLOPs per weight per token per pass).
A request whose user goes offline is cancelled: still queued, it leaves the queue; already on a
GPU, the batch finishes anyway and its share of GPU time is counted as lost work.
"""

from __future__ import annotations

from collections import deque

import simpy

__all__ = ["CloudRequest", "GpuPool"]


class CloudRequest:
    """One unit of frozen-base work. ``done`` triggers when its batch finishes."""

    __slots__ = ("owner", "flops", "weight_bytes", "arrival_t", "start_t", "done", "cancelled", "started", "gpu_s")

    def __init__(self, env: simpy.Environment, owner: int, flops: float, weight_bytes: float) -> None:
        self.owner = owner
        self.flops = flops
        self.weight_bytes = weight_bytes
        self.arrival_t = env.now
        self.start_t = env.now  # when its batch starts on a GPU (queueing = start_t - arrival_t)
        self.done = env.event()
        self.cancelled = False
        self.started = False
        self.gpu_s = 0.0


class GpuPool:
    """``n_gpus`` identical GPUs with cross-user batching."""

    def __init__(
        self,
        env: simpy.Environment,
        n_gpus: int,
        flops_per_s: float,
        hbm_bytes_per_s: float,
        max_batch: int,
        window_s: float,
    ) -> None:
        """Args:
            env: the SimPy environment.
            n_gpus: GPUs in the pool (>= 1).
            flops_per_s: sustained FLOP/s of one GPU (peak × efficiency).
            hbm_bytes_per_s: memory bandwidth of one GPU (bytes/s).
            max_batch: most requests (users) batched together (>= 1).
            window_s: longest a request waits for a batch to fill while a GPU is free.

        Raises:
            ValueError: a non-positive count, rate or batch size, or a negative window.
        """
        if n_gpus < 1 or max_batch < 1 or not flops_per_s > 0 or not hbm_bytes_per_s > 0 or window_s < 0:
            raise ValueError(
                f"GpuPool needs n_gpus, max_batch >= 1, rates > 0, window >= 0; got {n_gpus}, "
                f"{max_batch}, {flops_per_s}, {hbm_bytes_per_s}, {window_s}"
            )
        self.env = env
        self.n_gpus = n_gpus
        self.flops_per_s = flops_per_s
        self.hbm_bytes_per_s = hbm_bytes_per_s
        self.max_batch = max_batch
        self.window_s = window_s
        self._idle = n_gpus
        self._queue: deque[CloudRequest] = deque()
        self._timer_at: float | None = None
        self._waiting = 0  # live (not cancelled) requests in the queue
        self.busy_s = 0.0
        self.batches = 0
        self.batched_requests = 0
        self.lost_gpu_s = 0.0

    def submit(self, owner: int, flops: float, weight_bytes: float) -> CloudRequest:
        """Queue work for ``owner``; yield ``request.done`` to wait for the result."""
        request = CloudRequest(self.env, owner, float(flops), float(weight_bytes))
        if flops <= 0:
            request.done.succeed(0.0)
            return request
        self._queue.append(request)
        self._waiting += 1
        self._dispatch()
        return request

    def cancel(self, request: CloudRequest) -> None:
        """The owner left: drop the request if queued; if running, its GPU time becomes lost work."""
        if request.done.triggered or request.cancelled:
            return
        request.cancelled = True
        if request.started:
            self.lost_gpu_s += request.gpu_s
        else:
            self._waiting -= 1
        # A cancelled queued request is skipped when a batch is formed (lazy removal).

    def service_s(self, batch: list[CloudRequest]) -> float:
        """Roofline time of one batch on one GPU."""
        flops = sum(r.flops for r in batch)
        weights = max(r.weight_bytes for r in batch)
        return max(flops / self.flops_per_s, weights / self.hbm_bytes_per_s)

    # -- internals ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        now = self.env.now
        while self._idle > 0 and self._waiting > 0:
            while self._queue[0].cancelled:
                self._queue.popleft()
            oldest = self._queue[0]
            full = self._waiting >= self.max_batch
            due = oldest.arrival_t + self.window_s
            # Relative tolerance: at large t, now and arrival + window differ by float rounding.
            if not (full or self.window_s == 0 or now >= due - 1e-9 * max(1.0, due)):
                if self._timer_at is None or due < self._timer_at:
                    self._timer_at = due
                    timer = self.env.timeout(due - now)
                    timer.callbacks.append(self._on_timer)
                return
            batch: list[CloudRequest] = []
            while self._queue and len(batch) < self.max_batch:
                request = self._queue.popleft()
                if not request.cancelled:
                    batch.append(request)
            self._waiting -= len(batch)
            self._start(batch)

    def _on_timer(self, _event: simpy.Event) -> None:
        self._timer_at = None
        self._dispatch()

    def _start(self, batch: list[CloudRequest]) -> None:
        self._idle -= 1
        duration_s = self.service_s(batch)
        total_flops = sum(r.flops for r in batch)
        for request in batch:
            request.started = True
            request.start_t = self.env.now
            request.gpu_s = duration_s * request.flops / total_flops
        self.busy_s += duration_s
        self.batches += 1
        self.batched_requests += len(batch)
        timer = self.env.timeout(duration_s)
        timer.callbacks.append(lambda _e, b=batch: self._finish(b))

    def _finish(self, batch: list[CloudRequest]) -> None:
        self._idle += 1
        for request in batch:
            if not request.cancelled:
                request.done.succeed(request.gpu_s)
        self._dispatch()
