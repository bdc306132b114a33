"""Files a scenario points at: the profile, availability traces and a GraphML topology.

Each is read once per file version (path, size, mtime) and cached, because a sweep validates
the same scenario hundreds of times. Every reader raises ``ValueError`` with a one-line reason;
the scenario loader prefixes the scenario file and the field.
"""

from __future__ import annotations

import csv
import io
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import networkx as nx

from dlora_sim.errors import InputError
from dlora_sim.scenario._base import MAX_BITS_PER_SECOND, MAX_SECONDS, MIN_BITS_PER_SECOND

CLOUD_KIND = "cloud"


class FieldError(ValueError):
    """A cross-field problem raised from a model validator, naming the field it concerns.

    ``field`` is a dotted path relative to the model that raised it; the loader appends it to
    the location pydantic reports, so the user sees ``job.budget`` rather than ``job``.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


def _version(path: Path) -> tuple[str, int, int]:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"file not found: {path}") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    return str(path), stat.st_size, stat.st_mtime_ns


# ------------------------------------------------------------------------------------ profile


def load_profile_cached(path: Path) -> Any:
    """The :class:`dlora_sim.profile.Profile` at ``path``; ValueError if missing or invalid."""
    return _load_profile(*_version(path))


@lru_cache(maxsize=64)
def _load_profile(path: str, _size: int, _mtime_ns: int) -> Any:
    from dlora_sim.profile import load_profile  # the profile schema owns its own validation

    try:
        return load_profile(path)
    except InputError as error:
        raise ValueError(str(error)) from None


def steps_to_accuracy(profile_path: Path, target: float) -> int:
    """First evaluated step whose recorded accuracy reaches ``target``.

    Raises:
        ValueError: when the profile never reaches it (naming the best it reached).
    """
    profile = load_profile_cached(profile_path)
    evals = sorted((int(e.step), float(e.accuracy)) for e in profile.traces.eval)
    for step, accuracy in evals:
        if accuracy >= target and step > 0:
            return step
    best = max((accuracy for _, accuracy in evals), default=float("nan"))
    raise FieldError(
        "target_accuracy",
        f"{target} is never reached in profile {profile_path.name} (best recorded: {best:.4f})",
    )


# ------------------------------------------------------------------------------- model config


#: a Hugging Face config.json is a few kilobytes; a file far beyond it is not one
MAX_MODEL_CONFIG_BYTES = 1_000_000


def load_model_config_cached(path: Path) -> Any:
    """The cost model's ``ModelShape`` of a Hugging Face ``config.json`` (shapes only).

    Raises:
        ValueError: one line naming the file and the key.
    """
    return _load_model_config(*_version(path))


@lru_cache(maxsize=64)
def _load_model_config(path: str, size: int, _mtime_ns: int) -> Any:
    import json

    from dlora_sim.cost.models import shape_from_hf_config

    if size > MAX_MODEL_CONFIG_BYTES:
        raise ValueError(f"{path}: {size:,} bytes is too big for a config.json (at most {MAX_MODEL_CONFIG_BYTES:,})")
    try:
        config = json.loads(_read_utf8(path))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not JSON: {error}") from None
    except RecursionError:
        raise ValueError(f"{path}: not JSON: nested too deeply") from None
    name = Path(path).name.removesuffix(".json").removesuffix(".config")
    try:
        return shape_from_hf_config(config, name, path)
    except InputError as error:
        raise ValueError(str(error)) from None


# ------------------------------------------------------------------------------------ traces


def load_trace_cached(path: Path) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Per trace device (sorted ids), its sorted online intervals ``(start_s, end_s)``."""
    return _load_trace(*_version(path))


@lru_cache(maxsize=64)
def _load_trace(path: str, _size: int, _mtime_ns: int) -> tuple[tuple[tuple[float, float], ...], ...]:
    per_device = _read_trace_rows(path, _read_utf8(path))
    if not per_device:
        raise ValueError(f"{path}: no intervals")
    traces = []
    for device in sorted(per_device, key=_device_sort_key):
        intervals = sorted(per_device[device])
        for (_, end_s), (start_s, _) in zip(intervals, intervals[1:]):
            if start_s < end_s:
                raise ValueError(f"{path}: device {device}: online intervals overlap at {start_s} s")
        traces.append(tuple(intervals))
    return tuple(traces)


def _read_utf8(path: str) -> str:
    """The file's text; ValueError naming the file (and, for bad bytes, their line)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte {data[error.start]:#04x})") from None


def _read_trace_rows(path: str, text: str) -> dict[str, list[tuple[float, float]]]:
    """Online intervals per trace device id, in file order; ValueError naming the line."""
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            columns = set(reader.fieldnames or ())
            if not {"start_s", "end_s"} <= columns:
                raise ValueError(f"{path}: needs a header with columns start_s,end_s (and optionally device)")
            extra = columns - {"start_s", "end_s", "device"}
            if extra:
                raise ValueError(f"{path}: unknown column(s) {sorted(extra)}; allowed: device,start_s,end_s")
            per_device: dict[str, list[tuple[float, float]]] = {}
            for row in reader:
                device, interval = _trace_row(row, "device" in columns, f"{path}: line {reader.line_num}")
                per_device.setdefault(device, []).append(interval)
        except csv.Error as error:  # e.g. a field larger than the csv module's limit
            raise ValueError(f"{path}: line {reader.line_num}: not readable CSV ({error})") from None
    return per_device


def _trace_row(row: dict[str, Any], has_device: bool, where: str) -> tuple[str, tuple[float, float]]:
    try:
        start_s, end_s = float(row["start_s"]), float(row["end_s"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: start_s and end_s must be numbers") from None
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or not 0 <= start_s < end_s:
        raise ValueError(f"{where}: need 0 <= start_s < end_s, got {start_s}, {end_s}")
    device = (row.get("device") or "").strip() if has_device else "*"
    if not device:
        raise ValueError(f"{where}: empty device id")
    return device, (start_s, end_s)


def _device_sort_key(device: str) -> tuple[int, int | str]:
    """Numeric ids in numeric order, then others alphabetically (so 2 < 10)."""
    return (0, int(device)) if device.isdigit() else (1, device)


# ----------------------------------------------------------------------------------- GraphML

#: edge attribute -> allowed range, the same as the scenario's own bandwidths and durations
_EDGE_RANGES = {"capacity_bps": (MIN_BITS_PER_SECOND, MAX_BITS_PER_SECOND), "latency_s": (0.0, MAX_SECONDS)}


def load_graphml_cached(path: Path) -> nx.Graph:
    """The validated, undirected topology graph in ``path`` (a shared object: do not mutate)."""
    return _load_graphml(*_version(path))


@lru_cache(maxsize=16)
def _load_graphml(path: str, _size: int, _mtime_ns: int) -> nx.Graph:
    try:
        raw = nx.read_graphml(path)
    except Exception as error:  # ParseError, NetworkXError, KeyError: all mean "not GraphML we read"
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path}: not readable GraphML: {reason}") from None
    graph = nx.Graph(raw) if raw.is_directed() or raw.is_multigraph() else raw
    clouds = [node for node, kind in graph.nodes(data="kind") if kind == CLOUD_KIND]
    if len(clouds) != 1:
        raise ValueError(f"{path}: needs exactly one node with kind='cloud', found {len(clouds)}")
    for u, v, data in graph.edges(data=True):
        for key, (lowest, highest) in _EDGE_RANGES.items():
            value = data.get(key)
            try:
                value = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"{path}: edge {u}-{v}: missing or non-numeric {key}") from None
            if not lowest <= value <= highest:  # also refuses NaN
                raise ValueError(f"{path}: edge {u}-{v}: {key} must be in [{lowest:g}, {highest:g}], got {value}")
            data[key] = value
    graph.graph["cloud"] = clouds[0]
    graph.graph["reaches_cloud"] = frozenset(nx.node_connected_component(graph, clouds[0]))
    return graph


def graphml_reach_problem(graph: nx.Graph, access_node: str) -> str | None:
    """Why ``access_node`` cannot serve as a group's attachment point, or None if it can.

    Reachability is read from the cloud's component, found once per file, so checking every
    group costs no search of its own.
    """
    if access_node not in graph:
        nodes = sorted(str(n) for n in graph.nodes if graph.nodes[n].get("kind") != CLOUD_KIND)
        shown = ", ".join(nodes[:20]) + (f", ... ({len(nodes)} nodes)" if len(nodes) > 20 else "")
        return f"node {access_node!r} is not in the GraphML topology; nodes: {shown}"
    if access_node not in graph.graph["reaches_cloud"]:
        return f"node {access_node!r} has no path to the cloud node {graph.graph['cloud']!r}"
    return None
