"""The fleet as columns: every device's speed, links, path and outages, drawn vectorised.

Both engines read the same fleet. The ``step`` engine turns it into one
:class:`~dlora_sim.sim.device.DeviceSpec` per device; the ``segment`` engine keeps the columns
(numpy arrays, O(devices) memory) and asks for outages in blocks as its devices need them, so
that a million devices never hold their whole horizon of outages at once.

Random numbers come from one stream per (seed, fleet group, purpose) and are drawn for all
members of the group at once (:func:`group_stream`). A member's draws are the first ``count``
values of that stream, so a device is the same whatever the strategy, the other groups or the
size of its own group beyond it; paired strategies meet the same devices and the same outages.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from dlora_sim import cost
from dlora_sim.sim.availability import complement
from dlora_sim.sim.network import build_topology
from dlora_sim.sim.rates import RateSchedule

__all__ = ["Fleet", "GroupBandwidth", "GroupOutages", "build_fleet", "group_stream"]

#: outage intervals drawn per device and block; a device that needs more gets the next block
OUTAGE_BLOCK = 16


def group_stream(seed: int, group: str, purpose: str, block: int = 0) -> np.random.Generator:
    """The generator of one fleet group and purpose (``block`` numbers successive outage draws).

    ``zlib.crc32`` rather than ``hash()``: Python salts string hashes per process, which would
    break byte-identical reruns.
    """
    if seed < 0 or block < 0:
        raise ValueError(f"seed and block must be >= 0, got {seed}, {block}")
    return np.random.default_rng([int(seed), zlib.crc32(group.encode("utf-8")), zlib.crc32(purpose.encode("utf-8")), int(block)])


class GroupOutages:
    """The offline intervals of one group's devices, ``OUTAGE_BLOCK`` at a time.

    ``block(b)`` returns ``(t_off, t_on)``, two arrays of shape ``(count, OUTAGE_BLOCK)``: the
    device's outages number ``b*OUTAGE_BLOCK`` to ``(b+1)*OUTAGE_BLOCK - 1`` (``inf`` once it has
    none left). Markov intervals chain from block to block through the end of the previous
    block, so blocks are made in order; :meth:`forget_below` drops those no device needs.
    """

    def __init__(self, model: Any, count: int, seed: int, group: str) -> None:
        self.kind = getattr(model, "kind", "always")
        self.model = model
        self.count = count
        self.seed = seed
        self.group = group
        self._blocks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._trace: list[list[tuple[float, float]]] | None = None

    def block(self, b: int, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
        if b in self._blocks:
            return self._blocks[b]
        shape = (self.count, OUTAGE_BLOCK)
        if self.kind == "always":
            out = (np.full(shape, np.inf), np.full(shape, np.inf))
        elif self.kind == "markov":
            out = self._markov_block(b, horizon_s)
        elif self.kind == "trace":
            out = self._trace_block(b, horizon_s)
        else:
            raise ValueError(f"unknown availability kind {self.kind!r}")
        self._blocks[b] = out
        return out

    def forget_below(self, b: int) -> None:
        """Drop the blocks before ``b`` (every device has moved past them): O(devices) memory."""
        for old in [k for k in self._blocks if k < b - 1]:  # b - 1 stays: block b chains from it
            del self._blocks[old]

    def _markov_block(self, b: int, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
        model = self.model
        rng = group_stream(self.seed, self.group, "availability", b)
        draws = rng.exponential(1.0, size=(self.count, 2 * OUTAGE_BLOCK))
        online = draws[:, 0::2] * float(model.mean_online_s)
        offline = draws[:, 1::2] * float(model.mean_offline_s)
        if b == 0:
            start = np.zeros(self.count)
            if not model.start_online:
                online[:, 0] = 0.0  # the device starts in its first outage
        else:
            start = self.block(b - 1, horizon_s)[1][:, -1]
        period = np.cumsum(online + offline, axis=1)
        t_on = start[:, None] + period
        t_off = t_on - offline
        late = t_off >= horizon_s
        t_off[late] = np.inf
        t_on[late] = np.inf
        return t_off, t_on

    def _trace_block(self, b: int, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
        if self._trace is None:
            self._trace = [complement(self.model.intervals_for(m), horizon_s) for m in range(self.count)]
        t_off = np.full((self.count, OUTAGE_BLOCK), np.inf)
        t_on = np.full((self.count, OUTAGE_BLOCK), np.inf)
        lo = b * OUTAGE_BLOCK
        for m, intervals in enumerate(self._trace):
            part = intervals[lo:lo + OUTAGE_BLOCK]
            for k, (a, z) in enumerate(part):
                if a < horizon_s:
                    t_off[m, k], t_on[m, k] = a, z
        return t_off, t_on

    def intervals(self, member: int, horizon_s: float) -> list[tuple[float, float]]:
        """Every offline interval of one member before the horizon (the ``step`` engine's list)."""
        out: list[tuple[float, float]] = []
        b = 0
        while True:
            t_off, t_on = self.block(b, horizon_s)
            for a, z in zip(t_off[member], t_on[member]):
                if not np.isfinite(a):
                    return out
                out.append((float(a), float(z)))
            b += 1
            self.forget_below(b)


class GroupBandwidth:
    """Which bandwidth trace each device of a group follows, per direction, from where.

    Each device draws a trace of the file (unless the spec names one) and an offset into it from
    the group's ``bandwidth`` streams, one value each per device: device ``m`` takes trace
    ``floor(pick_m · n)`` of a file of ``n`` traces and, with ``offset_s = "random"``, starts
    ``phase_m`` × that trace's duration into it. Both directions use the same two draws, so
    paired up and down files (one recording each, the same ids and lengths) stay in step.
    """

    def __init__(self, spec: Any, count: int, seed: int, group: str, goodput: float) -> None:
        self.spec = spec
        self.pick = group_stream(seed, group, "bandwidth-trace").random(count)
        self.phase = group_stream(seed, group, "bandwidth-offset").random(count)
        self.shapes: dict[str, list[RateSchedule]] = {}
        self.names: dict[str, list[str]] = {}
        self.paths: dict[str, str] = {}
        self.factor = factor = spec.scale * goodput * 1e6 / 8.0  # Mbit/s -> bytes/s of goodput
        for direction in ("up", "down"):
            traces = spec.traces(direction)
            if traces:
                self.paths[direction] = str(getattr(spec, direction))
                self.shapes[direction] = [RateSchedule.from_trace(t, factor, spec.mode == "looped") for t in traces]
                self.names[direction] = [t.name for t in traces]

    def traced(self, direction: str) -> bool:
        return direction in self.shapes

    def _index(self, direction: str) -> np.ndarray:
        return np.minimum((self.pick * len(self.shapes[direction])).astype(np.int64), len(self.shapes[direction]) - 1)

    def mean_bytes_per_s(self, direction: str) -> np.ndarray:
        """Each device's time-average goodput in ``direction`` (bytes/s)."""
        means = np.array([shape.mean for shape in self.shapes[direction]])
        return means[self._index(direction)]

    def schedule(self, member: int, direction: str) -> RateSchedule | None:
        """The schedule device ``member`` follows in ``direction`` (None: the link's constant rate);
        its ``key`` is (file, trace id, bytes/s per Mbit/s, looped, offset)."""
        shapes = self.shapes.get(direction)
        if shapes is None:
            return None
        k = min(int(self.pick[member] * len(shapes)), len(shapes) - 1)
        shape = shapes[k]
        offset = float(self.phase[member]) * shape.period if self.spec.offset_s == "random" else float(self.spec.offset_s)
        key = (self.paths[direction], self.names[direction][k], self.factor, shape.looped, offset)
        return shape.with_offset(offset, key)


@dataclass
class Fleet:
    """Every device as a column (index = device id, in group order)."""

    group_names: tuple[str, ...]
    group: np.ndarray  # int: index into group_names
    member: np.ndarray  # int: index inside its group
    flops_per_s: np.ndarray
    joules_per_flop: np.ndarray
    memory_bytes: np.ndarray
    up_bytes_per_s: np.ndarray
    down_bytes_per_s: np.ndarray
    rtt_s: np.ndarray
    radio_up_w_per_mbps: np.ndarray
    radio_down_w_per_mbps: np.ndarray
    radio_active_w: np.ndarray
    up_links: tuple[tuple[str, ...], ...]  # per group
    down_links: tuple[tuple[str, ...], ...]  # per group
    outages: tuple[GroupOutages, ...]  # per group
    group_start: np.ndarray  # first device id of each group
    bandwidth: tuple[GroupBandwidth | None, ...] = ()  # per group: its traced links (step engine)

    def __len__(self) -> int:
        return int(self.group.shape[0])


def build_fleet(scenario: Any) -> Fleet:
    """The scenario's fleet as columns, each random quantity drawn per group in one call."""
    topology = build_topology(scenario)
    seed = scenario.run.seed
    columns: dict[str, list[np.ndarray]] = {k: [] for k in (
        "group", "member", "flops_per_s", "joules_per_flop", "memory_bytes", "up", "down", "rtt",
        "radio_up", "radio_down", "radio_active")}
    names, ups, downs, outages, starts, bandwidth = [], [], [], [], [], []
    first = 0
    for g, group in enumerate(scenario.fleet.groups):
        n = int(group.count)
        path = topology.path(group.name)
        names.append(group.name)
        ups.append(tuple(f"{link.id}:up" for link in path))
        downs.append(tuple(f"{link.id}:down" for link in path))
        starts.append(first)
        first += n
        goodput = 1.0 - group.link.loss_rate  # lost packets are resent: goodput falls by the loss rate
        spread = group.compute_spread
        factor = 1.0 + spread * (2.0 * group_stream(seed, group.name, "speed").random(n) - 1.0) if spread else np.ones(n)
        flops = group.device.flops_per_s * factor
        memory = np.full(n, float(group.device.memory_bytes))
        up_bps = np.full(n, float(group.link.up_bps))
        down_bps = np.full(n, float(group.link.down_bps))
        capacities = group.capacities()
        if capacities:  # a trace device drawn with the run seed replaces the catalog's numbers
            rows = group_stream(seed, group.name, "capacity").integers(len(capacities), size=n)
            table = np.array([(r.flops_per_s, r.memory_bytes, r.up_bps, r.down_bps) for r in capacities], dtype=float)
            flops, memory, up_bps, down_bps = (table[rows, k] for k in range(4))
        traced = (GroupBandwidth(group.bandwidth_trace, n, seed, group.name, goodput)
                  if getattr(group, "bandwidth_trace", None) is not None else None)
        if traced is not None:  # the columns hold a traced direction's time-average rate
            up_bps = traced.mean_bytes_per_s("up") * 8.0 / goodput if traced.traced("up") else up_bps
            down_bps = traced.mean_bytes_per_s("down") * 8.0 / goodput if traced.traced("down") else down_bps
        bandwidth.append(traced)
        jitter = (group.link.jitter_s * group_stream(seed, group.name, "jitter").random(n)
                  if group.link.jitter_s else np.zeros(n))
        radio = cost.radio_watts(group.link)
        columns["group"].append(np.full(n, g, dtype=np.int64))
        columns["member"].append(np.arange(n, dtype=np.int64))
        columns["flops_per_s"].append(np.asarray(flops, dtype=float))
        columns["joules_per_flop"].append(np.full(n, float(group.device.joules_per_flop)))
        columns["memory_bytes"].append(memory)
        columns["up"].append(up_bps / 8.0 * goodput)
        columns["down"].append(down_bps / 8.0 * goodput)
        columns["rtt"].append(group.link.rtt_s + topology.added_rtt_s(group.name) + jitter)
        for key, value in zip(("radio_up", "radio_down", "radio_active"), radio):
            columns[key].append(np.full(n, value))
        outages.append(GroupOutages(group.availability, n, seed, group.name))

    def cat(key: str) -> np.ndarray:
        return np.concatenate(columns[key]) if columns[key] else np.zeros(0)

    return Fleet(
        group_names=tuple(names), group=cat("group").astype(np.int64), member=cat("member").astype(np.int64),
        flops_per_s=cat("flops_per_s"), joules_per_flop=cat("joules_per_flop"), memory_bytes=cat("memory_bytes"),
        up_bytes_per_s=cat("up"), down_bytes_per_s=cat("down"), rtt_s=cat("rtt"),
        radio_up_w_per_mbps=cat("radio_up"), radio_down_w_per_mbps=cat("radio_down"), radio_active_w=cat("radio_active"),
        up_links=tuple(ups), down_links=tuple(downs), outages=tuple(outages),
        group_start=np.asarray(starts, dtype=np.int64), bandwidth=tuple(bandwidth),
    )
