"""The scheduler's inbox: a bounded message queue with at-least-once delivery, idempotent apply.

A post office box of fixed size: devices drop "step s of device d is done" notes; the scheduler
empties the box one note at a time. When the box is full, a device waits at the counter
(back-pressure). Delivery is *at least once*: a device keeps every note the scheduler has not
acknowledged, and after a disconnection it posts them again, so the same note can arrive twice.

A note is keyed by ``(device, step, attempt)``: a device that rolls back to its checkpoint
redoes the steps after it, and each redo is a new attempt of the same step. The scheduler keeps,
per ``(device, step)``, only the attempt the device kept: :meth:`UpdateQueue.discard` (the
device's rollback, told at reconnection) forgets the applied attempts from the checkpoint on,
a newer attempt supersedes an older one, and a note of an older attempt still on its way is
ignored. So nothing is applied twice, and because unacknowledged notes are always re-sent,
nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

__all__ = ["UpdateQueue"]


class UpdateQueue:
    """Bounded FIFO of ``(device, step, attempt)`` ids with an idempotent consumer."""

    def __init__(self, env: simpy.Environment, capacity: int, service_s: float = 0.0) -> None:
        """Args:
            env: the SimPy environment.
            capacity: most messages waiting at once (>= 1).
            service_s: scheduler time to apply one message.

        Raises:
            ValueError: capacity < 1 or negative service time.
        """
        if capacity < 1 or service_s < 0:
            raise ValueError(f"queue needs capacity >= 1 and service_s >= 0, got {capacity}, {service_s}")
        self.env = env
        self.service_s = service_s
        self._store = simpy.Store(env, capacity=capacity)
        self.applied: dict[tuple[int, int], int] = {}  # (device, step) -> the attempt applied
        self._discarded: dict[tuple[int, int], int] = {}  # (device, step) -> last attempt rolled back
        self._highest: dict[int, int] = {}  # device -> highest step ever applied
        self.delivered = 0
        self.duplicates = 0
        self.stale = 0
        self.peak_len = 0
        self._on_apply: dict[int, Callable[[int], None]] = {}
        self._busy = False
        env.process(self._consume())

    def register(self, device: int, on_ack: Callable[[int, int], None]) -> None:
        """Route acknowledgements of ``device``'s messages to ``on_ack(step, attempt)``."""
        self._on_apply[device] = on_ack

    def discard(self, device: int, from_step: int) -> None:
        """``device`` rolled back to the checkpoint before ``from_step``: its applied updates of
        ``from_step`` and later are void, and notes of those attempts still on their way too."""
        # a device's applied steps never pass its highest one: walk only the rolled-back range
        for step in range(from_step, self._highest.get(device, -1) + 1):
            attempt = self.applied.pop((device, step), None)
            if attempt is not None:
                self._discarded[(device, step)] = attempt

    def put(self, device: int, step: int, attempt: int = 1) -> simpy.events.Event | None:
        """Post a message; the returned event triggers once it is in the queue (may wait if full).

        Returns None when the message was applied at once: an instant scheduler (``service_s``
        0) with nothing queued needs no events, which keeps the common case cheap.
        """
        if self.service_s == 0 and not self._store.items and not self._busy:
            self._apply(device, step, attempt)
            return None
        event = self._store.put((device, step, attempt))
        if len(self._store.items) > self.peak_len:
            self.peak_len = len(self._store.items)
        return event

    def _consume(self):  # type: ignore[no-untyped-def]
        while True:
            device, step, attempt = yield self._store.get()
            self._busy = True
            if self.service_s:
                yield self.env.timeout(self.service_s)
            self._busy = False
            self._apply(device, step, attempt)

    def _apply(self, device: int, step: int, attempt: int) -> None:
        self.delivered += 1
        key = (device, step)
        if attempt <= self._discarded.get(key, 0) or attempt < self.applied.get(key, 0):
            self.stale += 1  # an attempt the device has since rolled back: apply nothing
        elif self.applied.get(key) == attempt:
            self.duplicates += 1  # a re-sent message: acknowledge again, apply nothing
        else:
            self.applied[key] = attempt
            if step > self._highest.get(device, -1):
                self._highest[device] = step
        ack = self._on_apply.get(device)
        if ack is not None:
            ack(step, attempt)
