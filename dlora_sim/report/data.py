"""Read a results folder (or a sweep folder) into the plain data the figure functions take.

The report never runs a simulation: it reads what ``dlora-sim run`` wrote (summary.json,
devices.parquet, timeline.parquet, scenario.json) and the profile the scenario names. Every
problem with those files is an :class:`InputError` naming the file, so the dashboard command
fails with one line instead of a traceback. Files may have been edited or damaged since they
were written, so what the figures read is checked first: the JSON records against the small
schemas below (the fields the report uses, of the right types; anything else passes through),
the Parquet tables against the columns and types they need.
"""

from __future__ import annotations

import json
import math
from xml.etree import ElementTree
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dlora_sim.errors import InputError, first_problem
from dlora_sim.io import MAX_DEPTH, dig, too_deep_at

RUN_FILES = ("summary.json", "scenario.json", "devices.parquet", "timeline.parquet")


# ------------------------------------------------------------ what the report reads, checked


class _Record(BaseModel):
    """A JSON record as the report reads it: the fields it uses, strictly typed; others kept."""

    model_config = ConfigDict(extra="allow", strict=True)


class _Named(_Record):
    name: str = "?"


class _Link(_Named):
    up_bps: float | None = None
    down_bps: float | None = None
    rtt_s: float | None = None


class _Group(_Record):
    name: str
    count: int | None = None
    access: str | None = None
    region: str = "region-0"
    device: _Named = _Named()
    link: _Link = _Link()


class _Fleet(_Record):
    groups: list[_Group] = []


class _Job(_Record):
    model: str | None = None
    peft: str | None = None
    rank: int | None = None
    targets: list[str] = []
    module_count: int | None = None
    budget: int | None = None
    total_steps: int | None = None
    batch: int | None = None
    seq_len: int | None = None
    profile: str | None = None


class _Network(_Record):
    graphml: str | None = None
    access_capacity_bps: float | None = None
    access_latency_s: float | None = None
    region_capacity_bps: float | None = None
    region_latency_s: float | None = None


class _Cloud(_Record):
    count: int | None = None
    gpu: str | None = None


class _Run(_Record):
    seed: int | None = None
    granularity: str | None = None


class ScenarioRecord(_Record):
    """``scenario.json`` as the dashboards read it."""

    name: str = "?"
    description: str = ""
    job: _Job = _Job()
    fleet: _Fleet = _Fleet()
    network: _Network = _Network()
    cloud: _Cloud = _Cloud()
    run: _Run = _Run()


class _StrategyBlock(_Record):
    work_lost: dict[str, float | None] | None = None
    cloud_sees: list[str] | None = None
    finished_devices: int | None = None
    feasible_devices: int | None = None
    horizon_s: float | None = None


class SummaryRecord(_Record):
    """``summary.json`` as the dashboards read it."""

    strategies: dict[str, _StrategyBlock] = Field(min_length=1)
    baseline: str = "dlora-all"
    exposures: list[str] | None = None


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)


def _is_flag(kind: pa.DataType) -> bool:
    return pa.types.is_boolean(kind) or pa.types.is_null(kind)


# Parquet column -> (check of its type, what the check wants, nulls allowed)
DEVICE_COLUMNS = {
    "strategy": (_is_text, "text", False), "device": (pa.types.is_integer, "integers", False),
    "feasible": (_is_flag, "booleans", True), "completion_s": (_is_number, "numbers", True),
}
TIMELINE_COLUMNS = {
    "strategy": (_is_text, "text", False), "device": (pa.types.is_integer, "integers", False),
    "kind": (_is_text, "text", False), "t_start": (_is_number, "numbers", False),
    "t_end": (_is_number, "numbers", False),
}


@dataclass(frozen=True)
class RunData:
    """One paired run as plain data."""

    folder: Path
    summary: dict[str, Any]
    scenario: dict[str, Any]
    devices: list[dict[str, Any]]
    timeline: list[dict[str, Any]]

    @property
    def baseline(self) -> str:
        return str(self.summary.get("baseline", "dlora-all"))

    @property
    def strategies(self) -> dict[str, dict[str, Any]]:
        return dict(self.summary.get("strategies", {}))


def read_json(path: Path, schema: type[BaseModel] | None = None) -> dict[str, Any]:
    """The JSON object in ``path``, checked against ``schema`` when given (its defaults filled).

    Raises:
        InputError: ``"<path>: <problem>"``, naming the field when the schema refuses one.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing") from None
    except (OSError, ValueError) as error:  # unreadable, not UTF-8, not JSON, a 5000-digit integer
        raise InputError(f"{path}: not readable JSON ({' '.join(str(error).split())})") from None
    except RecursionError:
        raise InputError(f"{path}: not readable JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object")
    where = too_deep_at(data)
    if where is not None:
        raise InputError(f"{path}: {where}: nested more than {MAX_DEPTH} levels deep")
    if schema is None:
        return data
    try:
        return schema.model_validate(data).model_dump()
    except ValidationError as error:
        raise InputError(f"{path}: {first_problem(error)}") from None


def _read_parquet(path: Path, columns: Mapping[str, tuple[Any, str, bool]]) -> list[dict[str, Any]]:
    """Rows of the Parquet file, once it has each of ``columns`` with the right type."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise InputError(f"{path}: missing") from None
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{path}: not a readable Parquet file ({error})") from None
    for name, (fits, wanted, nullable) in columns.items():
        if name not in table.column_names:
            raise InputError(f"{path}: column {name!r} is missing")
        column = table.column(name)
        if not fits(column.type):
            raise InputError(f"{path}: column {name!r} holds {column.type}, not {wanted}")
        if not nullable and column.null_count:
            raise InputError(f"{path}: column {name!r} has empty (null) cells")
    return table.to_pylist()


def load_run(folder: str | Path) -> RunData:
    """Read a results folder written by ``dlora-sim run``.

    Raises:
        InputError: the folder or one of its files is missing or unreadable (named in the message).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: results folder not found")
    missing = [name for name in RUN_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"{folder}: not a results folder of `dlora-sim run` "
                         f"(missing {', '.join(missing)})")
    return RunData(folder, read_json(folder / "summary.json", SummaryRecord),
                   read_json(folder / "scenario.json", ScenarioRecord),
                   _read_parquet(folder / "devices.parquet", DEVICE_COLUMNS),
                   _read_parquet(folder / "timeline.parquet", TIMELINE_COLUMNS))


def strategy_totals(run: RunData) -> dict[str, dict[str, float]]:
    """Per strategy the numeric top-level totals of summary.json (None becomes NaN)."""
    out: dict[str, dict[str, float]] = {}
    for name, block in run.strategies.items():
        values: dict[str, float] = {}
        for key, value in block.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, type(None))):
                continue
            values[key] = math.nan if value is None else float(value)
        for prefix, nested in (("lost_", "work_lost"), ("memory_", "cloud_memory")):
            for key, value in (block.get(nested) or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values[f"{prefix}{key}"] = float(value)
        out[name] = values
    return out


def completion_times(run: RunData) -> dict[str, list[float]]:
    """Per strategy, each feasible device's completion time in seconds (NaN = unfinished)."""
    out: dict[str, list[float]] = {}
    for row in run.devices:
        if row.get("feasible") is False:
            continue
        value = row.get("completion_s")
        out.setdefault(row["strategy"], []).append(math.nan if value is None else float(value))
    return out


def timeline_segments(run: RunData, max_devices: int) -> list[dict[str, Any]]:
    """Timeline rows renamed for the figure, limited to the first ``max_devices`` devices."""
    keep = sorted({row["device"] for row in run.timeline})[:max_devices]
    chosen = set(keep)
    return [{"strategy": r["strategy"], "device": r["device"], "state": r["kind"],
             "start_s": r["t_start"], "end_s": r["t_end"]}
            for r in run.timeline if r["device"] in chosen]


def topology_records(scenario: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Nodes and links of the run's network, rebuilt from the resolved scenario.

    Mirrors the simulator's topology (docs/simulator.md): the built-in tree access → region → cloud,
    or the scenario's GraphML file; each fleet group joins its access node by its own link.
    """
    net = scenario.get("network", {}) or {}
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, Any]] = []
    groups = dig(scenario, "fleet.groups", []) or []
    graphml = net.get("graphml")
    if graphml:
        try:
            graph = nx.read_graphml(graphml)
        except (OSError, nx.NetworkXError, ElementTree.ParseError, ValueError, KeyError) as error:
            raise InputError(f"{graphml}: network.graphml: cannot read ({error})") from None
        for node, data in graph.nodes(data=True):
            nodes[str(node)] = {"id": str(node), "kind": str(data.get("kind", "node")),
                                "label": str(data.get("label", node))}
        for u, v, data in graph.edges(data=True):
            edges.append({"source": str(u), "target": str(v), "capacity_bps": data.get("capacity_bps"),
                          "latency_s": data.get("latency_s"), "shared": True})
        access_of = {g["name"]: g.get("access") or g["name"] for g in groups}
    else:
        nodes["cloud"] = {"id": "cloud", "kind": "cloud", "label": "cloud"}
        access_of = {}
        for g in groups:
            access = f"access:{g.get('access') or g['name']}"
            region = f"region:{g.get('region', 'region-0')}"
            access_of[g["name"]] = access
            if region not in nodes:
                nodes[region] = {"id": region, "kind": "region", "label": g.get("region", "region-0")}
                edges.append({"source": region, "target": "cloud", "shared": True,
                              "capacity_bps": net.get("region_capacity_bps"),
                              "latency_s": net.get("region_latency_s")})
            if access not in nodes:
                nodes[access] = {"id": access, "kind": "access", "label": access.split(":", 1)[1]}
                edges.append({"source": access, "target": region, "shared": True,
                              "capacity_bps": net.get("access_capacity_bps"),
                              "latency_s": net.get("access_latency_s")})
    for g in groups:
        node = f"group:{g['name']}"
        device, link = g.get("device", {}) or {}, g.get("link", {}) or {}
        nodes[node] = {"id": node, "kind": "group", "label": g["name"],
                       "detail": f"{g.get('count')} × {device.get('name', 'device')} on "
                                 f"{link.get('name', 'link')}"}
        edges.append({"source": node, "target": access_of[g["name"]], "shared": False,
                      "up_bps": link.get("up_bps"), "down_bps": link.get("down_bps"),
                      "rtt_s": link.get("rtt_s")})
    return list(nodes.values()), edges
