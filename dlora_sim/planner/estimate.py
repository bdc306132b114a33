"""Fleet-level estimates of every grid point, from the vectorised cost model (no simulation).

The cost model prices one device's job on its own link (``CostModel.evaluate`` over numpy arrays
of budgets, batches, ranks, KR windows). ``plan`` needs the *fleet*: when does the slowest
device finish, what does the pool cost for that long. This module adds, in closed form and
still over arrays, what the simulator would add:

- **shared links** (the built-in access → region tree): each direction's capacity is split
  max-min fairly (water-filling) among the groups' online devices, weighted by the share of
  their time they spend sending that way (a fixed point of three rounds); a link that follows a
  bandwidth trace, and a group's traced own links, count at the traces' time-average rates;
- **availability**: a Markov on/off device loses the work since its last checkpoint at every
  outage (as the simulator rolls back), so a job of ``S`` checkpoint segments of online length
  ``c`` meets ``F ~ NegBin(S, e^{-c/m_on})`` outages, each wasting ``E[X | X < c]`` of online
  time and an ``Exp(m_off)`` offline wait; the excess over the job's own time is taken as
  log-normal with those moments, and the fleet's slowest device sits at the quantile
  ``1 - 1/(n + 1)`` of its group. Trace availability uses the trace's mean online interval and
  gap in the same model (an approximation);
- **the GPU pool**: every request's roofline (compute, or streaming the frozen weights), a
  throughput bound (the fleet's GPU work over the GPUs, weights streamed once per full batch),
  queueing as ``1 / (1 - utilisation)``, the batching window per request;
- **GPU memory and admission**: fewer session slots than online devices bound the throughput.

These are estimates; ``plan`` confirms its best candidates with the simulator, which is the
reference. Everything here reads the validated scenario and the cost model's public API only.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from dlora_sim import cost
from dlora_sim.planner.space import CATEGORICAL_JOB, NUMERIC_JOB, Space

_ANY = {"device": "phone-mid", "link": "lte", "gpu": "a100"}  # counts do not depend on hardware


@dataclass
class Grid:
    """Every evaluated point: ``columns[name]`` is a numpy array, ``overrides[i]`` a dict."""

    overrides: list[dict[str, Any]]
    strategy: list[str]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    invalid: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.strategy)


# ------------------------------------------------------------------------------- the cost model


def _job_points(scenario: Any, space: Space) -> tuple[list[dict[str, Any]], list[str], dict[str, np.ndarray],
                                                       list[Any]]:
    """One row per (job configuration, strategy): overrides, strategy, per-device job counts,
    and the row's JobSpec (for memory)."""
    base = scenario.job.to_job_spec()
    cat_fields = [f for f in space.values if f in CATEGORICAL_JOB]
    num_fields = [f for f in space.values if f in NUMERIC_JOB]
    num_axes = {NUMERIC_JOB[f]: list(space.values[f]) for f in num_fields}
    numeric = cost.grid(**num_axes) if num_axes else {}
    n_num = len(next(iter(numeric.values()))) if numeric else 1
    rows_over: list[dict[str, Any]] = []
    rows_strategy: list[str] = []
    rows_specs: list[Any] = []
    cols: dict[str, list[np.ndarray]] = {}
    seen: set[tuple] = set()
    own_budget = scenario.job.budget
    for combo in itertools.product(*(space.values[f] for f in cat_fields)):
        spec = dataclasses.replace(base, **{CATEGORICAL_JOB[f]: v for f, v in zip(cat_fields, combo)})
        table = cost.CostModel(spec, **_ANY).evaluate(space.strategies, **numeric)
        for s in space.strategies:
            v = table.values[s]
            kr = cost.get_strategy(s).kr_arm is not None
            for i in range(n_num):
                over = {f: val for f, val in zip(cat_fields, combo)}
                for f in num_fields:
                    over[f] = numeric[NUMERIC_JOB[f]][i].item()
                if not kr:  # budget and KR window do not change a strategy without KR
                    if over.get("job.budget", own_budget) != _kept(space, "job.budget", own_budget):
                        continue
                    if over.get("job.kr_interval_steps", scenario.job.kr_interval_steps) != _kept(
                            space, "job.kr_interval_steps", scenario.job.kr_interval_steps):
                        continue
                    over.pop("job.budget", None)
                    over.pop("job.kr_interval_steps", None)
                key = (s, tuple(sorted(over.items())))
                if key in seen:
                    continue
                seen.add(key)
                rows_over.append(over)
                rows_strategy.append(s)
                rows_specs.append(_point_spec(spec, over))
                for name in ("job_edge_flops", "job_bytes_up", "job_bytes_down", "job_round_trips",
                             "job_cloud_flops", "edge_weight_bytes", "job_setup_bytes_down"):
                    cols.setdefault(name, []).append(np.asarray(v[name]).reshape(-1)[i:i + 1])
    columns = {k: np.concatenate(v).astype(float) for k, v in cols.items()}
    return rows_over, rows_strategy, columns, rows_specs


def _kept(space: Space, name: str, own: Any) -> Any:
    """The value a strategy without KR is shown at: the scenario's own, else the first tried."""
    values = space.values.get(name)
    if values is None or own in values:
        return own
    return values[0]


def _point_spec(spec: Any, over: dict[str, Any]) -> Any:
    fields: dict[str, Any] = {}
    for f, name in NUMERIC_JOB.items():
        if f in over and name != "rank":
            fields[name] = int(over[f])
    if "job.rank" in over:
        fields["peft"] = dataclasses.replace(spec.peft, rank=int(over["job.rank"]))
    return dataclasses.replace(spec, **fields) if fields else spec


# ------------------------------------------------------------------------------------ the fleet


@dataclass(frozen=True)
class _Group:
    name: str
    n: int
    flops: np.ndarray          # per member (FLOP/s)
    memory: np.ndarray         # per member (bytes)
    up_bps: np.ndarray         # per member goodput
    down_bps: np.ndarray
    weights: np.ndarray        # per member probability
    rtt_s: float
    jpf: float
    radio: tuple[float, float, float]
    access: str
    region: str
    online_fraction: float
    m_on: float                # mean online sojourn (inf: always on)
    m_off: float
    start_online: bool


def _availability(av: Any, horizon_s: float) -> tuple[float, float, float, bool]:
    kind = getattr(av, "kind", "always")
    if kind == "markov":
        return av.mean_online_s / (av.mean_online_s + av.mean_offline_s), av.mean_online_s, av.mean_offline_s, \
            bool(av.start_online)
    if kind == "trace":
        ons, gaps, starts = [], [], []
        for i in range(len(_trace(av))):
            iv = av.intervals_for(i)
            ons += [e - s for s, e in iv]
            gaps += [b[0] - a[1] for a, b in zip(iv, iv[1:])]
            starts.append(iv[0][0] if iv else horizon_s)
        m_on = float(np.mean(ons)) if ons else 0.0
        m_off = float(np.mean(gaps)) if gaps else 0.0
        if m_on <= 0:
            return 0.0, 1e-9, horizon_s, False
        frac = m_on / (m_on + m_off) if m_off > 0 else 1.0
        return frac, (m_on if m_off > 0 else math.inf), max(m_off, 1e-9), float(np.mean(starts)) <= 0
    return 1.0, math.inf, 0.0, True


def _trace(av: Any) -> Any:
    from dlora_sim.scenario._files import load_trace_cached  # the scenario's cached reader

    return load_trace_cached(av.file)


def _groups(scenario: Any, percentile: float) -> list[_Group]:
    net = scenario.network
    extra_rtt = 2.0 * (net.access_latency_s + net.region_latency_s) if net.graphml is None else 0.0
    out = []
    for g in scenario.fleet.groups:
        goodput = 1.0 - g.link.loss_rate
        caps = g.capacities()
        if caps:
            table = np.array([(c.flops_per_s, c.memory_bytes, c.up_bps, c.down_bps) for c in caps], dtype=float)
            flops, memory, up, down = (table[:, k] for k in range(4))
            weights = np.full(len(caps), 1.0 / len(caps))
        else:
            flops = np.array([g.device.flops_per_s], dtype=float)
            memory = np.array([float(g.device.memory_bytes)])
            up, down = np.array([g.link.up_bps], dtype=float), np.array([g.link.down_bps], dtype=float)
            weights = np.ones(1)
        traced = getattr(g, "bandwidth_trace", None)
        if traced is not None:  # a traced direction at its traces' time-average rate
            up_mean, down_mean = traced.mean_bps("up"), traced.mean_bps("down")
            up = np.full(len(up), up_mean) if up_mean is not None else up
            down = np.full(len(down), down_mean) if down_mean is not None else down
        frac, m_on, m_off, start_online = _availability(g.availability, scenario.run.horizon_s)
        out.append(_Group(
            name=g.name, n=int(g.count), flops=flops, memory=memory, up_bps=up * goodput, down_bps=down * goodput,
            weights=weights, rtt_s=g.link.rtt_s + g.link.jitter_s * (percentile / 100.0) + extra_rtt,
            jpf=float(g.device.joules_per_flop), radio=cost.radio_watts(g.link), access=g.access_node, region=g.region,
            online_fraction=frac, m_on=m_on, m_off=m_off, start_online=start_online))
    return out


def _shared_capacity_bps(net: Any, key: str, name: str, direction: str) -> float:
    """A built-in shared link's capacity one way: a traced link's time-average, else the tier's."""
    for trace in getattr(net, "link_traces", ()):
        if trace.selector == key and getattr(trace, key) == name:
            mean = trace.mean_bps(direction)
            if mean is not None:
                return mean
    return net.access_capacity_bps if key == "access" else net.region_capacity_bps


def _waterfill(rates: np.ndarray, weights: np.ndarray, capacity: float) -> np.ndarray:
    """Max-min fair level per row: ``sum_g w_g * min(r_g, level) = capacity`` (inf if it fits).

    ``rates`` and ``weights`` are (points, groups)."""
    order = np.argsort(rates, axis=1)
    r = np.take_along_axis(rates, order, axis=1)
    w = np.take_along_axis(weights, order, axis=1)
    before = np.cumsum(w * r, axis=1) - w * r          # sum over the slower groups, kept whole
    rest = np.cumsum(w[:, ::-1], axis=1)[:, ::-1]      # weight of this group and the faster ones
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(rest > 0, (capacity - before) / rest, np.inf)
    ok = (level <= r) & (level >= 0)
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
    out = np.full(rates.shape[0], np.inf)
    hit = first >= 0
    out[hit] = level[hit, first[hit]]
    return out


def _lognormal_quantile(mean: np.ndarray, var: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of a log-normal with the given mean and variance (0 where the mean is 0)."""
    z = NormalDist().inv_cdf(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        s2 = np.log1p(np.where(mean > 0, var / np.maximum(mean, 1e-300) ** 2, 0.0))
        out = np.exp(np.log(np.maximum(mean, 1e-300)) - s2 / 2 + np.sqrt(s2) * z)
    return np.where(mean > 0, out, 0.0)


def _outages(work: np.ndarray, steps: float, ckpt: float, g: _Group, q: float) -> tuple[np.ndarray, np.ndarray]:
    """(completion at quantile q, expected online time) of a job of ``work`` online seconds."""
    if not math.isfinite(g.m_on):
        return work.copy(), work.copy()
    segments = max(steps / ckpt, 1.0)
    c = work / segments
    mu_c = c / g.m_on
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        p = np.exp(-np.minimum(mu_c, 700.0))
        mean_f = segments * (1 - p) / p
        var_f = segments * (1 - p) / p ** 2
        wasted = np.where(mu_c > 1e-9, g.m_on - c * p / np.maximum(1 - p, 1e-300), c / 2)
    start = 0.0 if g.start_online else g.m_off
    excess_mean = mean_f * (wasted + g.m_off) + start
    excess_var = wasted ** 2 * var_f + g.m_off ** 2 * (mean_f + var_f) + 2 * wasted * g.m_off * var_f + start ** 2
    done = work + _lognormal_quantile(excess_mean, excess_var, q)
    online = work + mean_f * wasted
    never = mu_c > 50  # a segment that almost never fits between two outages
    return np.where(never, np.inf, done), np.where(never, np.inf, online)


def _quantile_members(values: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Weighted quantile over members (axis 1) per point."""
    if values.shape[1] == 1:
        return values[:, 0]
    order = np.argsort(values, axis=1)
    v = np.take_along_axis(values, order, axis=1)
    cw = np.cumsum(weights[order], axis=1)
    idx = np.minimum((cw < q - 1e-12).sum(axis=1), values.shape[1] - 1)
    return v[np.arange(v.shape[0]), idx]


def estimate(scenario: Any, space: Space, percentile: float = 100.0) -> Grid:
    """Every point of ``space`` on ``scenario``'s fleet: completion (at ``percentile`` and of the
    last device), device energy, traffic, provisioned cloud cost, utilisation."""
    rows_over, rows_strategy, jc, specs = _job_points(scenario, space)
    gpus = list(space.values.get("cloud.gpu", (scenario.cloud.gpu,)))
    counts = list(space.values.get("cloud.count", (scenario.cloud.count,)))
    n_rows = len(rows_over)
    # expand rows x gpu x count into points
    idx_row = np.repeat(np.arange(n_rows), len(gpus) * len(counts))
    idx_gpu = np.tile(np.repeat(np.arange(len(gpus)), len(counts)), n_rows)
    idx_cnt = np.tile(np.arange(len(counts)), n_rows * len(gpus))
    overrides, strategies, invalid = [], [], []
    gpu_specs = [_gpu(scenario, name) for name in gpus]
    slots_per_gpu: dict[tuple[int, int], int | None] = {}
    for r in range(n_rows):
        for k, gspec in enumerate(gpu_specs):
            s = rows_strategy[r]
            if s == "edge-only" or cost.cloud_session_bytes(specs[r], s) == 0:
                slots_per_gpu[(r, k)] = None
            else:
                slots_per_gpu[(r, k)] = int(cost.sessions_per_gpu(specs[r], s, gspec))
    for r, k, c in zip(idx_row.tolist(), idx_gpu.tolist(), idx_cnt.tolist()):
        over = dict(rows_over[r])
        if "cloud.gpu" in space.values:
            over["cloud.gpu"] = gpus[k]
        if "cloud.count" in space.values:
            over["cloud.count"] = counts[c]
        overrides.append(over)
        strategies.append(rows_strategy[r])
        slots = slots_per_gpu[(r, k)]
        invalid.append(f"one session does not fit beside the weights on a {gpus[k]}" if slots == 0 else None)
    col = {k: v[idx_row] for k, v in jc.items()}
    n_gpu = np.asarray(counts, dtype=float)[idx_cnt]
    gpu_flops = np.asarray([g.flops_per_s for g in gpu_specs])[idx_gpu]
    gpu_bw = np.asarray([g.memory_bandwidth_bytes_per_s for g in gpu_specs])[idx_gpu]
    usd_h = np.asarray([g.usd_per_hour for g in gpu_specs])[idx_gpu]
    slots = np.asarray([np.inf if slots_per_gpu[(r, k)] is None else float(slots_per_gpu[(r, k)])
                        for r, k in zip(idx_row.tolist(), idx_gpu.tolist())]) * n_gpu
    tokens = np.asarray([s.tokens for s in specs], dtype=float)[idx_row]
    wbytes = np.asarray([s.weight_bytes_per_param for s in specs], dtype=float)[idx_row]
    steps = float(scenario.job.total_steps)
    ckpt = float(scenario.scheduler.checkpoint_interval_steps)
    cloud = scenario.cloud
    requests = steps if scenario.run.granularity == "step" else col["job_round_trips"]
    compute_s = col["job_cloud_flops"] / gpu_flops
    stream_s = col["job_cloud_flops"] / np.maximum(2.0 * tokens, 1.0) * wbytes / gpu_bw
    gpu_lat = np.maximum(compute_s, stream_s)
    gpu_busy = np.maximum(compute_s, stream_s / cloud.batch_max_users)
    wait_s = np.where(col["job_cloud_flops"] > 0, requests * cloud.batch_window_s, 0.0)

    groups = _groups(scenario, percentile)
    n_total = sum(g.n for g in groups)
    q_p = min(percentile / 100.0, 1.0 - 1.0 / (n_total + 1)) if percentile < 100 else None
    inflation = np.ones(len(strategies))
    results: dict[str, Any] = {}
    for _ in range(2):  # once without queueing, once with the utilisation the first pass found
        results = _fleet(groups, col, scenario, gpu_lat * inflation, wait_s, steps, ckpt, q_p)
        rho = (gpu_busy * n_total) / (n_gpu * np.maximum(results["makespan_s"], 1e-9))
        inflation = 1.0 / (1.0 - np.minimum(np.nan_to_num(rho, nan=0.0), 0.95))
    fleet_busy = gpu_busy * n_total
    online = sum(g.n * g.online_fraction for g in groups)
    bounds = {
        "gpu pool": fleet_busy / n_gpu,
        "gpu memory": np.where(np.isfinite(slots) & (slots < online), results["work_total"] / slots, 0.0)
        if cloud.memory_full == "queue" else np.zeros(len(strategies)),
        "admission": results["work_total"] / scenario.scheduler.admission_limit
        if scenario.scheduler.admission_limit else np.zeros(len(strategies)),
    }
    time_p, makespan, bound = results["time_s"].copy(), results["makespan_s"].copy(), results["bound"]
    bound = np.asarray(bound, dtype=object)
    for name, value in bounds.items():
        worse = value > makespan
        bound[worse] = name
        makespan = np.maximum(makespan, value)
        time_p = np.maximum(time_p, value)
    grid = Grid(overrides, strategies, invalid=invalid)
    grid.columns = {
        "time_s": time_p,
        "makespan_s": makespan,
        "device_energy_j": results["energy_j"],
        "radio_energy_j": results["radio_j"],
        "bytes_per_device": results["bytes"],
        "cloud_usd": cost.gpu_usd(n_gpu * makespan, usd_h),
        "gpu_busy_usd": cost.gpu_usd(fleet_busy, usd_h),
        "gpu_utilisation": np.where(makespan > 0, fleet_busy / (n_gpu * np.maximum(makespan, 1e-9)), 0.0),
        "gpus": n_gpu,
        "slowest_online_s": results["slowest_work"],
    }
    grid.columns["bound"] = bound
    grid.columns["gpu"] = np.asarray(gpus, dtype=object)[idx_gpu]
    return grid


def _gpu(scenario: Any, name: str) -> Any:
    """A catalogue GPU; the scenario's price and memory where it overrides them for its own GPU."""
    entry = cost.get_gpu(name)
    cloud = scenario.cloud
    if name == cloud.gpu:
        return cloud.gpu_spec
    if cloud.memory_gib is not None:
        entry = dataclasses.replace(entry, memory_bytes=cloud.memory_gib * 1024**3)
    return entry


def _fleet(groups: list[_Group], col: dict[str, np.ndarray], scenario: Any, gpu_lat: np.ndarray,
           wait_s: np.ndarray, steps: float, ckpt: float, q_p: float | None) -> dict[str, Any]:
    """Per point: completion at the percentile and of the last device, mean energy and bytes."""
    n_pts = len(gpu_lat)
    bu, bd, rt = col["job_bytes_up"], col["job_bytes_down"], col["job_round_trips"]
    net = scenario.network
    shared = net.graphml is None
    # private mean rates per group, then the fair levels per access network and region
    level_up = [np.full(n_pts, np.inf) for _ in groups]
    level_down = [np.full(n_pts, np.inf) for _ in groups]
    for _ in range(3 if shared else 0):
        share_up, share_down, r_up, r_down = [], [], [], []
        for g, lu, ld in zip(groups, level_up, level_down):
            up = np.minimum(float(np.dot(g.weights, g.up_bps)), lu)
            down = np.minimum(float(np.dot(g.weights, g.down_bps)), ld)
            t_up, t_down = 8 * bu / up, 8 * bd / down
            edge = col["job_edge_flops"] / float(np.dot(g.weights, g.flops))
            total = t_up + t_down + rt * g.rtt_s + edge + gpu_lat + wait_s
            share_up.append(np.where(total > 0, t_up / total, 0.0) * g.n * g.online_fraction)
            share_down.append(np.where(total > 0, t_down / total, 0.0) * g.n * g.online_fraction)
            r_up.append(np.full(n_pts, float(np.dot(g.weights, g.up_bps))))
            r_down.append(np.full(n_pts, float(np.dot(g.weights, g.down_bps))))
        for key in ("access", "region"):
            for name in dict.fromkeys(getattr(g, key) for g in groups):
                members = [i for i, g in enumerate(groups) if getattr(g, key) == name]
                for direction, rates, shares, levels in (("up", r_up, share_up, level_up),
                                                         ("down", r_down, share_down, level_down)):
                    cap = _shared_capacity_bps(net, key, name, direction)
                    r = np.stack([np.minimum(rates[i], levels[i] if key == "region" else np.inf) for i in members], 1)
                    w = np.stack([shares[i] for i in members], 1)
                    lvl = _waterfill(r, w, cap)
                    for i in members:
                        levels[i] = lvl if key == "access" else np.minimum(levels[i], lvl)
    time_p = np.zeros(n_pts)
    makespan = np.zeros(n_pts)
    slowest = np.zeros(n_pts)
    work_total = np.zeros(n_pts)
    energy = np.zeros(n_pts)
    radio_j = np.zeros(n_pts)
    nbytes = np.zeros(n_pts)
    bound = np.full(n_pts, "devices", dtype=object)
    n_total = sum(g.n for g in groups)
    for g, lu, ld in zip(groups, level_up, level_down):
        up = np.minimum(g.up_bps[None, :], lu[:, None])
        down = np.minimum(g.down_bps[None, :], ld[:, None])
        t_up, t_down = 8 * bu[:, None] / up, 8 * bd[:, None] / down
        link_s = t_up + t_down + rt[:, None] * g.rtt_s
        edge = col["job_edge_flops"][:, None] / g.flops[None, :]
        work = link_s + edge + (gpu_lat + wait_s)[:, None]
        fits = col["edge_weight_bytes"][:, None] <= g.memory[None, :]
        work = np.where(fits, work, np.inf)
        q_last = 1.0 - 1.0 / (g.n + 1)
        w_last = _quantile_members(work, g.weights, 1.0) if work.shape[1] > 1 else work[:, 0]
        done_last, _ = _outages(w_last, steps, ckpt, g, q_last)
        makespan = np.maximum(makespan, done_last)
        slowest = np.maximum(slowest, w_last)
        if q_p is None:
            time_p = np.maximum(time_p, done_last)
        else:
            w_p = _quantile_members(work, g.weights, q_p)
            done_p, _ = _outages(w_p, steps, ckpt, g, q_p)
            time_p = np.maximum(time_p, done_p)
        mean_work = np.where(np.isfinite(work), work, 0.0) @ g.weights
        _, online = _outages(mean_work, steps, ckpt, g, 0.5)
        rework = np.where(mean_work > 0, online / np.maximum(mean_work, 1e-300), 1.0)
        work_total += g.n * online
        share = g.n / n_total
        compute_j = col["job_edge_flops"] * g.jpf
        rad = cost.radio_energy_j(bu, bd, link_s @ g.weights, *g.radio)
        energy += share * rework * (compute_j + rad)
        radio_j += share * rework * rad
        nbytes += share * rework * (bu + bd)
    return {"time_s": time_p, "makespan_s": makespan, "energy_j": energy, "radio_j": radio_j, "bytes": nbytes,
            "work_total": work_total, "slowest_work": slowest, "bound": bound}
