"""What a device does when the network lets it down: outages, lost work, acks, sessions.

Split from :mod:`dlora_sim.sim.device` so that the happy path (sessions, steps, exchanges)
reads on its own. :class:`FaultHandling` is mixed into :class:`~dlora_sim.sim.device.Device`
and uses its attributes (``env``, ``run``, ``spec``, ``stats``, ``current``, checkpoint state).

When an outage starts, the device process is interrupted wherever it is (:meth:`_abort` counts
what was in flight as lost and rolls back to the last checkpoint), then waits out the outage
(:meth:`_outage_wait`), during which the cloud drops its session once ``session_timeout_s``
has passed; acknowledgements still on their way when the link drops are lost, so the device
re-sends those notes when it is back (at-least-once; the scheduler applies each id once).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

__all__ = ["FaultHandling"]


class FaultHandling:
    """Outage scheduling, abort accounting, checkpoint rollback, acknowledgements, sessions."""

    env: simpy.Environment
    run: Any
    spec: Any
    stats: Any

    def _arm_outage(self) -> None:
        if self._next_outage < len(self.spec.offline):
            t_off, _ = self.spec.offline[self._next_outage]
            if t_off < self.run.horizon_s:
                timer = self.env.timeout(max(0.0, t_off - self.env.now))
                timer.callbacks.append(self._go_offline)

    def _go_offline(self, _event: simpy.Event) -> None:
        t_off, t_on = self.spec.offline[self._next_outage]
        self._next_outage += 1
        if not self.proc.is_alive:
            return
        self._outage = (t_off, t_on)
        self.proc.interrupt("offline")


    def ack(self, step: int, attempt: int) -> None:
        """The scheduler took note ``(step, attempt)``; its acknowledgement lands one RTT later, and
        is lost if the device goes offline before then (the note is then re-sent: at-least-once)."""
        self._acks.append((self.env.now + self.spec.rtt_s, step, attempt))

    def _flush_acks(self) -> None:
        now = self.env.now
        while self._acks and self._acks[0][0] <= now:
            _, step, attempt = self._acks.popleft()
            self.unacked.discard((step, attempt))


    def _abort(self) -> None:
        """Going offline: cancel whatever was in flight and count it as lost."""
        stats, now = self.stats, self.env.now
        self._flush_acks()
        self._acks.clear()  # acknowledgements still on the way are lost with the connection
        self.online = False
        self.connected = False
        stats.disconnections += 1
        if self.current is not None:
            kind, obj, start = self.current
            if kind in ("up", "down", "latency"):
                stats.link_s += now - start  # the radio was busy until the cut
            if kind == "compute":
                stats.link_s += max(0.0, now - start - obj)  # inside the upward half RTT
                flops = min(now - start, obj) * self.spec.flops_per_s
                stats.edge_flops += flops
                stats.lost_edge_flops += flops
            elif kind in ("up", "down"):
                sent = self.run.net.cancel(obj)
                if kind == "up":
                    stats.up_sent_bytes += sent
                    stats.up_lost_bytes += sent
                else:
                    stats.down_sent_bytes += sent
                    stats.down_lost_bytes += sent
                stats.lost_bytes += sent
            elif kind == "cloud":
                self.run.pool.cancel(obj)
                if obj.started:
                    stats.cloud_gpu_s += obj.gpu_s
                    stats.lost_gpu_s += obj.gpu_s
            elif kind in ("admit", "memory"):
                resource = self.run.admission if kind == "admit" else self.run.memory
                if obj.triggered:  # granted, but the process had not resumed yet: give it back
                    resource.release(obj)
                else:
                    obj.cancel()
            elif kind == "put":
                obj.cancel()
            if kind not in ("admit", "memory", "put"):
                stats.aborted_steps += 1
            self._log("lost", start)
        self.current = None
        self._release_memory()  # the step's activations are gone with it
        # Roll back to the checkpoint: applied-but-uncheckpointed steps are redone, the KR rounds
        # between them are void, and the scheduler forgets those updates (told at reconnection).
        redo = self.next_step - self.checkpoint
        self._void_rounds()
        if redo:
            self.run.queue.discard(self.spec.index, self.checkpoint)
            self.unacked = {(s, a) for s, a in self.unacked if s < self.checkpoint}
            stats.redone_steps += redo
            del stats.applied_steps[len(stats.applied_steps) - redo:]
            stats.steps_done -= redo
            stats.lost_edge_flops += self._since_ckpt[0]
            stats.lost_bytes += self._since_ckpt[1]
            stats.lost_gpu_s += self._since_ckpt[2]
        self._since_ckpt = [0.0, 0.0, 0.0]
        self.next_step = self.checkpoint

    def _void_rounds(self) -> None:
        """Undo the counts of the KR rounds after the checkpoint: they run again with their steps."""
        stats = self.stats
        for step, kr_round, up_bytes in self._rounds_since_ckpt:
            self._rounds_held.discard(step)
            stats.kr_rounds -= 1
            stats.kr_probes -= int(kr_round.probe)
            stats.kills -= kr_round.kills
            stats.revives -= kr_round.revives
            stats.kr_up_bytes -= up_bytes
            stats.kr_rounds_redone += 1
        self._rounds_since_ckpt.clear()

    def _outage_wait(self) -> Generator[simpy.Event, Any, bool]:
        """Wait until online again; the cloud drops the session after its timeout. False: never back."""
        assert self._outage is not None
        t_off, t_on = self._outage
        start = self.env.now
        horizon = self.run.horizon_s
        timeout_s = self.run.session_timeout_s
        if t_on - start > timeout_s:
            yield self.env.timeout(timeout_s)
            self.session_alive = False
            self.stats.session_drops += 1
            self._release_slot()
        if t_on >= horizon:
            self.stats.offline_s += horizon - start
            if self.sampled:
                self.run.timeline.append((self.spec.index, "offline", start, horizon))
            return False
        yield self.env.timeout(t_on - self.env.now)
        self.stats.offline_s += self.env.now - start
        self._log("offline", start)
        self.online = True
        self._arm_outage()
        for step, attempt in sorted(self.unacked):  # at-least-once: re-send every unacknowledged note
            self.run.queue.put(self.spec.index, step, attempt)
        return True

    def _release_slot(self) -> None:
        if self.slot is not None:
            self.run.admission.release(self.slot)
            self.slot = None
