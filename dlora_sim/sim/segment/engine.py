"""``granularity = "segment"``: the fleet advanced in closed form between state changes.

Only state changes are events: a device going offline (its work since the checkpoint rolled
back), the cloud dropping its session, the device coming back and opening a new session, a
session finished, the job finished, and the *epochs* at which the contention levels of the GPU
pool and the shared links are recomputed. Between them each device walks the job's rows
(:mod:`.rows`) at a known speed, so where it is at any time is a bisection over running sums,
and everything it did between two times (FLOPs, bytes, round trips, GPU seconds, steps, KR
rounds) is a subtraction. Every operation is over numpy arrays of devices: memory is
O(devices), never one Python object per event.

Where nothing contends (every device's own speed fits the GPU pool and the shared links), a
device's walk is exactly the ``step`` engine's: the same exchanges in the same order with the
same phase times, the same rollback, checkpoint, KR-round, session and acknowledgement rules
(see :mod:`dlora_sim.sim.device` and :mod:`dlora_sim.sim.faults`, which this mirrors). Where
something contends, each device's speed in an epoch is its max-min fair share
(:mod:`.fluid`) — the rate a FIFO GPU queue and fairly shared links give a closed loop of
devices — and the time it loses waits at its bottleneck (``cloud_wait_s`` for the GPU pool,
``link_s`` for a link).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dlora_sim import cost
from dlora_sim.sim.capacity import shared_capacities
from dlora_sim.sim.fleet import OUTAGE_BLOCK, Fleet
from dlora_sim.sim.results import DEVICE_COUNTERS
from dlora_sim.sim.segment.fluid import Resource, fair_rates
from dlora_sim.sim.segment.rows import COLUMN, ROUND, JobRows, job_rows

__all__ = ["SegmentOutcome", "run_segment"]

SESSION, RUN, OFF, DONE, GONE = 0, 1, 2, 3, 4
NO_LIMIT, GPU_LIMIT, LINK_LIMIT, MEMORY_LIMIT = 0, 1, 2, 3
UNIT_ROWS = 1  # rows per unit of work in the contention levels: the exchange a device is in
EPOCH_STEPS = 5.0  # an epoch lasts at most this many steps of the median device ...
CHANGE_FRACTION = 0.05  # ... or until this fraction of the working devices changed state
SLACK_EPOCHS = 10  # while nothing is saturated, an epoch may last this many times longer
# counters a booked stretch of rows adds its column sums to, and the row column each reads
BOOKED = (("edge_flops", "F"), ("up_sent_bytes", "U"), ("up_received_bytes", "U"), ("down_sent_bytes", "D"),
          ("down_received_bytes", "D"), ("round_trips", "RT"), ("cloud_flops", "C"), ("steps_done", "commits"),
          ("kr_rounds", "rounds"), ("kr_probes", "probes"), ("kills", "kills"), ("revives", "revives"),
          ("kr_up_bytes", "kr_up"), ("steady_steps", "steady"), ("steady_bytes", "steady_bytes"))
BOOKED_AT = {counter: j for j, (counter, _) in enumerate(BOOKED)}
BOOKED_FROM = np.array([COLUMN[column] for _, column in BOOKED])
GUESSES = 4  # interpolation probes of row_at before it gallops and bisects
GALLOP_FROM = 8  # brackets wider than this many rows are narrowed by galloping, not bisection


class SegmentOutcome:
    """The run's per-device columns and pool totals (read by :mod:`dlora_sim.sim.results`)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


class _Outages:
    """Each device's next outage, drawn per group in blocks as devices move on."""

    def __init__(self, fleet: Fleet, horizon_s: float) -> None:
        self.fleet = fleet
        self.horizon_s = horizon_s
        n = len(fleet)
        self.k = np.zeros(n, dtype=np.int64)
        self.t_off = np.full(n, np.inf)
        self.t_on = np.full(n, np.inf)
        self.load(np.arange(n))

    def load(self, idx: np.ndarray) -> None:
        """Read outage number ``k`` of each device in ``idx``."""
        fleet = self.fleet
        if idx.size == 0:
            return
        groups = fleet.group[idx]
        for g in np.unique(groups):
            sel = idx[groups == g]
            source = fleet.outages[g]
            blocks = self.k[sel] // OUTAGE_BLOCK
            for b in np.unique(blocks):
                part = sel[blocks == b]
                t_off, t_on = source.block(int(b), self.horizon_s)
                col = self.k[part] % OUTAGE_BLOCK
                self.t_off[part] = t_off[fleet.member[part], col]
                self.t_on[part] = t_on[fleet.member[part], col]
            source.forget_below(int(self.k[fleet.group == g].min() // OUTAGE_BLOCK))

    def next(self, idx: np.ndarray) -> None:
        self.k[idx] += 1
        self.load(idx)

    def retire(self, idx: np.ndarray) -> None:
        """Devices that will never need another outage (finished, or gone for good)."""
        self.k[idx] = np.iinfo(np.int64).max // 2


class _Run:
    """One strategy's segment run: device state columns and the operations on them."""

    def __init__(self, scenario: Any, strategy: str, fleet: Fleet, feasible: np.ndarray, slots: int | None) -> None:
        job = scenario.job
        spec = job.to_job_spec()
        self.spec = spec
        self.scenario = scenario
        self.rows: JobRows = job_rows(spec, strategy, scenario)
        # the final download's row (cloud-only), or the end: no milestone before it
        self.final_row = int(self.rows.first_row[-1]) if self.rows.rows > self.rows.first_row[-1] else self.rows.rows
        plan = cost.get_strategy(strategy)
        sched, cloud = scenario.scheduler, scenario.cloud
        self.horizon = float(scenario.run.horizon_s)
        self.timeout = float(sched.session_timeout_s)
        self.setup_bytes = float(plan.setup_bytes_down(spec))
        self.module_bytes = float(cost.offloaded_module_bytes(spec)) if job.killed_policy == "offload" else 0.0
        self.max_batch = int(cloud.batch_max_users)
        self.n_gpus = int(cloud.count)
        self.fleet = fleet
        self.capacities = shared_capacities(scenario)
        self.slots = slots  # sessions whose activations fit in GPU memory at once (None: no cloud)
        self.memory_share = 0.0  # fraction of a running device's time spent waiting for GPU memory
        n = len(fleet)
        self.n = n
        self.f = fleet.flops_per_s
        # a transfer alone still runs at most at the capacity of the thinnest shared link it crosses
        self.up = self._capped(fleet.up_bytes_per_s, fleet.up_links, fleet)
        self.down = self._capped(fleet.down_bytes_per_s, fleet.down_links, fleet)
        self.rtt = fleet.rtt_s
        # rows per own second, over the whole job until a search sees the device's own pace
        # (row_at starts looking there)
        whole = self.own(np.arange(n), np.zeros(n, np.int64), np.full(n, self.rows.rows))
        self.rows_per_s = np.where(whole > 0, self.rows.rows / np.maximum(whole, 1e-300), 0.0)
        # the counters a booked stretch of rows adds to directly sit side by side in one block,
        # so that booking is one gather of the rows' sums and one row-wise add per device
        self.booked = np.zeros((n, len(BOOKED)))
        self.c = {name: np.zeros(n) for name in DEVICE_COUNTERS if name not in BOOKED_AT}
        self.c.update({name: self.booked[:, j] for name, j in BOOKED_AT.items()})
        self.completion = np.full(n, np.nan)
        self.mode = np.where(feasible, SESSION, GONE).astype(np.int8)
        self.t_mark = np.zeros(n)
        self.o = np.zeros(n)  # own seconds done in the current session / since row p
        self.p = np.zeros(n, dtype=np.int64)  # the run's progress is measured from the start of row p
        self.ckpt = np.zeros(n, dtype=np.int64)
        self.ckpt_t = np.full(n, -np.inf)  # when the step that made the checkpoint was committed
        self.setup_done = np.zeros(n, dtype=bool)
        self.alive = np.zeros(n, dtype=bool)  # the cloud holds the device's session
        self.sess_up = np.zeros(n)
        self.sess_down = np.zeros(n)
        self.since = np.zeros((3, n))  # edge FLOPs, delivered bytes, GPU-s since the checkpoint
        self.kappa = np.ones(n)
        self.limit = np.zeros(n, dtype=np.int8)
        self.drop_at = np.full(n, np.inf)
        self.resend = np.zeros(n)
        self.end_t = np.full(n, np.inf)  # when the device's process ended (finished or gave up)
        self.outages = _Outages(fleet, self.horizon)
        self.pool = {"busy_s": 0.0, "lost_s": 0.0, "batches": 0.0, "requests": 0.0}
        self.run_spans: list[tuple[np.ndarray, np.ndarray]] = []  # (start, end) of stretches in steps
        self.levels: np.ndarray | None = None
        self.resources: list[Resource] = []
        self.resource_kind: list[int] = []
        self.link_masks = {link: np.isin(fleet.group, [g for g, path in enumerate(
            fleet.up_links if link.endswith(":up") else fleet.down_links) if link in path]) for link in self.capacities}
        self.gpu_peak = self._gpu_peak()
        self._start_sessions(np.flatnonzero(feasible), np.zeros(int(feasible.sum())))

    def _capped(self, rate: np.ndarray, paths: tuple[tuple[str, ...], ...], fleet: Fleet) -> np.ndarray:
        caps = np.array([min((self.capacities[link] for link in path), default=np.inf) for path in paths])
        return np.minimum(rate, caps[fleet.group]) if len(paths) else rate

    # -- own times ---------------------------------------------------------------------------

    def own(self, idx: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Uncontended seconds device ``idx`` takes for rows ``a..b-1``."""
        own_cum = self.rows.own_cum
        d = own_cum[b] - own_cum[a]
        return (d[:, 0] / self.f[idx] + d[:, 1] * self.rtt[idx] + d[:, 2] / self.up[idx]
                + d[:, 3] / self.down[idx] + d[:, 4] + d[:, 5])

    def row_at(self, idx: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The row each device is in after ``q`` own seconds from the start of its row ``p``:
        the last row ``b`` with ``own(p, b) <= q``.

        An interpolation search: rows are alike (steps, now and then a KR round or a sync), so
        ``p + q * rows per second`` lands within a row or two, and a correction by the residual
        (``q - own(p, guess)`` at the same rate) closes the gap; a device still unsettled after
        ``GUESSES`` probes gallops from its last probe to bracket the answer and bisects. Every
        probe keeps ``[lo, hi]`` around the answer and ``own(p, ·)`` is monotone, so the result
        is a plain bisection's, exactly — in a few probes instead of ``log2(rows)``.
        """
        rows = self.rows.rows
        start = self.p[idx]
        q = np.maximum(q, 0.0)
        lo, hi = start.copy(), np.full(idx.size, rows)
        y_lo = np.zeros(idx.size)  # own(p, lo)
        x_up, y_up = np.full(idx.size, rows + 1), np.full(idx.size, np.inf)  # the nearest failed probe
        guess = np.minimum(start + np.floor(q * self.rows_per_s[idx]).astype(np.int64), hi)
        up = np.ones(idx.size, dtype=bool)  # the last probe was at or before the answer
        open_ = np.flatnonzero(lo < hi)
        for _ in range(GUESSES):
            if not open_.size:
                break
            g = guess[open_]
            used = self.own(idx[open_], start[open_], g)
            ok = used <= q[open_]
            lo[open_], y_lo[open_] = np.where(ok, g, lo[open_]), np.where(ok, used, y_lo[open_])
            hi[open_] = np.where(ok, hi[open_], g - 1)
            x_up[open_], y_up[open_] = np.where(ok, x_up[open_], g), np.where(ok, y_up[open_], used)
            up[open_] = ok
            open_ = open_[lo[open_] < hi[open_]]
            # the next probe: between the two nearest probes, in proportion (regula falsi); with
            # no failed probe yet, at the rate seen from p to the last good one
            L, yl, q_ = lo[open_], y_lo[open_], q[open_]
            known = np.isfinite(y_up[open_])
            span = np.where(known, (x_up[open_] - L) / np.maximum(y_up[open_] - yl, 1e-300),
                            (L - start[open_]) / np.maximum(yl, 1e-300))
            step = np.floor(np.minimum((q_ - yl) * span, rows)).astype(np.int64)
            guess[open_] = np.clip(L + step, L + 1, hi[open_])
        width = np.ones(idx.size, dtype=np.int64)
        gallop = open_[hi[open_] - lo[open_] > GALLOP_FROM]
        while gallop.size:  # widen from the bound the last probe set until the answer is bracketed
            u = up[gallop]
            probe = np.where(u, np.minimum(lo[gallop] + width[gallop], hi[gallop]),
                             np.maximum(hi[gallop] - width[gallop], lo[gallop]))
            used = self.own(idx[gallop], start[gallop], probe)
            ok = used <= q[gallop]
            y_lo[gallop] = np.where(ok, used, y_lo[gallop])
            lo[gallop] = np.where(ok, probe, lo[gallop])
            hi[gallop] = np.where(ok, hi[gallop], probe - 1)
            width[gallop] *= 2
            keep = (ok == u) & (hi[gallop] - lo[gallop] > GALLOP_FROM)
            gallop = gallop[keep]
        open_ = open_[lo[open_] < hi[open_]]
        while open_.size:
            mid = (lo[open_] + hi[open_] + 1) // 2
            used = self.own(idx[open_], start[open_], mid)
            ok = used <= q[open_]
            lo[open_], y_lo[open_] = np.where(ok, mid, lo[open_]), np.where(ok, used, y_lo[open_])
            hi[open_] = np.where(ok, hi[open_], mid - 1)
            open_ = open_[lo[open_] < hi[open_]]
        # the pace just seen is where the device's next search starts
        moved = (lo > start) & (y_lo > 0)
        self.rows_per_s[idx[moved]] = (lo[moved] - start[moved]) / y_lo[moved]
        return lo

    # -- sessions ----------------------------------------------------------------------------

    def _start_sessions(self, idx: np.ndarray, t: np.ndarray) -> None:
        r = self.rows
        n_active = r.n_active_at[self.rows.step[np.minimum(self.p[idx], r.rows - 1)]] if r.rows else np.zeros(idx.size)
        reup = np.where(self.alive[idx], 0.0, (r.n_modules - n_active) * self.module_bytes)
        self.sess_up[idx] = reup
        self.sess_down[idx] = np.where(self.setup_done[idx], 0.0, self.setup_bytes)
        self.mode[idx] = SESSION
        self.t_mark[idx] = t
        self.o[idx] = 0.0
        self._set_speed(idx)

    def _session_len(self, idx: np.ndarray) -> np.ndarray:
        return self.rtt[idx] + self.sess_up[idx] / self.up[idx] + self.sess_down[idx] / self.down[idx]

    # -- contention --------------------------------------------------------------------------

    def _unit(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Own time and GPU-s, up and down bytes of each device's next unit of work."""
        r = self.rows
        running = self.mode[idx] == RUN
        a = self.p[idx]
        b = np.minimum(a + UNIT_ROWS, r.rows)
        time = np.where(running, self.own(idx, a, b), self._session_len(idx))
        gpu = np.where(running, r.between("svc_batched", a, b), 0.0)
        up = np.where(running, r.between("U", a, b), self.sess_up[idx])
        down = np.where(running, r.between("D", a, b), self.sess_down[idx])
        return np.maximum(time, 1e-12), gpu, up, down

    def _gpu_peak(self) -> np.ndarray:
        """Each device's largest share of one GPU while it works: over the job's kinds of row
        (a full-batch GPU time over the row's own time), the most it can ask of the pool."""
        r = self.rows
        if r.rows == 0:
            return np.zeros(self.n)
        columns = np.stack([r.column(k) for k in ("F", "U", "D", "RT", "svc", "window", "svc_batched")], axis=1)
        kinds = np.unique(columns, axis=0)
        kinds = kinds[kinds[:, 6] > 0]
        peak = np.zeros(self.n)
        for F, U, D, RT, svc, window, batched in kinds:
            own = F / self.f + RT * self.rtt + U / self.up + D / self.down + svc + window
            peak = np.maximum(peak, batched / own)
        return peak

    def _bounds_fit(self, idx: np.ndarray) -> dict[str, float]:
        """Room left on each resource if every device in ``idx`` asked for its most at once
        (negative: they could saturate it)."""
        room = {"gpu": self.n_gpus - float(self.gpu_peak[idx].sum())}
        if self.slots is not None:
            room["memory"] = float(self.slots - idx.size)
        for link, capacity in self.capacities.items():
            rate = self.up if link.endswith(":up") else self.down
            room[link] = capacity - float(rate[idx][self.link_masks[link][idx]].sum())
        return room

    def contention_possible(self, idx: np.ndarray | None = None) -> bool:
        """Whether the GPU pool, its memory or a shared link could ever be short: every device
        not yet finished at its own peak at once (the devices that could still work only shrink)."""
        if idx is None:
            idx = np.flatnonzero((self.mode == SESSION) | (self.mode == RUN) | (self.mode == OFF))
        if idx.size == 0:
            return False
        return min(self._bounds_fit(idx).values()) < 0

    def _most_per_change(self) -> np.ndarray:
        """The most one device's change (starting a step, a session, coming back) can add to
        each resource's load, as a fraction of it: its peak share (``resource_names`` order)."""
        live = np.flatnonzero(self.mode != GONE)
        out = []
        for name in self.resource_names:
            if name == "gpu":
                out.append(float(self.gpu_peak[live].max(initial=0.0)) / self.n_gpus)
            elif name == "memory":
                out.append(1.0 / max(self.slots or 1, 1))
            else:
                rate = self.up if name.endswith(":up") else self.down
                users = live[self.link_masks[name][live]]
                out.append(float(rate[users].max(initial=0.0)) / self.capacities[name])
        return np.asarray(out)

    def change_budget(self) -> tuple[int, float]:
        """How many state changes, and how long, the levels just computed may stand.

        While something is saturated: ``CHANGE_FRACTION`` of the working devices, or
        ``EPOCH_STEPS`` steps. While nothing is and the working devices' peaks leave room, as many
        devices may come back as the room holds (each adds at most its peak), however long it takes.
        """
        working = np.flatnonzero((self.mode == SESSION) | (self.mode == RUN))
        base = max(1, int(CHANGE_FRACTION * working.size))
        if self.levels is not None and np.isfinite(self.levels).any():
            # EPOCH_STEPS steps as the working devices now take them (slower where saturated)
            return base, self.epoch_length / float(np.median(self.kappa[working]))
        room = self._bounds_fit(working)
        if min(room.values()) < 0:
            # not saturated now, but could be if the working devices all asked for their peak:
            # the shares stand while the changes cannot fill the room left at today's loads
            # (each change moves a resource's load by at most one unit's ask), and at most
            # ``SLACK_EPOCHS`` epochs
            if self.levels is None:
                return base, self.epoch_length
            spare = (1.0 - self.load) / np.maximum(self._most_per_change(), 1e-300)
            return max(base, int(min(float(spare.min()) * 0.5, 2 * self.n))), SLACK_EPOCHS * self.epoch_length
        waiting = np.flatnonzero(self.mode == OFF)
        if waiting.size == 0:
            return max(base, self.n), np.inf
        most = {"gpu": float(self.gpu_peak[waiting].max()), "memory": 1.0}
        for link in self.capacities:
            rate = self.up if link.endswith(":up") else self.down
            users = waiting[self.link_masks[link][waiting]]
            most[link] = float(rate[users].max()) if users.size else 0.0
        comes_back = min((room[k] / most[k] for k in room if most.get(k, 0.0) > 0), default=np.inf)
        return max(base, int(min(comes_back, 2 * self.n))), np.inf

    def _link_capacities(self) -> dict[str, float]:
        return self.capacities

    def _link_users(self, link: str, idx: np.ndarray) -> np.ndarray:
        """Positions in ``idx`` of the devices whose path crosses ``link``."""
        return np.flatnonzero(self.link_masks[link][idx])

    def recompute_levels(self) -> None:
        """The max-min fair speed of every working device from now to the next epoch."""
        idx = np.flatnonzero((self.mode == SESSION) | (self.mode == RUN))
        self.levels = None
        if idx.size == 0:
            return
        time, gpu, up, down = self._unit(idx)
        resources, kinds, names = [Resource(np.arange(idx.size), gpu, float(self.n_gpus))], [GPU_LIMIT], ["gpu"]
        if self.slots is not None:  # a device holds room for its activations while in a step
            in_step = np.where(self.mode[idx] == RUN, time, 0.0)
            resources.append(Resource(np.arange(idx.size), in_step, float(self.slots)))
            kinds.append(MEMORY_LIMIT)
            names.append("memory")
        for link, capacity in self._link_capacities().items():
            users = self._link_users(link, idx)
            demand = (up if link.endswith(":up") else down)[users]
            resources.append(Resource(users, demand, capacity))
            kinds.append(LINK_LIMIT)
            names.append(link)
        upper = 1.0 / time
        rate, bottleneck = fair_rates(upper, resources)
        levels = np.full(len(resources), np.inf)
        for k in range(len(resources)):
            held = bottleneck == k
            if held.any():
                levels[k] = float(rate[held].max())
        self.levels = levels
        self.resources, self.resource_kind, self.resource_names = resources, kinds, names
        # how full each resource is at these rates, and the most one device's unit asks of it
        self.load = np.array([float((res.demand * rate[res.users]).sum()) / res.capacity for res in resources])
        held = bottleneck >= 0
        new_limit = np.where(held, np.asarray(kinds)[np.maximum(bottleneck, 0)], NO_LIMIT).astype(np.int8)
        in_steps = int((self.mode[idx] == RUN).sum())
        self.memory_share = max(0.0, 1.0 - self.slots / in_steps) if self.slots is not None and in_steps else 0.0
        self.kappa[idx] = np.where(held, np.minimum(1.0, rate * time), 1.0)
        self.limit[idx] = new_limit

    def peak_flows_bound(self) -> dict[str, int]:
        """Devices that move bytes over each shared link in each direction: the most flows that
        can be on it at once (reached at the start, where a group's devices move in step)."""
        idx = np.flatnonzero(self.mode != GONE)
        r = self.rows
        ups = r.total("U") > 0 or (self.module_bytes > 0 and int(r.n_active_at.min()) < r.n_modules)
        downs = r.total("D") > 0 or self.setup_bytes > 0
        out = {}
        for link in self._link_capacities():
            moves = ups if link.endswith(":up") else downs
            out[link] = int(self._link_users(link, idx).size) if moves else 0
        return out

    def _set_speed(self, idx: np.ndarray) -> None:
        """Speed of devices starting a session or a run mid-epoch: their share at the epoch's levels."""
        self.kappa[idx] = 1.0
        self.limit[idx] = NO_LIMIT
        if self.levels is None or idx.size == 0 or not np.isfinite(self.levels).any():
            return
        time, gpu, up, down = self._unit(idx)
        rate = 1.0 / time
        limit = np.zeros(idx.size, dtype=np.int8)
        for k, (level, kind) in enumerate(zip(self.levels, self.resource_kind)):
            if not np.isfinite(level):
                continue
            if kind == GPU_LIMIT:
                uses = gpu > 0
            elif kind == MEMORY_LIMIT:
                uses = self.mode[idx] == RUN
            else:
                link = self.resource_names[k]
                uses = np.zeros(idx.size, dtype=bool)
                uses[self._link_users(link, idx)] = True
                uses &= (up if link.endswith(":up") else down) > 0
            slower = uses & (level < rate)
            rate = np.where(slower, level, rate)
            limit = np.where(slower, kind, limit)
        self.kappa[idx] = np.where(limit != NO_LIMIT, np.minimum(1.0, rate * time), 1.0)
        self.limit[idx] = limit

    # -- advancing ---------------------------------------------------------------------------

    def advance(self, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Move devices ``idx`` (working) to time ``t``; return their own seconds done by then.
        The time contention costs them is counted as waiting at their bottleneck."""
        dt = t - self.t_mark[idx]
        gained = self.kappa[idx] * dt
        lost = dt - gained
        limit = self.limit[idx]
        # more devices in steps than sessions fit in GPU memory: part of every running device's
        # time is spent waiting for room, whatever else holds it back
        memory = np.where(self.mode[idx] == RUN, np.minimum(self.memory_share * dt, lost), 0.0)
        memory = np.where(limit == MEMORY_LIMIT, lost, memory)
        rest = lost - memory
        self.c["memory_wait_s"][idx] += memory
        self.c["cloud_wait_s"][idx] += np.where(limit == GPU_LIMIT, rest, 0.0)
        self.c["link_s"][idx] += np.where(limit == LINK_LIMIT, rest, 0.0)
        self.o[idx] += gained
        self.t_mark[idx] = t
        return self.o[idx]

    def accumulate(self, idx: np.ndarray, a: np.ndarray, b: np.ndarray, t_b: np.ndarray) -> None:
        """Rows ``a..b-1`` of devices ``idx`` are done (row ``b`` starts at ``t_b``)."""
        r, c = self.rows, self.c
        batched = self.limit[idx] == GPU_LIMIT
        diff = r.between_all(a, b)
        d = {name: diff[:, j] for name, j in COLUMN.items()}
        gpu = np.where(batched, d["svc_batched"], d["svc"])
        self.booked[idx] += diff[:, BOOKED_FROM]
        c["cloud_gpu_s"][idx] += gpu
        # on a saturated pool the time lost at the GPU is the queue, plus the rest of a full batch:
        # only the queue is waiting (the step engine's cloud_wait_s), the batch is GPU time
        c["cloud_wait_s"][idx] += np.where(batched, d["svc"] - d["svc_full"], d["window"])
        c["link_s"][idx] += d["RT"] * self.rtt[idx] + d["U"] / self.up[idx] + d["D"] / self.down[idx]
        self.pool["busy_s"] += float(gpu.sum())
        self.pool["requests"] += float(d["requests"].sum())
        self.pool["batches"] += float(np.where(batched, d["requests"] / self.max_batch, d["requests"]).sum())
        # checkpoints passed on the way reset what a rollback would lose
        next_step = self._next_step(b)
        old, new = self.ckpt[idx], r.checkpoint_for(next_step)
        passed = new > old
        held_new = self._round_row(new) & (r.first_row[new] < b)
        held_old = self._round_row(old) & (a <= r.first_row[old]) & (r.first_row[old] < b)
        k = r.commit_row[np.maximum(new - 1, 0)] + 1
        start = np.where(passed, k, a)
        held = np.where(passed, held_new, held_old)
        held_row = np.where(passed, r.first_row[new], r.first_row[old])
        since = np.where(passed, 0.0, self.since[:, idx]) + self._since_parts(start, b, batched)
        if held.any():  # a KR round held at the cut is not work since the checkpoint
            h = np.flatnonzero(held)
            since[:, h] -= self._since_parts(held_row[h], held_row[h] + 1, batched[h])
        self.since[:, idx] = since
        # when the checkpoint's step was committed (acknowledgements lost in a cut after it)
        if passed.any():
            sel = np.flatnonzero(passed)
            t_commit = t_b[sel] - self.own(idx[sel], k[sel], b[sel]) / self.kappa[idx[sel]]
            self.ckpt_t[idx[sel]] = t_commit
        self.ckpt[idx] = np.maximum(old, new)

    def _since_parts(self, a: np.ndarray, b: np.ndarray, batched: np.ndarray) -> np.ndarray:
        """FLOPs, bytes and GPU seconds of rows ``a..b-1``: (3, len(a)), as ``self.since`` holds."""
        r = self.rows
        b = np.minimum(b, r.rows)
        d = r.since_cum[b] - r.since_cum[np.minimum(a, b)]
        gpu = np.where(batched, d[:, 4], d[:, 3])
        return np.stack([d[:, 0], d[:, 1] + d[:, 2], gpu])

    def _round_row(self, step: np.ndarray) -> np.ndarray:
        """Whether step ``step`` starts with a KR round."""
        r = self.rows
        row = r.first_row[step]
        return (row < r.rows) & (r.kind[np.minimum(row, r.rows - 1)] == ROUND) if r.rows else np.zeros(step.shape, bool)

    def _next_step(self, row: np.ndarray) -> np.ndarray:
        r = self.rows
        return np.where(row >= r.rows, r.total_steps, r.step[np.minimum(row, max(r.rows - 1, 0))]) if r.rows else np.zeros_like(row)

    # -- the phases of one exchange ------------------------------------------------------------

    def partial(self, idx: np.ndarray, q: np.ndarray, parts: dict[str, np.ndarray], cut: bool) -> None:
        """Count the phases of the exchange each device is in, ``q`` own seconds into it.

        ``cut``: the device goes offline now (work in flight is lost, as the step engine's
        ``_abort`` counts it); otherwise the run ends at the horizon (only finished phases count).
        """
        c = self.c
        f, up, down, rtt = self.f[idx], self.up[idx], self.down[idx], self.rtt[idx]
        F, U, C, D, RT = parts["F"], parts["U"], parts["C"], parts["D"], parts["RT"]
        svc, window = parts["svc"], parts["window"]
        compute, half = F / f, 0.5 * RT * rtt
        t_up, t_down = U / up, D / down
        c["round_trips"][idx] += RT
        p1 = q >= compute + half  # compute and the upward half round trip done
        in_compute = q < compute
        q2 = q - compute - half
        p2 = p1 & (q2 >= t_up)
        q3 = q2 - t_up
        has_cloud = C > 0
        # on a saturated pool most of the cloud phase is queueing: the request is on a GPU only
        # in the phase's last full-batch time (as wall time), and it holds its batch share of it
        batched = self.limit[idx] == GPU_LIMIT
        on_gpu = np.where(batched, np.minimum(self.kappa[idx] * parts["svc_full"], svc), svc)
        share = np.where(batched, parts["svc_batched"], svc)
        started = p2 & has_cloud & (q3 >= window + svc - on_gpu)
        p3 = p2 & (q3 >= window + svc)
        q4 = q3 - window - svc
        p4_down = p3 & (q4 >= t_down)
        p4 = p3 & (q4 >= t_down + half)
        c["edge_flops"][idx] += np.where(p1, F, 0.0)
        c["up_sent_bytes"][idx] += np.where(p2, U, 0.0)
        c["up_received_bytes"][idx] += np.where(p2, U, 0.0)
        c["cloud_flops"][idx] += np.where(p3, C, 0.0)
        c["cloud_gpu_s"][idx] += np.where(p3, share, 0.0)
        c["cloud_wait_s"][idx] += np.where(p3, window, 0.0)
        c["down_sent_bytes"][idx] += np.where(p4_down, D, 0.0)
        c["down_received_bytes"][idx] += np.where(p4_down, D, 0.0)
        self.pool["busy_s"] += float(np.where(started, share, 0.0).sum())
        self.pool["requests"] += float(started.sum())
        self.pool["batches"] += float(started.sum())
        self.since[0, idx] += np.where(p1, F, 0.0)
        self.since[1, idx] += np.where(p2, U, 0.0) + np.where(p4_down, D, 0.0)
        self.since[2, idx] += np.where(p3, share, 0.0)
        if not cut:
            c["link_s"][idx] += (np.where(p1, half, 0.0) + np.where(p2, t_up, 0.0)
                                 + np.where(p4, t_down + half, 0.0))
            return
        # going offline: what was in flight is lost, the radio was busy until the cut
        flops = np.where(~p1, np.minimum(q, compute) * f, 0.0)
        c["edge_flops"][idx] += flops
        c["lost_edge_flops"][idx] += flops
        c["link_s"][idx] += np.where(in_compute, 0.0, np.where(p1, half, np.maximum(q - compute, 0.0)))
        sending = p1 & ~p2
        sent_up = np.where(sending, q2 * up, 0.0)
        c["link_s"][idx] += np.where(sending, q2, np.where(p2, t_up, 0.0))
        in_cloud = p2 & ~p3
        gpu_lost = np.where(in_cloud & started, share, 0.0)
        c["cloud_gpu_s"][idx] += gpu_lost
        c["lost_gpu_s"][idx] += gpu_lost
        self.pool["lost_s"] += float(gpu_lost.sum())
        in_down = p3
        c["link_s"][idx] += np.where(in_down, q4, 0.0)
        sent_down = np.where(p3 & ~p4_down, q4 * down, 0.0)
        c["up_sent_bytes"][idx] += sent_up
        c["up_lost_bytes"][idx] += sent_up
        c["down_sent_bytes"][idx] += sent_down
        c["down_lost_bytes"][idx] += sent_down
        c["lost_bytes"][idx] += sent_up + sent_down
        c["aborted_steps"][idx] += 1

    def row_parts(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        d = self.rows.between_all(rows, rows + 1)
        return {name: d[:, COLUMN[name]] for name in ("F", "U", "C", "D", "RT", "svc", "svc_batched", "svc_full", "window")}

    def session_parts(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        zero = np.zeros(idx.size)
        return {"F": zero, "U": self.sess_up[idx], "C": zero, "D": self.sess_down[idx], "RT": np.ones(idx.size),
                "svc": zero, "svc_batched": zero, "svc_full": zero, "window": zero}

    # -- events ------------------------------------------------------------------------------

    def next_events(self, idx: np.ndarray) -> np.ndarray:
        """When each device's next state change is due."""
        mode = self.mode[idx]
        t = np.full(idx.size, np.inf)
        work = (mode == SESSION) | (mode == RUN)
        if work.any():
            w = idx[work]
            # a run's next milestone: the end of its last step (the final download, where one
            # follows, uses no GPU: its speed is set anew there), else the end of the job
            milestone = np.where(self.p[w] < self.final_row, self.final_row, self.rows.rows)
            remaining = np.where(mode[work] == SESSION, self._session_len(w),
                                 self.own(w, self.p[w], milestone)) - self.o[w]
            done_at = self.t_mark[w] + np.maximum(remaining, 0.0) / self.kappa[w]
            t[work] = np.minimum(done_at, self.outages.t_off[w])
        off = mode == OFF
        if off.any():
            w = idx[off]
            t[off] = np.minimum(self.drop_at[w], self.outages.t_on[w])
        return t

    def handle(self, idx: np.ndarray, t: np.ndarray) -> None:
        """Apply the due state change of each device in ``idx`` at time ``t``."""
        mode = self.mode[idx]
        t_off = self.outages.t_off[idx]
        for kind, handler in ((SESSION, self._session_event), (RUN, self._run_event), (OFF, self._off_event)):
            sel = mode == kind
            if sel.any():
                handler(idx[sel], t[sel], t_off[sel])

    def _session_event(self, idx: np.ndarray, t: np.ndarray, t_off: np.ndarray) -> None:
        q = self.advance(idx, t)
        cut = t_off <= t
        if cut.any():
            w, wt, wq = idx[cut], t[cut], q[cut]
            admit = (wt == 0.0) & ~self.setup_done[w] & (wq == 0.0)  # still waiting for its slot
            wa = w[~admit]
            self.partial(wa, wq[~admit], self.session_parts(wa), cut=True)
            self.since[:, w] = 0.0
            self._go_offline(w, wt)
        done = ~cut
        if done.any():
            w, wt = idx[done], t[done]
            c = self.c
            up, down = self.sess_up[w], self.sess_down[w]
            c["round_trips"][w] += 1
            c["up_sent_bytes"][w] += up
            c["up_received_bytes"][w] += up
            c["down_sent_bytes"][w] += down
            c["down_received_bytes"][w] += down
            c["link_s"][w] += self.rtt[w] + up / self.up[w] + down / self.down[w]
            c["reupload_bytes"][w] += up
            self.since[1, w] += up + down
            self.setup_done[w] = True
            self.alive[w] = True
            self.mode[w] = RUN
            self.o[w] = 0.0
            self.t_mark[w] = wt
            self._span_start[w] = wt
            self._set_speed(w)

    def _run_event(self, idx: np.ndarray, t: np.ndarray, t_off: np.ndarray) -> None:
        q = self.advance(idx, t)
        end = np.full(idx.size, self.rows.rows)
        left = self.own(idx, self.p[idx], end) - q
        cut = (t_off <= t) & (left > 0)  # an outage at the very end finds the job done
        last_step = ~cut & (left > 0) & (self.p[idx] < self.final_row) & (self.final_row < self.rows.rows)
        if last_step.any():  # training over, the final download begins: book and re-speed
            w, wt = idx[last_step], t[last_step]
            final = np.full(w.size, self.final_row)
            over = np.maximum(self.o[w] - self.own(w, self.p[w], final), 0.0)  # float rounding only
            self.accumulate(w, self.p[w], final, wt - over / self.kappa[w])
            self.p[w] = final
            self.o[w] = over
            self._set_speed(w)
        done = ~cut & ~last_step
        if done.any():
            w, wt = idx[done], t[done]
            self.accumulate(w, self.p[w], np.full(w.size, self.rows.rows), wt)
            self.mode[w] = DONE
            self.outages.retire(w)
            self.completion[w] = wt
            self.end_t[w] = wt
            self._close_spans(w, wt)
        if cut.any():
            self._cut_run(idx[cut], t[cut], q[cut])

    def _cut_run(self, w: np.ndarray, t: np.ndarray, q: np.ndarray) -> None:
        r, c = self.rows, self.c
        row = self.row_at(w, q)
        into = q - self.own(w, self.p[w], row)
        self.accumulate(w, self.p[w], row, t - into / self.kappa[w])
        self.partial(w, into, self.row_parts(row), cut=True)
        next_step = self._next_step(row)
        ckpt = self.ckpt[w]
        redo = next_step - ckpt
        # KR rounds after the checkpoint are void: they run again with their steps
        after = np.minimum(r.first_row[ckpt] + 1, row)
        for name, key in (("rounds", "kr_rounds"), ("probes", "kr_probes"), ("kills", "kills"),
                          ("revives", "revives"), ("kr_up", "kr_up_bytes")):
            c[key][w] -= r.between(name, after, row)
        c["kr_rounds_redone"][w] += r.between("rounds", after, row)
        lose = redo > 0
        c["redone_steps"][w] += redo
        c["steps_done"][w] -= redo
        c["lost_edge_flops"][w] += np.where(lose, self.since[0, w], 0.0)
        c["lost_bytes"][w] += np.where(lose, self.since[1, w], 0.0)
        c["lost_gpu_s"][w] += np.where(lose, self.since[2, w], 0.0)
        self.since[:, w] = 0.0
        # the acknowledgement of the checkpoint's own step may still be on its way: it is re-sent
        self.resend[w] = ((ckpt > 0) & (t - self.ckpt_t[w] < self.rtt[w])).astype(float)
        held = self._round_row(ckpt) & (row > r.first_row[ckpt])
        self.p[w] = r.first_row[ckpt] + held.astype(np.int64)
        self.o[w] = 0.0
        self._close_spans(w, t)
        self._go_offline(w, t)

    def _go_offline(self, w: np.ndarray, t: np.ndarray) -> None:
        self.c["disconnections"][w] += 1
        t_off, t_on = self.outages.t_off[w], self.outages.t_on[w]
        long_ = t_on - t_off > self.timeout
        self.drop_at[w] = np.where(long_, t_off + self.timeout, np.inf)
        self.mode[w] = OFF
        self.t_mark[w] = t
        never = ~long_ & (t_on >= self.horizon)
        if never.any():
            self._give_up(w[never], t[never])

    def _give_up(self, w: np.ndarray, t: np.ndarray) -> None:
        """Offline past the horizon: the process ends (the step engine's ``_outage_wait`` False)."""
        self.c["offline_s"][w] += self.horizon - self.outages.t_off[w]
        self.mode[w] = GONE
        self.outages.retire(w)
        self.end_t[w] = t

    def _off_event(self, idx: np.ndarray, t: np.ndarray, _t_off: np.ndarray) -> None:
        drop = self.drop_at[idx] <= t
        if drop.any():
            w = idx[drop]
            self.c["session_drops"][w] += 1
            self.alive[w] = False
            self.drop_at[w] = np.inf
            never = self.outages.t_on[w] >= self.horizon
            if never.any():
                self._give_up(w[never], t[drop][never])
        back = ~drop & (self.outages.t_on[idx] <= t)
        if back.any():
            w, wt = idx[back], t[back]
            c = self.c
            c["offline_s"][w] += wt - self.outages.t_off[w]
            c_dup = self.resend[w]
            self.delivered += float(c_dup.sum())
            self.duplicates += float(c_dup.sum())
            self.resend[w] = 0.0
            self.outages.next(w)
            self._start_sessions(w, wt)

    def _close_spans(self, w: np.ndarray, t: np.ndarray) -> None:
        start = self._span_start[w]
        ok = np.isfinite(start)
        self.run_spans.append((start[ok].copy(), t[ok].copy()))
        self._span_start[w] = np.inf

    # -- the run -----------------------------------------------------------------------------

    def run(self, on_progress: Callable[[float], None] | None = None) -> None:
        """Run to the horizon: one epoch once nothing can contend any more, else epochs that
        last as long as the fair shares they start with can stand (:meth:`change_budget`)."""
        self.delivered = 0.0
        self.duplicates = 0.0
        self._span_start = np.full(self.n, np.inf)
        self.epoch_length = self._epoch_length()
        now = 0.0
        while now < self.horizon and self._working().any():
            if not self.contention_possible():
                self._reset_speeds()
                self._events_until(self.horizon, budget=None)
                break
            self.recompute_levels()
            budget, length = self.change_budget()
            now = self._events_until(min(now + length, self.horizon), budget)
            if now < self.horizon:
                self._epoch_boundary(now)
            if on_progress is not None:
                on_progress(float(self.c["steps_done"].sum()))
        self._at_horizon()
        self.commits = float(self.c["steps_done"].sum() + self.c["redone_steps"].sum())

    def _reset_speeds(self) -> None:
        """Nothing can contend from now on: every device at its own speed (rows done so far in
        full batches are booked as such first)."""
        run = np.flatnonzero((self.mode == RUN) & (self.limit == GPU_LIMIT))
        if run.size:
            self._book(run, self.t_mark[run])
        self.levels = None
        self.memory_share = 0.0
        self.kappa[:] = 1.0
        self.limit[:] = NO_LIMIT

    def _working(self) -> np.ndarray:
        return (self.mode == SESSION) | (self.mode == RUN) | (self.mode == OFF)

    def _epoch_length(self) -> float:
        """A stretch of ``EPOCH_STEPS`` steps of the median device."""
        idx = np.flatnonzero(self.mode != GONE)
        r = self.rows
        per_step = np.median(self.own(idx, np.zeros(idx.size, np.int64), np.full(idx.size, r.rows))) / max(r.total_steps, 1)
        return max(EPOCH_STEPS * float(per_step), 1e-9)

    def _events_until(self, T1: float, budget: int | None) -> float:
        """Apply the state changes due before ``T1``; stop early, at the time of the last one
        applied, once ``budget`` devices have changed. Returns the time reached."""
        pending = np.flatnonzero(self._working())
        changed, reached = 0, -np.inf  # devices changed so far, and the latest change applied
        if pending.size and (self.mode[pending] == OFF).all():  # nobody works: skip to the next change
            T1 = max(T1, float(np.nextafter(self.next_events(pending).min(), np.inf)))
        while pending.size:
            t = self.next_events(pending)
            due = t < min(T1, self.horizon)
            if not due.any():
                break
            pending, t = pending[due], t[due]
            if budget is not None and changed + pending.size > budget:
                # the budget is spent: the epoch ends at the budget-th change, or at the latest
                # change already applied (devices are independent within an epoch, so changes
                # come in batches, not in time order); every change before the end still runs
                T1 = float(np.nextafter(max(float(np.sort(t)[max(budget - changed, 1) - 1]), reached), np.inf))
                budget = None
                continue
            self.handle(pending, t)
            changed += pending.size
            reached = max(reached, float(t.max()))
            alive = self.mode[pending]
            pending = pending[(alive == SESSION) | (alive == RUN) | (alive == OFF)]
        return min(T1, self.horizon)

    def _epoch_boundary(self, T1: float) -> None:
        """Advance working devices to the epoch's end and book the rows they finished, so that
        the next levels see the exchange each device is in."""
        idx = np.flatnonzero((self.mode == SESSION) | (self.mode == RUN))
        if idx.size:
            self.advance(idx, np.full(idx.size, T1))
            run = idx[self.mode[idx] == RUN]
            if run.size:
                self._book(run, np.full(run.size, T1))

    def _book(self, w: np.ndarray, t: np.ndarray) -> None:
        """Book the rows running devices ``w`` finished by now (at their current speed and
        batching) and measure their progress from the row they are in."""
        row = self.row_at(w, self.o[w])
        into = self.o[w] - self.own(w, self.p[w], row)
        self.accumulate(w, self.p[w], row, t - into / self.kappa[w])
        self.p[w] = row
        self.o[w] = into

    def _at_horizon(self) -> None:
        idx = np.flatnonzero((self.mode == SESSION) | (self.mode == RUN))
        if idx.size == 0:
            return
        q = self.advance(idx, np.full(idx.size, self.horizon))
        sess = self.mode[idx] == SESSION
        if sess.any():
            w = idx[sess]
            self.partial(w, q[sess], self.session_parts(w), cut=False)
        run = ~sess
        if run.any():
            w, wq = idx[run], q[run]
            row = self.row_at(w, wq)
            into = wq - self.own(w, self.p[w], row)
            self.accumulate(w, self.p[w], row, self.horizon - into / self.kappa[w])
            self.partial(w, into, self.row_parts(np.minimum(row, self.rows.rows - 1)), cut=False)
            self._close_spans(w, np.full(w.size, self.horizon))

    def memory_peak(self) -> int:
        """Most devices inside a step at once (each holds its activations' room on a GPU)."""
        if not self.run_spans:
            return 0
        start = np.concatenate([s for s, _ in self.run_spans])
        end = np.concatenate([e for _, e in self.run_spans])
        times = np.concatenate([end, start])
        delta = np.concatenate([-np.ones(end.size), np.ones(start.size)])
        order = np.lexsort((delta, times))  # at equal times a release comes before an acquire
        return int(np.cumsum(delta[order]).max(initial=0))

    def end_s(self) -> float:
        """When the step engine's run loop stops: the first of its 200 progress chunks after every
        device's process ended, or the horizon while one still works or waits."""
        if ((self.mode == SESSION) | (self.mode == RUN) | (self.mode == OFF)).any():
            return self.horizon
        last = float(np.max(self.end_t[np.isfinite(self.end_t)], initial=0.0))
        chunk, now = self.horizon / 200.0, 0.0
        while now < self.horizon:
            now = min(self.horizon, now + chunk)
            if last < now:
                break
        return now


def run_segment(scenario: Any, strategy: str, fleet: Fleet, feasible: np.ndarray, slots: int | None,
                on_progress: Callable[[float], None] | None = None) -> SegmentOutcome:
    """Run one strategy at ``segment`` granularity on ``fleet`` (``slots``: sessions the GPUs'
    memory holds at once, None without a cloud)."""
    run = _Run(scenario, strategy, fleet, feasible, slots)
    run.run(on_progress)
    return SegmentOutcome(
        counters=run.c,
        completion_s=run.completion,
        feasible=feasible,
        pool_busy_s=run.pool["busy_s"],
        pool_lost_s=run.pool["lost_s"],
        pool_batches=int(round(run.pool["batches"])),
        pool_batched_requests=int(round(run.pool["requests"])),
        end_s=run.end_s(),
        queue_delivered=int(run.commits + run.delivered),
        steps_applied=int(run.c["steps_done"].sum()),
        queue_duplicates=int(run.duplicates),
        memory_peak=run.memory_peak(),
        peak_link_flows=run.peak_flows_bound(),
        schedule=cost.kr_schedule(run.spec, strategy),
    )
