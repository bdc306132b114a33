"""The plan: estimate the grid, keep the Pareto front, filter, confirm the best with the simulator.

``plan(scenario, deadline_s, ...)`` returns a :class:`Plan` (``.to_dict()`` is what ``--json``
prints and ``plan.json`` holds). Ranking: among the points whose estimate meets every
constraint, the cheapest cloud bill first (provisioned GPUs × time), then device energy, traffic
and time; points whose accuracy no comparable profile gives come after those whose accuracy is
known. The simulator is the judge: the recommendation is the first candidate whose *simulated*
completion meets the deadline (and whose simulated bill meets ``max_usd``).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlora_sim.errors import InputError
from dlora_sim.planner.estimate import Grid, estimate
from dlora_sim.planner.space import Space, build_space, parse_duration, parse_vary

#: objectives of the front: (column, sense) with +1 = smaller is better
OBJECTIVES = (("time_s", 1), ("device_energy_j", 1), ("bytes_per_device", 1), ("cloud_usd", 1), ("accuracy", -1))


@dataclass
class Plan:
    """What ``plan`` found; ``status`` is ``recommended``, ``infeasible`` or ``unconfirmed``."""

    status: str
    message: str
    scenario: str
    deadline_s: float
    percentile: float
    constraints: dict[str, Any]
    space: dict[str, list[Any]]
    points: int
    valid_points: int
    front: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    confirmed: list[dict[str, Any]]
    recommendation: dict[str, Any] | None
    closest: dict[str, Any] | None
    estimate_s: float
    confirm_devices: int | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _clean({k: getattr(self, k) for k in self.__dataclass_fields__})


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# --------------------------------------------------------------------------------- scenarios


def _load(scenario: Any, overrides: dict[str, Any] | None = None) -> Any:
    from dlora_sim.scenario import load_scenario, scenario_from_dict
    from dlora_sim.scenario.load import DERIVED_KEYS

    if isinstance(scenario, (str, Path)):
        return load_scenario(scenario, overrides)
    data = copy.deepcopy(scenario.to_resolved_dict())
    for section, key in DERIVED_KEYS:
        data.get(section, {}).pop(key, None)
    return scenario_from_dict(data, source=f"scenario {scenario.name}", overrides=overrides)


def label(strategy: str, over: dict[str, Any], gpu: str | None = None) -> str:
    """``dlora-kr B=16 act 8×a100``: the point in a few characters."""
    parts = [strategy]
    if "job.budget" in over:
        parts.append(f"B={over['job.budget']}")
    short = {"activations": "act", "weights": "wts", "offload": "offload", "edge-forward": "edge-fwd"}
    for key, prefix in (("job.exchange", ""), ("job.killed_policy", "killed:"), ("job.head_placement", "head:"),
                        ("job.batch", "batch="), ("job.rank", "r="), ("job.kr_interval_steps", "I=")):
        if key in over:
            parts.append(f"{prefix}{short.get(over[key], over[key])}")
    if "cloud.count" in over or "cloud.gpu" in over:
        parts.append(f"{over.get('cloud.count', '')}×{over.get('cloud.gpu', gpu or '')}".strip("×"))
    return " ".join(str(p) for p in parts)


# ---------------------------------------------------------------------------------- accuracy


def _accuracy(scenario: Any, grid: Grid, profiles: Path | None) -> tuple[np.ndarray, np.ndarray, str | None, str]:
    """Accuracy matched from comparable profiles, as sweeps do (docs/sweeps.md), and a note
    naming the profiles pooled and those left out because they were trained otherwise."""
    from dlora_sim.study.pooling import index_profiles, match_accuracy, profile_facts

    acc = np.full(len(grid), np.nan)
    n = np.zeros(len(grid))
    ref_path = Path(scenario.job.profile)
    folder = profiles if profiles is not None else ref_path.parent
    if not folder.is_dir():
        raise InputError(f"--profiles {folder}: not a folder")
    index = index_profiles(folder)
    reference = next((f for f in index if Path(f.path).resolve() == ref_path.resolve()), None)
    if reference is None:
        try:
            reference = profile_facts(ref_path)
        except InputError:
            return acc, n, None, ""
    modules = scenario.job.module_count
    cache: dict[tuple[str, int], tuple[float, int]] = {}
    used: set[str] = set()
    excluded: set[str] = set()
    for i, (s, over) in enumerate(zip(grid.strategy, grid.overrides)):
        budget = int(over.get("job.budget", scenario.job.budget))
        key = (s, budget)
        if key not in cache:
            match = match_accuracy(s, budget, modules, reference, index)
            cache[key] = (match.accuracy, match.n)
            used.update(Path(p).name for p in match.used)
            excluded.update(Path(p).name for p in match.excluded)
        acc[i], n[i] = cache[key]
    note = f"accuracy pooled from {', '.join(sorted(used)) or 'no profile'}"
    if excluded:
        note += f"; left out (trained otherwise than {ref_path.name}): {', '.join(sorted(excluded))}"
    return acc, n, str(folder), note


# ------------------------------------------------------------------------------------ pareto


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (points × objectives, smaller is better) no other row dominates."""
    n = values.shape[0]
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(values.T[::-1])
    vals = values[order]
    for pos in range(n):
        i = order[pos]
        if not keep[i]:
            continue
        # rows after i in lexicographic order cannot dominate it; mark those it dominates
        rest = order[pos + 1:]
        dominated = np.all(vals[pos] <= values[rest], axis=1) & np.any(vals[pos] < values[rest], axis=1)
        keep[rest[dominated]] = False
    return keep


# ------------------------------------------------------------------------------------ the plan


def plan(scenario: Any, deadline: float | str, *, max_usd: float | None = None, min_accuracy: float | None = None,
         vary: Any = None, strategies: tuple[str, ...] | list[str] | None = None, confirm: int = 3,
         percentile: float = 100.0, confirm_devices: int | None = None, profiles: str | Path | None = None,
         progress: Any = None, workers: int | None = None, scheduler: str | None = None, tls: Any = None) -> Plan:
    """Which configuration of ``scenario`` meets ``deadline`` at least cloud cost.

    Args:
        scenario: a scenario file (TOML) or a validated :class:`~dlora_sim.scenario.Scenario`.
        deadline: seconds, or a duration such as ``"48h"``, ``"2d"``, ``"90min"``.
        max_usd: the most the provisioned GPU pool may cost (GPUs × completion × $/GPU-hour).
        min_accuracy: the least matched test accuracy (0..1); points without a comparable
            profile then fail it.
        vary: fields to search (``["job.budget,cloud.count"]``, ``{"cloud.gpu": ("a100",)}``);
            None: ``job.budget``, ``job.exchange``, ``cloud.count`` at their default values.
        strategies: strategies to search (default: the scenario's ``run.strategies``).
        confirm: candidates to simulate (0: estimate only).
        percentile: the deadline holds for this share of the devices (100: every device).
        confirm_devices: simulate a proportional sample of about this many devices (shared
            links, GPUs, admission and queue scaled alike) instead of the whole fleet.
        profiles: folder of profiles for accuracy (default: the folder of ``job.profile``).
        progress: called with a line of text before each simulation (e.g. ``print``).
        workers: confirm the candidates at once on a loopback Dask cluster of this many
            processes (None, with no ``scheduler``: one after another, stopping at the first
            that meets). The recommendation is the same either way: the first in rank order.
        scheduler: a running Dask scheduler to confirm on instead (``tls://HOST:PORT`` with
            ``tls``, a :class:`dlora_sim.sweep.TLSFiles`; or ``tcp://`` on a trusted network),
            as ``dlora-sim sweep --scheduler``; its workers must see the scenario file.

    Raises:
        InputError: a bad deadline, field, value or scenario, or bad Dask options (one line).
    """
    deadline_s = float(deadline) if isinstance(deadline, (int, float)) and not isinstance(deadline, bool) \
        else parse_duration(str(deadline))
    if not (math.isfinite(deadline_s) and deadline_s > 0):
        raise InputError(f"--deadline must be a positive duration, got {deadline!r}")
    if max_usd is not None and not (math.isfinite(max_usd) and max_usd > 0):
        raise InputError(f"--max-usd must be a positive number, got {max_usd}")
    if min_accuracy is not None and not (0 < min_accuracy <= 1):
        raise InputError(f"--min-accuracy must be in (0, 1] (a fraction, e.g. 0.6), got {min_accuracy}")
    if not (0 < percentile <= 100):
        raise InputError(f"--percentile must be in (0, 100], got {percentile}")
    if confirm < 0:
        raise InputError(f"--confirm must be >= 0, got {confirm}")
    if confirm_devices is not None and confirm_devices < 1:
        raise InputError(f"--confirm-devices must be >= 1, got {confirm_devices}")
    if scheduler is None and tls is not None and tls.given():
        raise InputError(f"{tls.given()[0]}: only used with a tls:// --scheduler")
    base = _load(scenario)
    if isinstance(vary, dict):
        parsed = {k: (tuple(v) if v is not None else None) for k, v in vary.items()}
        parse_vary([",".join(parsed)])  # the same field checks
    else:
        parsed = parse_vary(list(vary) if vary else None)
    space = build_space(base, parsed, tuple(strategies) if strategies else None)
    t0 = time.perf_counter()
    grid = estimate(base, space, percentile)
    acc, acc_n, acc_folder, acc_note = _accuracy(base, grid, Path(profiles) if profiles is not None else None)
    grid.columns["accuracy"] = acc
    grid.columns["accuracy_profiles"] = acc_n
    estimate_s = time.perf_counter() - t0
    valid = np.array([r is None for r in grid.invalid]) & np.isfinite(grid.columns["time_s"])
    objectives = np.stack([np.where(np.isfinite(grid.columns[c]), grid.columns[c] * sign, np.inf)
                           for c, sign in OBJECTIVES], axis=1)
    front = np.zeros(len(grid), dtype=bool)
    idx_valid = np.flatnonzero(valid)
    if idx_valid.size:
        front[idx_valid[pareto_mask(objectives[idx_valid])]] = True
    meets = valid & (grid.columns["time_s"] <= deadline_s)
    if max_usd is not None:
        meets &= grid.columns["cloud_usd"] <= max_usd
    if min_accuracy is not None:
        meets &= np.nan_to_num(acc, nan=-1.0) >= min_accuracy
    rank = sorted(np.flatnonzero(meets).tolist(), key=lambda i: _rank_key(grid, i))
    candidates = _distinct(rank, grid)
    points = [_point(grid, i, base, deadline_s) for i in range(len(grid))]
    constraints = {"deadline_s": deadline_s, "max_usd": max_usd, "min_accuracy": min_accuracy,
                   "percentile": percentile}
    notes = [f"accuracy matched from the profiles in {acc_folder}: {acc_note}" if acc_folder else
             "no profile to match accuracy against: accuracy is unknown"]
    if base.network.graphml is not None:
        notes.append("GraphML network: shared-link contention is left out of the estimate")
    confirmed: list[dict[str, Any]] = []
    recommendation = closest = None
    sim_share = _sample_factor(base, confirm_devices)
    jobs = candidates[:confirm]
    on_dask = bool(jobs) and (workers is not None or scheduler is not None)
    with _dask(scheduler, workers, tls) if on_dask else contextlib.nullcontext() as client:
        # a worker re-reads a scenario file itself, so it gets an absolute path
        source = str(Path(scenario).resolve()) if client is not None and isinstance(scenario, (str, Path)) else scenario
        one = functools.partial(_confirm, source, base, grid, space=space, deadline_s=deadline_s,
                                percentile=percentile, max_usd=max_usd, sample=sim_share,
                                progress=None if client is not None else progress)
        if client is not None and progress is not None:
            progress(f"simulating {len(jobs)} candidates at once on Dask")
        for i, record in zip(jobs, _confirmations(jobs, one, client)):
            confirmed.append({**points[i], **record})
            if record["meets"]:
                recommendation = confirmed[-1]
                break
    if not candidates:
        order = np.flatnonzero(valid)
        if order.size:
            fastest = float(np.min(grid.columns["time_s"][order]))
            near = order[grid.columns["time_s"][order] <= 1.05 * fastest]  # as fast, within 5%: the cheapest
            j = int(near[np.argmin(grid.columns["cloud_usd"][near])])
            closest = points[j]
            if confirm > 0:
                record = _confirm(scenario, base, grid, j, space, deadline_s, percentile, max_usd, sim_share, progress)
                closest = {**closest, **record}
                confirmed.append(closest)
                if record["meets"] and (min_accuracy is None or (closest["accuracy"] or -1) >= min_accuracy):
                    recommendation = closest
    elif recommendation is None and confirmed:
        closest = min(confirmed, key=lambda r: r["fleet_time_s"] if r["fleet_time_s"] is not None else math.inf)
    elif recommendation is None:
        closest = points[candidates[0]]
    status, message = _verdict(recommendation, closest, candidates, confirm, deadline_s, percentile,
                               max_usd, min_accuracy)
    front_rows = sorted((points[i] for i in np.flatnonzero(front)), key=lambda p: (p["cloud_usd"], p["time_s"]))
    return Plan(
        status=status, message=message, scenario=base.name, deadline_s=deadline_s, percentile=percentile,
        constraints=constraints, space={"strategies": list(space.strategies), **{k: list(v) for k, v in space.values.items()}},
        points=len(grid), valid_points=int(valid.sum()), front=front_rows,
        candidates=[points[i] for i in candidates[: max(confirm, 5)]], confirmed=confirmed,
        recommendation=recommendation, closest=closest, estimate_s=estimate_s,
        confirm_devices=None if sim_share is None else sim_share[1], notes=notes,
    )


def _rank_key(grid: Grid, i: int) -> tuple:
    c = grid.columns
    return (0 if math.isfinite(c["accuracy"][i]) else 1, round(float(c["cloud_usd"][i]), 2),
            float(c["device_energy_j"][i]), float(c["bytes_per_device"][i]), float(c["time_s"][i]))


def _distinct(rank: list[int], grid: Grid) -> list[int]:
    """Drop points that estimate exactly like a better-ranked one of the same strategy and cloud
    (e.g. ``exchange`` for cloud-only): the same figures, another label."""
    seen, out = set(), []
    for i in rank:
        key = (grid.strategy[i], grid.columns["gpu"][i], grid.columns["gpus"][i],
               *(round(float(grid.columns[c][i]), 6) for c in ("time_s", "device_energy_j", "bytes_per_device")))
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out


def _point(grid: Grid, i: int, scenario: Any, deadline_s: float) -> dict[str, Any]:
    c = grid.columns
    over = grid.overrides[i]
    return {
        "label": label(grid.strategy[i], over, str(c["gpu"][i])),
        "strategy": grid.strategy[i],
        "overrides": dict(over),
        "budget": over.get("job.budget", scenario.job.budget if grid.strategy[i] in _KR else None),
        "exchange": over.get("job.exchange", scenario.job.exchange),
        "gpu": str(c["gpu"][i]),
        "gpus": int(c["gpus"][i]),
        "time_s": float(c["time_s"][i]),
        "makespan_s": float(c["makespan_s"][i]),
        "device_energy_j": float(c["device_energy_j"][i]),
        "radio_energy_j": float(c["radio_energy_j"][i]),
        "bytes_per_device": float(c["bytes_per_device"][i]),
        "cloud_usd": float(c["cloud_usd"][i]),
        "gpu_busy_usd": float(c["gpu_busy_usd"][i]),
        "gpu_utilisation": float(c["gpu_utilisation"][i]),
        "accuracy": float(c["accuracy"][i]),
        "accuracy_profiles": int(c["accuracy_profiles"][i]),
        "bound": str(c["bound"][i]),
        "invalid": grid.invalid[i],
        "meets_deadline_estimate": bool(c["time_s"][i] <= deadline_s),
    }


_KR = ("dlora-kr", "dlora-random", "dlora-static-random")


# --------------------------------------------------------------------------------- confirming


def _sample_factor(base: Any, confirm_devices: int | None) -> tuple[dict[str, Any], int] | None:
    """Overrides that shrink the fleet to about ``confirm_devices`` devices, and its size."""
    total = base.fleet.device_count
    if confirm_devices is None or confirm_devices >= total:
        return None
    f = confirm_devices / total
    over: dict[str, Any] = {}
    n = 0
    for k, g in enumerate(base.fleet.groups):
        count = max(1, round(g.count * f))
        over[f"fleet.groups.{k}.count"] = count
        n += count
    share = n / total
    if base.network.graphml is None:
        over["network.access_capacity_bps"] = max(1.0, base.network.access_capacity_bps * share)
        over["network.region_capacity_bps"] = max(1.0, base.network.region_capacity_bps * share)
    if base.scheduler.admission_limit:
        over["scheduler.admission_limit"] = max(1, round(base.scheduler.admission_limit * share))
    over["scheduler.queue_capacity"] = max(1, round(base.scheduler.queue_capacity * share))
    over["_share"] = share
    return over, n


def _confirm(source: Any, base: Any, grid: Grid, i: int, space: Space, deadline_s: float, percentile: float,
             max_usd: float | None, sample: tuple[dict[str, Any], int] | None, progress: Any) -> dict[str, Any]:
    """Simulate point ``i`` (on the whole fleet, or a proportional sample) and judge it."""
    from dlora_sim.sim import simulate

    strategy = grid.strategy[i]
    over = dict(grid.overrides[i])
    n_gpus = int(over.get("cloud.count", base.cloud.count))
    sim_over: dict[str, Any] = {**over, "run.strategies": [strategy], "run.timeline_sample_devices": 0,
                                "run.horizon_s": max(base.run.horizon_s, 1.5 * deadline_s)}
    share = 1.0
    if sample is not None:
        extra, _ = sample
        share = extra["_share"]
        sim_over.update({k: v for k, v in extra.items() if k != "_share"})
        sim_over["cloud.count"] = max(1, math.ceil(n_gpus * share))
    if progress is not None:
        progress(f"simulating {label(strategy, over, str(grid.columns['gpu'][i]))}" + ("" if sample is None else f" on {sample[1]} devices"))
    scenario = _load(source, sim_over)
    t0 = time.perf_counter()
    result = simulate(scenario)
    wall = time.perf_counter() - t0
    block = result.strategy(strategy)
    rows = [r for r in result.devices if r["strategy"] == strategy]
    completion = [r["completion_s"] if r["finished"] and r["completion_s"] is not None else math.inf for r in rows]
    sim_p = _percentile_time(completion, percentile)
    finished = sum(1 for c in completion if math.isfinite(c))
    n = len(rows)
    from dlora_sim import cost

    record: dict[str, Any] = {
        "cloud_sees": list(cost.get_strategy(strategy).cloud_sees(scenario.job.to_job_spec())),
        "sim_devices": n,
        "sim_gpus": int(scenario.cloud.count),
        "sim_finished": finished,
        "sim_finished_fraction": finished / n if n else 0.0,
        "sim_time_s": None if not math.isfinite(sim_p) else sim_p,
        "sim_makespan_s": block.get("makespan_s") if finished == n else None,
        "sim_provisioned_usd": block.get("provisioned_usd"),
        # means over the finished devices (summary.json's per_finished_device): a device the horizon
        # cut off has spent only part of its job, and would pull an all-device mean down
        "sim_device_energy_j": (block.get("per_finished_device") or {}).get("device_energy_j"),
        "sim_bytes_per_device": (block.get("per_finished_device") or {}).get("bytes_total"),
        "sim_wall_s": wall,
        "sim_horizon_s": float(scenario.run.horizon_s),
    }
    calibrated = sim_p
    if sample is not None:
        single = Space({k: (v,) for k, v in over.items()} | {"cloud.count": (sim_over["cloud.count"],)}, (strategy,))
        est_sample = estimate(scenario, single, percentile).columns["time_s"][0]
        calibrated = grid.columns["time_s"][i] * sim_p / est_sample if est_sample > 0 else math.inf
        record["sample_estimate_s"] = float(est_sample)
        record["calibrated_time_s"] = float(calibrated) if math.isfinite(calibrated) else None
        if record["sim_provisioned_usd"] is not None and math.isfinite(calibrated):
            gpu = scenario.cloud.gpu_spec
            record["sim_provisioned_usd"] = cost.gpu_usd(n_gpus * calibrated, gpu.usd_per_hour)
    met = math.isfinite(sim_p) and sim_p <= deadline_s and math.isfinite(calibrated) and calibrated <= deadline_s
    if max_usd is not None and record["sim_provisioned_usd"] is not None:
        met = met and record["sim_provisioned_usd"] <= max_usd
    record["meets"] = bool(met)
    record["fleet_time_s"] = float(calibrated) if math.isfinite(calibrated) else None
    return record


def _dask(scheduler: str | None, workers: int | None, tls: Any) -> contextlib.AbstractContextManager[Any]:
    """The Dask client the candidates are confirmed on, opened as a sweep opens one."""
    from dlora_sim.sweep import TLSFiles, dask_client

    return dask_client(scheduler, workers if workers is not None else 2, tls if tls is not None else TLSFiles())


def _confirmations(indices: list[int], confirm_one: Callable[[int], dict[str, Any]],
                   client: Any) -> Iterator[dict[str, Any]]:
    """Each point's simulated record, in the order given. Without a client one after another,
    lazily, so a caller that stops at the first that meets simulates no more; on Dask all are
    submitted at once (the wall time of one) and handed back in order, so the first that meets
    is the same point either way."""
    if client is None:
        yield from map(confirm_one, indices)
        return
    # those left unread when the caller stops are released with the client, as it closes
    futures = [client.submit(confirm_one, i, key=f"dlora-plan-{i}-{time.time_ns()}", pure=False) for i in indices]
    for future in futures:
        yield future.result()


def _percentile_time(completion: list[float], percentile: float) -> float:
    """The time by which ``percentile`` % of the devices had finished (inf if they never did)."""
    if not completion:
        return math.inf
    array = np.sort(np.asarray(completion, dtype=float))
    k = max(1, math.ceil(percentile / 100.0 * len(array)))
    return float(array[k - 1])


def _verdict(rec: dict | None, closest: dict | None, candidates: list[int], confirm: int, deadline_s: float,
             percentile: float, max_usd: float | None, min_accuracy: float | None) -> tuple[str, str]:
    who = "every device" if percentile >= 100 else f"{percentile:g}% of the devices"
    what = f"a deadline of {hours(deadline_s)} for {who}"
    if max_usd is not None:
        what += f", at most ${max_usd:,.0f}"
    if min_accuracy is not None:
        what += f", accuracy at least {100 * min_accuracy:.1f}%"
    if rec is not None:
        sim = rec.get("fleet_time_s")
        return "recommended", (f"recommended: {rec['label']}: the simulator finishes {who} in {hours(sim)} "
                               f"(estimate {hours(rec['time_s'])}) for ${_usd(rec)} of GPUs")
    if not candidates and closest is None:
        return "infeasible", f"no configuration meets {what}: no point of the grid is valid"
    if not candidates:
        t = closest.get("fleet_time_s") or closest["time_s"]
        src = "simulated" if closest.get("sim_devices") else "estimated"
        return "infeasible", (f"no configuration meets {what}; the closest is {closest['label']} at "
                              f"{hours(t)} ({src}, ${_usd(closest)} of GPUs)")
    if confirm == 0:
        return "unconfirmed", (f"estimate only (--confirm 0): {closest['label']} meets {what} by estimate "
                               f"({hours(closest['time_s'])}, ${closest['cloud_usd']:,.0f} of GPUs); not simulated")
    t = closest.get("fleet_time_s")
    return "unconfirmed", (f"none of the {min(confirm, len(candidates))} best candidates met {what} in simulation; "
                           f"the closest is {closest['label']} at "
                           f"{hours(t) if t is not None else 'more than the horizon'} (simulated)")


def _usd(p: dict) -> str:
    value = p.get("sim_provisioned_usd") or p.get("cloud_usd")
    return f"{value:,.0f}" if value is not None else "?"


def hours(seconds: float | None) -> str:
    """A duration as it reads best (min, h, d)."""
    if seconds is None or not math.isfinite(seconds):
        return "never"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
