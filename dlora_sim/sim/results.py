"""Result records of a simulation, their summary, and the results folder on disk.

Plain data only (no SimPy): the report package and sweeps read these. A results folder holds

- ``summary.json``: per strategy the fleet totals, completion-time percentiles and every saving
  against the paired ``dlora-all`` run;
- ``devices.parquet``: one row per device and strategy;
- ``timeline.parquet``: what a sample of devices did when (``device, strategy, kind, t_start,
  t_end`` in seconds; kinds: compute, upload, cloud, download, kr, session, wait, offline, lost);
- ``scenario.json``: the fully resolved scenario;
- ``.dlora-sim-results``: the marker that makes it a folder dlora-sim may replace on a rerun.

Everything is written atomically (the folder appears whole or not at all), with sorted keys,
no timestamps and no absolute run-time data, so the same scenario and seed give byte-identical
files.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dlora_sim import cost
from dlora_sim.errors import InputError
from dlora_sim.io import atomic_directory, atomic_write_bytes, atomic_write_json, non_finite_at

__all__ = ["SimulationResult", "StrategyOutcome", "assemble_result", "write_results", "read_results", "BASELINE",
           "DEVICE_COUNTERS", "counters_from_stats"]

BASELINE = "dlora-all"
#: summary keys whose saving against the paired baseline run goes into each strategy's
#: ``savings_vs_baseline`` under the same key, as ``1 - value / baseline value`` (0.875 = 87.5% less,
#: negative = more; None where the baseline's value is 0 or missing). Per training step:
#: ``steady_step_bytes`` (the paper's per-step communication saving); every other key is a whole-job
#: (fleet) total or a completion-time percentile.
SAVING_KEYS = (
    "edge_flops", "energy_j", "radio_energy_j", "device_energy_j", "link_s", "bytes_up", "bytes_down", "bytes_total", "round_trips",
    "cloud_gpu_s", "money_usd", "provisioned_usd", "data_usd", "completion_p50_s", "completion_p95_s",
    "completion_p99_s", "steady_step_bytes",
)

#: completion-time percentiles of the summary. Completion is censored data: a device the horizon
#: cut off has a completion time above the horizon, unknown. A percentile is taken over every
#: feasible device with the unfinished ones as +inf, so it is exact while it falls on a finished
#: device, and ``None`` with ``censored[key] = True`` ("> horizon") when it falls on an unfinished one.
PERCENTILES = {"completion_p50_s": 50, "completion_p95_s": 95, "completion_p99_s": 99}

#: per-device figures of ``per_finished_device``: means over the devices that finished only, so a
#: device the horizon cut off mid-job never pulls a mean down. The cloud's bills (``money_usd``,
#: ``provisioned_usd``) are shared by the fleet: they are divided by the finished devices, the price of
#: one fine-tuned device, work spent on unfinished devices included.
FINISHED_MEANS = ("completion_s", "bytes_total", "energy_j", "radio_energy_j", "device_energy_j", "data_usd",
                  "link_s", "edge_flops")
SHARED_BILLS = ("money_usd", "provisioned_usd")


@dataclass
class StrategyOutcome:
    """What an engine hands over after one strategy's run (SimPy-free).

    ``counters`` holds one array per name of :data:`DEVICE_COUNTERS` (index = device id), with
    ``completion_s`` (NaN: not finished) and ``feasible`` (False: the strategy does not fit on
    the device, which then ran nothing). The ``step`` engine also keeps its per-device records
    in ``stats`` (tests read them); the ``segment`` engine has only the columns.
    """

    strategy: str
    devices: Any  # the fleet: a list of DeviceSpec, or the segment engine's Fleet columns
    counters: dict[str, np.ndarray]
    completion_s: np.ndarray
    feasible: np.ndarray
    schedule: Any
    pool_busy_s: float
    pool_lost_s: float
    pool_batches: int
    pool_batched_requests: int
    usd_per_gpu_hour: float
    n_gpus: int
    end_s: float
    queue_delivered: int
    queue_duplicates: int
    queue_stale: int
    steps_applied: int
    memory_slots: int | None
    memory_peak_sessions: int
    session_bytes: float
    weight_bytes_per_gpu: float
    peak_link_flows: dict[str, int]
    timeline: list[tuple[int, str, float, float]]
    steady_active: int
    stats: list[Any] | None = None
    queue_applied: dict[tuple[int, int], int] | None = None


@dataclass(frozen=True)
class SimulationResult:
    """A whole paired run: resolved scenario, summary, device table and the sampled timeline.

    ``device_table`` is columnar (one row per device and strategy), so a million devices never
    become a million Python dicts; ``devices`` gives the rows as dicts for small fleets.
    """

    scenario: dict[str, Any]
    summary: dict[str, Any]
    device_table: pa.Table
    timeline: list[dict[str, Any]]

    @property
    def devices(self) -> list[dict[str, Any]]:
        """The device rows as dicts (small fleets, tests)."""
        return self.device_table.to_pylist()

    def strategy(self, name: str) -> dict[str, Any]:
        """The summary block of one strategy."""
        return self.summary["strategies"][name]


_DEVICE_FIELDS = (
    "steps_done", "completion_s", "edge_flops", "cloud_flops", "cloud_gpu_s",
    "up_sent_bytes", "up_received_bytes", "up_lost_bytes", "down_sent_bytes", "down_received_bytes",
    "down_lost_bytes", "round_trips", "kr_rounds", "kr_probes", "kr_rounds_redone", "kr_up_bytes", "kills", "revives", "disconnections",
    "session_drops", "reupload_bytes", "aborted_steps", "redone_steps", "lost_edge_flops", "lost_bytes",
    "lost_gpu_s", "offline_s", "wait_s", "link_s", "cloud_wait_s", "memory_wait_s", "recomputed_steps",
    "steady_steps", "steady_bytes",
)


#: per-device totals every engine reports (all but ``completion_s``, which is kept apart)
DEVICE_COUNTERS = tuple(name for name in _DEVICE_FIELDS if name != "completion_s")
_INT_FIELDS = {"device", "steps_done", "round_trips", "kr_rounds", "kr_probes", "kr_rounds_redone", "kills", "revives",
               "disconnections", "session_drops", "aborted_steps", "redone_steps", "steady_steps", "recomputed_steps"}


def counters_from_stats(stats: list[Any]) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The step engine's per-device records as columns: counters, completion (NaN), feasible."""
    feasible = np.array([s is not None for s in stats], dtype=bool)
    counters = {name: np.array([float(getattr(s, name)) if s is not None else 0.0 for s in stats])
                for name in DEVICE_COUNTERS}
    completion = np.array([s.completion_s if s is not None and s.completion_s is not None else np.nan
                           for s in stats], dtype=float)
    return counters, completion, feasible


def _fleet_columns(devices: Any) -> dict[str, np.ndarray]:
    """Index, group name, speed, RTT, energy and radio constants of every device."""
    if isinstance(devices, list):
        names = ("flops_per_s", "rtt_s", "joules_per_flop", "radio_up_w_per_mbps", "radio_down_w_per_mbps", "radio_active_w")
        out = {name: np.array([getattr(d, name) for d in devices], dtype=float) for name in names}
        out["device"] = np.array([d.index for d in devices], dtype=np.int64)
        out["group"] = np.array([d.group for d in devices], dtype=object)
        return out
    return {
        "device": np.arange(len(devices), dtype=np.int64),
        "group": np.asarray(devices.group_names, dtype=object)[devices.group] if len(devices) else np.zeros(0, object),
        "flops_per_s": devices.flops_per_s, "rtt_s": devices.rtt_s, "joules_per_flop": devices.joules_per_flop,
        "radio_up_w_per_mbps": devices.radio_up_w_per_mbps, "radio_down_w_per_mbps": devices.radio_down_w_per_mbps,
        "radio_active_w": devices.radio_active_w,
    }


def _data_prices(devices: Any, usd_per_gb: dict[str, float]) -> np.ndarray:
    """Each device's price of mobile data, from its group's link."""
    if isinstance(devices, list):
        return np.array([usd_per_gb[d.group] for d in devices], dtype=float)
    per_group = np.array([usd_per_gb[name] for name in devices.group_names], dtype=float)
    return per_group[devices.group] if len(devices) else np.zeros(0)


def _device_columns(outcome: StrategyOutcome, usd_per_gb: dict[str, float]) -> dict[str, np.ndarray]:
    """One column per device-table field (NaN where a device is infeasible).

    ``usd_per_gb``: per fleet group, its link's price of mobile data.
    """
    fleet = _fleet_columns(outcome.devices)
    c, ok = outcome.counters, outcome.feasible
    compute_j = c["edge_flops"] * fleet["joules_per_flop"]
    radio_j = cost.radio_energy_j(c["up_sent_bytes"], c["down_sent_bytes"], c["link_s"], fleet["radio_up_w_per_mbps"],
                                  fleet["radio_down_w_per_mbps"], fleet["radio_active_w"])
    cols: dict[str, np.ndarray] = {
        "device": fleet["device"], "group": fleet["group"], "flops_per_s": fleet["flops_per_s"],
        "rtt_s": fleet["rtt_s"], "feasible": ok,
    }
    cols.update({name: c[name] for name in DEVICE_COUNTERS})
    cols["completion_s"] = outcome.completion_s
    cols.update(finished=np.isfinite(outcome.completion_s) & ok, energy_j=compute_j, radio_energy_j=radio_j,
                device_energy_j=compute_j + radio_j, money_usd=cost.gpu_usd(c["cloud_gpu_s"], outcome.usd_per_gpu_hour),
                bytes_up=c["up_sent_bytes"], bytes_down=c["down_sent_bytes"],
                data_usd=cost.data_usd(c["up_sent_bytes"] + c["down_sent_bytes"],
                                       _data_prices(outcome.devices, usd_per_gb)))
    return cols


def _device_table(outcome: StrategyOutcome, cols: dict[str, np.ndarray]) -> pa.Table:
    schema = _device_schema()
    ok = outcome.feasible
    n = ok.shape[0]
    arrays = []
    for field in schema:
        name = field.name
        if name == "strategy":
            arrays.append(pa.array([outcome.strategy] * n, type=pa.string()))
            continue
        values = cols[name]
        always = name in ("device", "group", "flops_per_s", "rtt_s", "feasible")
        mask = None if always else ~ok
        if name == "completion_s":
            mask = ~(ok & np.isfinite(values))
        if field.type == pa.int64() and name != "device":
            values = np.rint(values).astype(np.int64)
        arrays.append(pa.array(values, type=field.type, mask=mask))
    return pa.Table.from_arrays(arrays, schema=schema)


def _percentile(values: np.ndarray, q: float) -> float | None:
    """q-th percentile (numpy's linear rule) with unfinished devices as +inf; None when censored.

    The linear rule interpolates between the two devices around the quantile's position; when the
    upper one is unfinished the value is only known to exceed the horizon, so it is censored. With
    exactly half a fleet finished the median is therefore censored, not the last finisher's time
    (which would make a strategy that strands half its devices look fast).
    """
    if values.size == 0:
        return None
    ordered = np.sort(values)
    position = (ordered.size - 1) * q / 100.0
    low, high = int(math.floor(position)), int(math.ceil(position))
    if not math.isfinite(ordered[high]):
        return None
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _finished_means(cols: dict[str, np.ndarray], bills: dict[str, float]) -> dict[str, float | None]:
    """``per_finished_device``: :data:`FINISHED_MEANS` over finished devices, bills per finished device."""
    done = cols["finished"]
    n = int(done.sum())
    out: dict[str, float | None] = {}
    for key in FINISHED_MEANS:
        values = cols["bytes_up"] + cols["bytes_down"] if key == "bytes_total" else cols[key]
        out[key] = float(np.mean(values[done])) if n else None
    out.update({key: (value / n if n else None) for key, value in bills.items()})
    return out


def _summarise(outcome: StrategyOutcome, cols: dict[str, np.ndarray], horizon_s: float) -> dict[str, Any]:
    ok = outcome.feasible
    completion = np.where(cols["finished"], cols["completion_s"], np.inf)[ok]

    def total(key: str) -> float:
        return float(np.sum(cols[key][ok]))

    steady_steps = total("steady_steps")
    finite = completion[np.isfinite(completion)]
    n_finished = int(finite.size)
    makespan = float(finite.max()) if n_finished else None
    # The pool is rented until the last device finishes (or the horizon, if some never do).
    rented_s = (makespan or 0.0) if n_finished == completion.size else outcome.end_s
    percentiles = {key: _percentile(completion, q) for key, q in PERCENTILES.items()}
    provisioned_gpu_s = outcome.n_gpus * rented_s
    bills = {"money_usd": cost.gpu_usd(outcome.pool_busy_s, outcome.usd_per_gpu_hour),
             "provisioned_usd": cost.gpu_usd(provisioned_gpu_s, outcome.usd_per_gpu_hour)}
    return {
        "devices": int(ok.shape[0]),
        "feasible_devices": int(ok.sum()),
        "finished_devices": n_finished,
        "finished_fraction": n_finished / completion.size if completion.size else None,
        "horizon_s": float(horizon_s),
        **percentiles,
        "censored": {key: value is None and completion.size > 0 for key, value in percentiles.items()},
        "per_finished_device": _finished_means(cols, bills),
        "makespan_s": makespan,
        "steps_applied": outcome.steps_applied,
        "steps_done": int(round(total("steps_done"))),
        "duplicate_updates_dropped": outcome.queue_duplicates,
        "stale_updates_dropped": outcome.queue_stale,
        "edge_flops": total("edge_flops"),
        "energy_j": total("energy_j"),
        "radio_energy_j": total("radio_energy_j"),
        "device_energy_j": total("device_energy_j"),
        "link_s": total("link_s"),
        "bytes_up": total("bytes_up"),
        "bytes_down": total("bytes_down"),
        "bytes_total": total("bytes_up") + total("bytes_down"),
        "bytes_lost_in_flight": total("up_lost_bytes") + total("down_lost_bytes"),
        "round_trips": int(round(total("round_trips"))),
        "cloud_flops": total("cloud_flops"),
        "cloud_gpu_s": outcome.pool_busy_s,
        **bills,
        "provisioned_gpu_s": provisioned_gpu_s,
        "gpu_utilisation": outcome.pool_busy_s / provisioned_gpu_s if provisioned_gpu_s else None,
        "data_usd": total("data_usd"),
        "gpu_batches": outcome.pool_batches,
        "mean_batch_users": outcome.pool_batched_requests / outcome.pool_batches if outcome.pool_batches else 0.0,
        "kr_rounds": int(round(total("kr_rounds"))),
        "kr_rounds_scheduled": len(outcome.schedule.rounds) * n_finished,
        "kr_rounds_redone": int(round(total("kr_rounds_redone"))),
        "kr_probes": int(round(total("kr_probes"))),
        "kr_upload_bytes": total("kr_up_bytes"),
        "kills": int(round(total("kills"))),
        "revives": int(round(total("revives"))),
        "steady_active_modules": outcome.steady_active,
        "steady_step_bytes": total("steady_bytes") / steady_steps if steady_steps else None,
        "disconnections": int(round(total("disconnections"))),
        "session_drops": int(round(total("session_drops"))),
        "session_reupload_bytes": total("reupload_bytes"),
        "work_lost": {
            "aborted_steps": int(round(total("aborted_steps"))),
            "redone_steps": int(round(total("redone_steps"))),
            "edge_flops": total("lost_edge_flops"),
            "bytes": total("lost_bytes"),
            "gpu_s": total("lost_gpu_s"),
        },
        "offline_s": total("offline_s"),
        "wait_s": total("wait_s"),
        "cloud_wait_s": total("cloud_wait_s"),
        "cloud_wait_per_step_s": total("cloud_wait_s") / total("steps_done") if total("steps_done") else None,
        "peak_flows_per_shared_link": dict(sorted(outcome.peak_link_flows.items())),
        "cloud_memory": {
            "session_bytes": outcome.session_bytes,
            "weight_bytes_per_gpu": outcome.weight_bytes_per_gpu,
            "session_slots": outcome.memory_slots,
            "peak_sessions": outcome.memory_peak_sessions,
            "peak_bytes_per_gpu": (outcome.weight_bytes_per_gpu + outcome.session_bytes
                                   * math.ceil(outcome.memory_peak_sessions / outcome.n_gpus)
                                   if outcome.memory_slots is not None else 0.0),
            "memory_wait_s": total("memory_wait_s"),
            "recomputed_steps": int(round(total("recomputed_steps"))),
        },
    }


def _saving(value: Any, base: Any) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 1.0 - float(value) / float(base)


def assemble_result(scenario: Any, outcomes: list[StrategyOutcome]) -> SimulationResult:
    """Turn the engine's outcomes into the summary, device rows and timeline rows."""
    tables: list[pa.Table] = []
    timeline_rows: list[dict[str, Any]] = []
    strategies: dict[str, Any] = {}
    usd_per_gb = {group.name: float(group.link.data_usd_per_gb) for group in scenario.fleet.groups}
    for outcome in outcomes:
        cols = _device_columns(outcome, usd_per_gb)
        tables.append(_device_table(outcome, cols))
        strategies[outcome.strategy] = _summarise(outcome, cols, scenario.run.horizon_s)
        for device, kind, start, end in sorted(outcome.timeline, key=lambda e: (e[0], e[2], e[3], e[1])):
            timeline_rows.append({"strategy": outcome.strategy, "device": device, "kind": kind,
                                  "t_start": start, "t_end": end})
    base = strategies.get(BASELINE)
    spec = scenario.job.to_job_spec()
    for name, block in strategies.items():
        block["cloud_sees"] = list(cost.get_strategy(name).cloud_sees(spec))
        block["savings_vs_baseline"] = {
            key: (_saving(block[key], base[key]) if base is not None else None) for key in SAVING_KEYS
        }
    summary = {
        "scenario": scenario.name,
        "seed": scenario.run.seed,
        "granularity": scenario.run.granularity,
        "baseline": BASELINE,
        "exposures": list(cost.EXPOSURES),
        "strategies": strategies,
    }
    table = pa.concat_tables(tables) if tables else _device_schema().empty_table()
    return SimulationResult(scenario.to_resolved_dict(), summary, table, timeline_rows)


def _parquet_bytes(rows: list[dict[str, Any]] | pa.Table, schema: pa.Schema) -> bytes:
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


_TIMELINE_SCHEMA = [("strategy", pa.string()), ("device", pa.int64()), ("kind", pa.string()),
                    ("t_start", pa.float64()), ("t_end", pa.float64())]


def _device_schema() -> pa.Schema:
    ints = _INT_FIELDS
    strings = {"strategy", "group"}
    bools = {"feasible", "finished"}
    names = ["strategy", "device", "group", "flops_per_s", "rtt_s", "feasible", *_DEVICE_FIELDS,
             "finished", "energy_j", "radio_energy_j", "device_energy_j", "money_usd", "bytes_up", "bytes_down",
             "data_usd"]
    return pa.schema([(n, pa.string() if n in strings else pa.bool_() if n in bools
                       else pa.int64() if n in ints else pa.float64()) for n in names])


def write_results(result: SimulationResult, out_dir: str | Path) -> Path:
    """Write the results folder atomically (replacing a previous one whole).

    Returns:
        The folder path.

    Raises:
        InputError: a summary or scenario number is not finite (JSON cannot carry it, and it
            means an input overflowed), or ``out_dir`` may not be replaced
            (:func:`dlora_sim.io.replace_problem`); nothing is written then.
    """
    out_dir = Path(out_dir)
    for name, record in (("summary.json", result.summary), ("scenario.json", result.scenario)):
        where = non_finite_at(record)
        if where is not None:
            raise InputError(f"{out_dir}: not written: {name}: {where} is not a finite number "
                             "(an input too large or too small for float arithmetic)")
    with atomic_directory(out_dir) as tmp:
        atomic_write_json(tmp / "summary.json", result.summary)
        atomic_write_json(tmp / "scenario.json", result.scenario)
        atomic_write_bytes(tmp / "devices.parquet", _parquet_bytes(result.device_table, _device_schema()))
        atomic_write_bytes(tmp / "timeline.parquet", _parquet_bytes(result.timeline, pa.schema(_TIMELINE_SCHEMA)))
    return out_dir


def read_results(out_dir: str | Path) -> SimulationResult:
    """Read a results folder written by :func:`write_results`.

    Raises:
        InputError: a file is missing or unreadable (the message names it).
    """
    out_dir = Path(out_dir)
    try:
        summary = json.loads((out_dir / "summary.json").read_text())
        scenario = json.loads((out_dir / "scenario.json").read_text())
        devices = pq.read_table(out_dir / "devices.parquet")
        timeline = pq.read_table(out_dir / "timeline.parquet").to_pylist()
    except (OSError, ValueError, pa.ArrowException) as error:
        raise InputError(f"{out_dir}: not a readable results folder ({error})") from None
    return SimulationResult(scenario, summary, devices, timeline)
