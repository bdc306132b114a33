"""The scheduler's inbox: a bounded message queue with at-least-once delivery, idempotent apply.

A post office box of fixed size: devices drop "step s of device d is done" notes; the scheduler
empties the box one note at a time. When the box is full, a device waits at the counter
(back-pressure). Delivery is *at least once*: a device keeps every note the scheduler has not
acknowledged, and after a disconnection it posts them again, so the same note can arrive twice.
The scheduler applies a note only if it has not seen its ``(device, step)`` id before, so
nothing is applied twice and, because unacknowledged notes are always re-sent, nothing is lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import simpy

__all__ = ["UpdateQueue"]


class UpdateQueue:
    """Bounded FIFO of ``(device, step)`` ids with an idempotent consumer."""

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
        self.applied: Counter[tuple[int, int]] = Counter()  # id -> times applied (always 1)
        self.delivered = 0
        self.duplicates = 0
        self.peak_len = 0
        self._on_apply: dict[int, Callable[[int], None]] = {}
        self._busy = False
        env.process(self._consume())

    def register(self, device: int, on_ack: Callable[[int], None]) -> None:
        """Route acknowledgements of ``device``'s messages to ``on_ack(step)``."""
        self._on_apply[device] = on_ack

    def put(self, device: int, step: int) -> simpy.events.Event | None:
        """Post a message; the returned event triggers once it is in the queue (may wait if full).

        Returns None when the message was applied at once: an instant scheduler (``service_s``
        0) with nothing queued needs no events, which keeps the common case cheap.
        """
        if self.service_s == 0 and not self._store.items and not self._busy:
            self._apply(device, step)
            return None
        event = self._store.put((device, step))
        if len(self._store.items) > self.peak_len:
            self.peak_len = len(self._store.items)
        return event

    def _consume(self):  # type: ignore[no-untyped-def]
        while True:
            device, step = yield self._store.get()
            self._busy = True
            if self.service_s:
                yield self.env.timeout(self.service_s)
            self._busy = False
            self._apply(device, step)

    def _apply(self, device: int, step: int) -> None:
        self.delivered += 1
        if (device, step) in self.applied:
            self.duplicates += 1  # a re-sent message: acknowledge again, apply nothing
        else:
            self.applied[(device, step)] += 1
        ack = self._on_apply.get(device)
        if ack is not None:
            ack(step)
