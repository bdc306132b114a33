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

__all__ = ["SimulationResult", "StrategyOutcome", "assemble_result", "write_results", "read_results", "BASELINE"]

BASELINE = "dlora-all"
#: summary keys whose saving against the paired baseline run goes into each strategy's
#: ``savings_vs_baseline`` under the same key, as ``1 - value / baseline value`` (0.875 = 87.5% less,
#: negative = more; None where the baseline's value is 0 or missing). Per training step:
#: ``steady_step_bytes`` (the paper's per-step communication saving); every other key is a whole-job
#: (fleet) total or a completion-time percentile.
SAVING_KEYS = (
    "edge_flops", "energy_j", "radio_energy_j", "device_energy_j", "link_s", "bytes_up", "bytes_down", "bytes_total", "round_trips",
    "cloud_gpu_s", "money_usd", "completion_p50_s", "completion_p95_s", "completion_p99_s",
    "steady_step_bytes",
)


@dataclass
class StrategyOutcome:
    """What the engine hands over after one strategy's run (SimPy-free)."""

    strategy: str
    devices: list[Any]
    stats: list[Any]
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
    memory_slots: int | None
    memory_peak_sessions: int
    session_bytes: float
    weight_bytes_per_gpu: float
    queue_applied: dict[tuple[int, int], int]
    peak_link_flows: dict[str, int]
    timeline: list[tuple[int, str, float, float]]
    steady_active: int


@dataclass(frozen=True)
class SimulationResult:
    """A whole paired run: resolved scenario, summary, device rows and the sampled timeline."""

    scenario: dict[str, Any]
    summary: dict[str, Any]
    devices: list[dict[str, Any]]
    timeline: list[dict[str, Any]]

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


def _device_rows(outcome: StrategyOutcome) -> list[dict[str, Any]]:
    rows = []
    usd_per_s = outcome.usd_per_gpu_hour / 3600.0
    for device, stats in zip(outcome.devices, outcome.stats):
        row: dict[str, Any] = {
            "strategy": outcome.strategy,
            "device": device.index,
            "group": device.group,
            "flops_per_s": device.flops_per_s,
            "rtt_s": device.rtt_s,
            "feasible": stats is not None,
        }
        if stats is None:
            row.update({name: None for name in _DEVICE_FIELDS})
            row.update(finished=False, energy_j=None, radio_energy_j=None, device_energy_j=None,
                       money_usd=None, bytes_up=None, bytes_down=None)
        else:
            row.update({name: getattr(stats, name) for name in _DEVICE_FIELDS})
            compute_j = stats.edge_flops * device.joules_per_flop
            radio_j = (device.radio_up_w_per_mbps * 8e-6 * stats.up_sent_bytes
                       + device.radio_down_w_per_mbps * 8e-6 * stats.down_sent_bytes
                       + device.radio_active_w * stats.link_s)
            row.update(
                finished=stats.completion_s is not None,
                energy_j=compute_j,
                radio_energy_j=radio_j,
                device_energy_j=compute_j + radio_j,
                money_usd=stats.cloud_gpu_s * usd_per_s,
                bytes_up=stats.up_sent_bytes,
                bytes_down=stats.down_sent_bytes,
            )
        rows.append(row)
    return rows


def _percentile(values: list[float], q: float) -> float | None:
    """q-th percentile with unfinished devices as +inf; None when it falls on one."""
    if not values:
        return None
    array = np.asarray(values, dtype=float)
    if np.isfinite(array).all():
        return float(np.percentile(array, q))
    value = float(np.percentile(array, q, method="inverted_cdf"))
    return value if math.isfinite(value) else None


def _summarise(outcome: StrategyOutcome, rows: list[dict[str, Any]]) -> dict[str, Any]:
    live = [r for r in rows if r["feasible"]]
    completion = [r["completion_s"] if r["finished"] else math.inf for r in live]

    def total(key: str) -> float:
        return float(sum(r[key] for r in live))

    steady_steps = total("steady_steps")
    usd_per_s = outcome.usd_per_gpu_hour / 3600.0
    finite = [c for c in completion if math.isfinite(c)]
    # The pool is rented until the last device finishes (or the horizon, if some never do).
    rented_s = max(finite, default=0.0) if len(finite) == len(completion) else outcome.end_s
    return {
        "devices": len(rows),
        "feasible_devices": len(live),
        "finished_devices": sum(1 for r in live if r["finished"]),
        "completion_p50_s": _percentile(completion, 50),
        "completion_p95_s": _percentile(completion, 95),
        "completion_p99_s": _percentile(completion, 99),
        "makespan_s": max(finite, default=None),
        "steps_applied": len(outcome.queue_applied),
        "steps_done": int(total("steps_done")),
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
        "round_trips": int(total("round_trips")),
        "cloud_flops": total("cloud_flops"),
        "cloud_gpu_s": outcome.pool_busy_s,
        "money_usd": outcome.pool_busy_s * usd_per_s,
        "provisioned_usd": outcome.n_gpus * rented_s * usd_per_s,
        "gpu_batches": outcome.pool_batches,
        "mean_batch_users": outcome.pool_batched_requests / outcome.pool_batches if outcome.pool_batches else 0.0,
        "kr_rounds": int(total("kr_rounds")),
        "kr_rounds_scheduled": len(outcome.schedule.rounds) * sum(1 for r in live if r["finished"]),
        "kr_rounds_redone": int(total("kr_rounds_redone")),
        "kr_probes": int(total("kr_probes")),
        "kr_upload_bytes": total("kr_up_bytes"),
        "kills": int(total("kills")),
        "revives": int(total("revives")),
        "steady_active_modules": outcome.steady_active,
        "steady_step_bytes": total("steady_bytes") / steady_steps if steady_steps else None,
        "disconnections": int(total("disconnections")),
        "session_drops": int(total("session_drops")),
        "session_reupload_bytes": total("reupload_bytes"),
        "work_lost": {
            "aborted_steps": int(total("aborted_steps")),
            "redone_steps": int(total("redone_steps")),
            "edge_flops": total("lost_edge_flops"),
            "bytes": total("lost_bytes"),
            "gpu_s": total("lost_gpu_s"),
        },
        "offline_s": total("offline_s"),
        "wait_s": total("wait_s"),
        "cloud_wait_s": total("cloud_wait_s"),
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
            "recomputed_steps": int(total("recomputed_steps")),
        },
    }


def _saving(value: Any, base: Any) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 1.0 - float(value) / float(base)


def assemble_result(scenario: Any, outcomes: list[StrategyOutcome]) -> SimulationResult:
    """Turn the engine's outcomes into the summary, device rows and timeline rows."""
    device_rows: list[dict[str, Any]] = []
    timeline_rows: list[dict[str, Any]] = []
    strategies: dict[str, Any] = {}
    for outcome in outcomes:
        rows = _device_rows(outcome)
        device_rows.extend(rows)
        strategies[outcome.strategy] = _summarise(outcome, rows)
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
    return SimulationResult(scenario.to_resolved_dict(), summary, device_rows, timeline_rows)


def _parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


_TIMELINE_SCHEMA = [("strategy", pa.string()), ("device", pa.int64()), ("kind", pa.string()),
                    ("t_start", pa.float64()), ("t_end", pa.float64())]


def _device_schema() -> pa.Schema:
    ints = {"device", "steps_done", "round_trips", "kr_rounds", "kr_probes", "kr_rounds_redone", "kills", "revives", "disconnections",
            "session_drops", "aborted_steps", "redone_steps", "steady_steps", "recomputed_steps"}
    strings = {"strategy", "group"}
    bools = {"feasible", "finished"}
    names = ["strategy", "device", "group", "flops_per_s", "rtt_s", "feasible", *_DEVICE_FIELDS,
             "finished", "energy_j", "radio_energy_j", "device_energy_j", "money_usd", "bytes_up", "bytes_down"]
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
        atomic_write_bytes(tmp / "devices.parquet", _parquet_bytes(result.devices, _device_schema()))
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
        devices = pq.read_table(out_dir / "devices.parquet").to_pylist()
        timeline = pq.read_table(out_dir / "timeline.parquet").to_pylist()
    except (OSError, ValueError, pa.ArrowException) as error:
        raise InputError(f"{out_dir}: not a readable results folder ({error})") from None
    return SimulationResult(scenario, summary, devices, timeline)
