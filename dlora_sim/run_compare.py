"""Compare results folders of ``dlora-sim run``: every summary number, run by run, against the first.

A planner asks "what changes if the exchange is weights instead of activations, or the fleet is
on 5G instead of LTE": two runs of the same strategies that differ in a few scenario fields.
This module reads the folders (refusing anything that is not a results folder dlora-sim wrote,
in one line), flattens each strategy's ``summary.json`` block to dotted numeric fields with the
sweep table's own reader (so a field added to the summary later appears here without a change),
and states each value's difference from the first run. It also lists the scenario fields in which
the runs differ, since that is what the comparison is about. The figures live in
:mod:`dlora_sim.report.compare`; this module holds only plain data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlora_sim.errors import InputError
from dlora_sim.io import RESULTS_MARKER, is_results_folder
from dlora_sim.report.data import ScenarioRecord, SummaryRecord, read_json
from dlora_sim.sweep_table import strategy_metrics

__all__ = ["HEADLINE", "ComparedRun", "MetricRow", "RunComparison", "load_compared_run", "compare_runs",
           "comparison_json", "relative_change"]

#: summary fields a planner reads first, in this order (shown on the page and at the top of each
#: table); fields a run lacks are skipped, every other numeric field follows in name order.
HEADLINE: tuple[str, ...] = (
    "finished_fraction", "completion_p50_s", "completion_p95_s", "makespan_s", "bytes_total",
    "device_energy_j", "radio_energy_j", "money_usd", "provisioned_usd", "mobile_data_usd",
)


@dataclass(frozen=True)
class ComparedRun:
    """One results folder as the comparison reads it."""

    folder: Path
    label: str
    scenario_name: str
    metrics: dict[str, dict[str, float | bool]]  # strategy -> dotted field -> value (flags stay bool)
    scenario: dict[str, Any]


@dataclass(frozen=True)
class MetricRow:
    """One summary field of one strategy across the runs (None where a run lacks it)."""

    strategy: str
    field: str
    values: tuple[float | bool | None, ...]
    relative: tuple[float | None, ...]  # (value − first) / |first|; None where undefined

    @property
    def differs(self) -> bool:
        """True when some run's value is not the first run's (a missing value counts as different)."""
        return any(v != self.values[0] for v in self.values[1:])


@dataclass(frozen=True)
class RunComparison:
    """Everything ``dlora-sim compare`` prints and draws."""

    runs: tuple[ComparedRun, ...]
    strategies: tuple[str, ...]
    rows: tuple[MetricRow, ...]
    scenario_differences: dict[str, tuple[str | None, ...]]  # dotted field -> value per run (JSON text)

    def rows_of(self, strategy: str) -> list[MetricRow]:
        return [r for r in self.rows if r.strategy == strategy]


def load_compared_run(folder: str | Path) -> ComparedRun:
    """Read one results folder, refusing what ``dlora-sim run`` did not write.

    Raises:
        InputError: one line naming the folder or file: no such folder, no results marker (so it
            is not a results folder dlora-sim wrote, e.g. a sweep folder or a copy of its files),
            a ``summary.json`` or ``scenario.json`` that is missing or fails its schema.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: results folder not found")
    if not is_results_folder(folder):
        raise InputError(f"{folder}: not a results folder of `dlora-sim run` (no {RESULTS_MARKER} marker)")
    if (folder / "sweep.parquet").is_file() or not (folder / "summary.json").exists():
        raise InputError(f"{folder}: not a results folder of `dlora-sim run` (no summary.json; "
                         "for a sweep, compare its points/<id> folders)")
    summary = read_json(folder / "summary.json", SummaryRecord)
    scenario = read_json(folder / "scenario.json", ScenarioRecord)
    metrics = strategy_metrics(summary)
    for values in metrics.values():
        # the finished fraction beside every per-device figure (issue 16), unless the summary has it
        if "finished_fraction" not in values and values.get("devices"):
            values["finished_fraction"] = values.get("finished_devices", math.nan) / values["devices"]
    return ComparedRun(folder, folder.name, str(scenario.get("name", folder.name)), metrics, scenario)


def relative_change(value: float | bool | None, first: float | bool | None) -> float | None:
    """(value − first) / |first|: 0 for two zeros, None when either is missing or first alone is 0.

    A flag (true/false, e.g. ``censored.completion_p50_s``) has no relative size: 0 when it is
    the same, None when it changed.
    """
    if value is None or first is None or math.isnan(value) or math.isnan(first):
        return None
    if isinstance(value, bool) or isinstance(first, bool):
        return 0.0 if value == first else None
    if first == 0:
        return 0.0 if value == 0 else None
    return (value - first) / abs(first)


def _flat_leaves(obj: Any, prefix: str = "") -> dict[str, str]:
    """Every leaf of a nested record as dotted key -> canonical JSON text.

    List items are numbered as ``--set`` numbers them (``fleet.groups.0.link.up_bps``), so a
    difference names the one field a user would change; lists of plain values stay whole.
    """
    items: Any = None
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, list) and any(isinstance(v, (Mapping, list)) for v in obj):
        items = enumerate(obj)
    if items is None:
        return {prefix[:-1]: json.dumps(obj, sort_keys=True)}
    out: dict[str, str] = {}
    for key, value in items:
        out.update(_flat_leaves(value, f"{prefix}{key}."))
    return out


def _scenario_differences(runs: Sequence[ComparedRun]) -> dict[str, tuple[str | None, ...]]:
    leaves = [_flat_leaves(run.scenario) for run in runs]
    names = sorted({k for leaf in leaves for k in leaf})
    out = {}
    for name in names:
        values = tuple(leaf.get(name) for leaf in leaves)
        if len(set(values)) > 1:
            out[name] = values
    return out


def _field_order(name: str) -> tuple[int, str]:
    return (HEADLINE.index(name) if name in HEADLINE else len(HEADLINE), name)


def compare_runs(folders: Sequence[str | Path]) -> RunComparison:
    """Compare two or more results folders; the first is the reference for every difference.

    Strategies appear in the order the runs first list them; a strategy missing from a run has
    None there. Labels are the folder names, or the paths as given when two names clash.

    Raises:
        InputError: fewer than two folders, or one of them is refused by :func:`load_compared_run`.
    """
    if len(folders) < 2:
        raise InputError("compare: give at least two results folders (RUN_A RUN_B ...)")
    runs = [load_compared_run(f) for f in folders]
    if len({r.label for r in runs}) < len(runs):
        runs = [ComparedRun(r.folder, str(f), r.scenario_name, r.metrics, r.scenario) for r, f in zip(runs, folders)]
    strategies = tuple(dict.fromkeys(s for r in runs for s in r.metrics))
    rows = []
    for strategy in strategies:
        blocks = [r.metrics.get(strategy, {}) for r in runs]
        for name in sorted({k for b in blocks for k in b}, key=_field_order):
            values = tuple(b.get(name) for b in blocks)
            rows.append(MetricRow(strategy, name, values, tuple(relative_change(v, values[0]) for v in values)))
    return RunComparison(tuple(runs), strategies, tuple(rows), _scenario_differences(runs))


def _finite(value: float | bool | None) -> float | bool | None:
    return None if value is None or math.isnan(value) else value


def comparison_json(comparison: RunComparison) -> dict[str, Any]:
    """The comparison as plain JSON (``--json``): runs, scenario differences, every field."""
    return {
        "runs": [{"label": r.label, "folder": str(r.folder), "scenario": r.scenario_name} for r in comparison.runs],
        "reference": comparison.runs[0].label,
        "scenario_differences": {k: [None if v is None else json.loads(v) for v in values]
                                 for k, values in comparison.scenario_differences.items()},
        "strategies": {s: {r.field: {"values": [_finite(v) for v in r.values], "relative": list(r.relative)}
                           for r in comparison.rows_of(s)} for s in comparison.strategies},
    }
