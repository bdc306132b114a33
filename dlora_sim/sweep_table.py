"""The sweep table: one row per (point, strategy), rebuilt from the point folders every time.

Rebuilding instead of appending is what makes a sweep resumable without bookkeeping: whatever
points have their completion marker are in the table, each exactly once, whichever run (or
which crashed run) produced them. Accuracy is not simulated; it is looked up in the real
training profiles trained alike that match a point's KR arm and budget fraction B/N
(:mod:`dlora_sim.study.pooling`), and each row names the files used and those excluded.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from dlora_sim.io import atomic_write_bytes, dig
from dlora_sim.study.pooling import AccuracyMatch, ProfileFacts, index_profiles, match_accuracy, profile_facts

TABLE = "sweep.parquet"

def _flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float | bool]:
    """Numeric and true/false leaves of a nested mapping as dotted keys (strings, lists and nulls
    are dropped). The flags keep ``censored.completion_p50_s``: a censored percentile is null, and
    its row must still say it is "> horizon" rather than missing."""
    out: dict[str, float | bool] = {}
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            out.update(_flatten_numbers(value, f"{prefix}{key}."))
    elif isinstance(obj, bool):
        out[prefix[:-1]] = obj
    elif isinstance(obj, (int, float)):
        out[prefix[:-1]] = float(obj)
    return out


def strategy_metrics(summary: Mapping[str, Any]) -> dict[str, dict[str, float | bool]]:
    """Per strategy, its numeric (and true/false) summary fields flattened to dotted names."""
    strategies = summary.get("strategies", {})
    if isinstance(strategies, list):  # tolerate a list of {"strategy": name, ...}
        strategies = {s.get("strategy", s.get("name")): s for s in strategies}
    return {str(name): _flatten_numbers(values) for name, values in strategies.items()}


def point_record(pid: str, overrides: Mapping[str, Any], results_dir: Path,
                 wall_s: float) -> dict[str, Any]:
    """The small record of one finished point, read back from its results folder."""
    summary = json.loads((results_dir / "summary.json").read_text(encoding="utf-8"))
    scenario = json.loads((results_dir / "scenario.json").read_text(encoding="utf-8"))
    groups = dig(scenario, "fleet.groups") or []
    return {
        "point_id": pid,
        "overrides": dict(overrides),
        "wall_s": wall_s,
        "scenario": {
            "name": scenario.get("name"),
            "budget": dig(scenario, "job.budget"),
            "module_count": dig(scenario, "job.module_count"),
            "profile": dig(scenario, "job.profile"),
            "seed": dig(scenario, "run.seed"),
            "devices": sum(int(g.get("count", 0)) for g in groups if isinstance(g, Mapping)),
        },
        "strategies": strategy_metrics(summary),
    }


# ----------------------------------------------------------------------------- the table


def _column_value(value: Any) -> Any:
    """Scalars stay; tables and lists (inline links, target lists) become canonical JSON."""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _names(paths: tuple[str, ...]) -> str:
    """Profile file names, comma-separated: a table cell saying which files a figure came from."""
    return ", ".join(Path(p).name for p in paths)


def table_rows(spec: Any, out_dir: Path) -> list[dict[str, Any]]:
    """One row per finished point and strategy, in the spec's point order."""
    from dlora_sim.sweep import read_marker

    rows: list[dict[str, Any]] = []
    index_cache: dict[str, list[ProfileFacts]] = {}
    for point in spec.points:
        record = read_marker(out_dir / "points" / point.point_id)
        if record is None:  # not done, or its marker is damaged: a rerun recomputes it
            continue
        facts = record["scenario"]
        reference, index = None, []
        if facts.get("profile"):
            ref_path = Path(facts["profile"])
            folder = spec.profiles_dir or ref_path.parent
            if str(folder) not in index_cache:
                index_cache[str(folder)] = index_profiles(folder) if folder.is_dir() else []
            index = index_cache[str(folder)]
            reference = next((f for f in index if Path(f.path) == ref_path), None)
            if reference is None and ref_path.is_file():
                reference = profile_facts(ref_path)
        for strategy, metrics in record["strategies"].items():
            row: dict[str, Any] = {"point_id": point.point_id, "label": point.label,
                                   "strategy": strategy}
            row.update({k: _column_value(v) for k, v in point.all_overrides.items()})
            row.update(metrics)  # first, so the point's own facts below win on a name clash
            row.update({"budget": facts.get("budget"), "module_count": facts.get("module_count"),
                        "devices": facts.get("devices"), "seed": facts.get("seed"),
                        "point_wall_s": record.get("wall_s")})
            match = AccuracyMatch(math.nan, (), (), math.nan)
            if reference is not None and facts.get("budget") and facts.get("module_count"):
                match = match_accuracy(strategy, facts["budget"], facts["module_count"], reference, index)
            row.update({"accuracy": match.accuracy, "accuracy_profiles": match.n,
                        "accuracy_budget_fraction": match.budget_fraction,
                        "accuracy_task": reference.task if reference else None,
                        "accuracy_used": _names(match.used), "accuracy_excluded": _names(match.excluded)})
            rows.append(row)
    return rows


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Columns in first-seen order; a missing value is null; mixed-type columns become text."""
    names = list(dict.fromkeys(k for r in rows for k in r))
    arrays = {}
    for name in names:
        values = [r.get(name) for r in rows]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[name] = pa.array([None if v is None else str(v) for v in values])
    return pa.table(arrays) if names else pa.table({"point_id": pa.array([], pa.string())})


def build_table(spec: Any, out_dir: Path) -> Path:
    """Rebuild ``sweep.parquet`` from the point folders and write it atomically."""
    table = rows_to_table(table_rows(spec, out_dir))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    path = out_dir / TABLE
    atomic_write_bytes(path, sink.getvalue())
    return path
