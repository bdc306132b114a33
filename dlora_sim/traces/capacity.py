"""Device capacity traces: one row a device, what it computes, holds and moves.

Columns (CSV with a header, or Parquet with the same column names):

- ``device``: an id (text), unique in the file;
- compute, one of: ``flops_per_s`` (sustained training FLOP/s), or ``sample_s`` with
  ``ref_model`` and ``ref_seq_len`` — the measured time of one training sample of a reference
  model, converted through the cost model's FLOPs of that sample (so any model's step time
  follows from the device's speed, not from a fixed step time);
- ``memory_gb`` (GB, 10^9 bytes), ``up_mbps`` and ``down_mbps`` (Mbit/s, 10^6 bits/s).

Every problem is one ValueError naming the file, the row (CSV line or Parquet row) and the column.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dlora_sim.cost import JobSpec, PeftSpec, step_cost

REQUIRED = ("device", "memory_gb", "up_mbps", "down_mbps")
COMPUTE = ("flops_per_s", "sample_s", "ref_model", "ref_seq_len")
#: a trace bigger than this is refused before it is parsed
MAX_BYTES = 256 * 2**20
# the same physical bounds as a scenario's own device and link fields
_BOUNDS = {"flops_per_s": (1.0, 1e18), "sample_s": (1e-9, 1e9), "memory_gb": (1e-6, 1e6),
           "up_mbps": (1e-6, 1e9), "down_mbps": (1e-6, 1e9), "ref_seq_len": (1.0, 1e6)}


@dataclass(frozen=True)
class DeviceCapacity:
    """One device of a capacity trace, in the simulator's units."""

    device: str
    flops_per_s: float
    memory_bytes: float
    up_bps: float
    down_bps: float


def load_capacity(path: Path) -> tuple[DeviceCapacity, ...]:
    """The devices of a capacity trace, in file order (cached per file version).

    Raises:
        ValueError: the file is unreadable, too big, or a row breaks the format (named).
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    if stat.st_size > MAX_BYTES:
        raise ValueError(f"{path}: {stat.st_size:,} bytes, above the {MAX_BYTES:,} a capacity trace may have")
    return _load(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=16)
def _load(path: str, _size: int, _mtime_ns: int) -> tuple[DeviceCapacity, ...]:
    rows = _parquet_rows(path) if path.endswith(".parquet") else _csv_rows(path)
    devices, seen = [], set()
    for where, row in rows:
        device = _device(row, f"{path}: {where}")
        if device.device in seen:
            raise ValueError(f"{path}: {where}: device: {device.device!r} appears twice")
        seen.add(device.device)
        devices.append(device)
    if not devices:
        raise ValueError(f"{path}: no devices")
    return tuple(devices)


def _csv_rows(path: str):
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        _check_columns(path, reader.fieldnames or ())
        for row in reader:
            yield f"line {reader.line_num}", row
    except csv.Error as error:
        raise ValueError(f"{path}: line {reader.line_num}: not readable CSV ({error})") from None


def _parquet_rows(path: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"{path}: not a readable Parquet file ({error})") from None
    _check_columns(path, table.column_names)
    for index, row in enumerate(table.to_pylist()):
        yield f"row {index}", {k: ("" if v is None else str(v)) for k, v in row.items()}


def _check_columns(path: str, columns) -> None:
    columns = set(columns)
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; needs {', '.join(REQUIRED)} "
                         "and flops_per_s or sample_s, ref_model, ref_seq_len")
    unknown = sorted(columns - set(REQUIRED) - set(COMPUTE))
    if unknown:
        raise ValueError(f"{path}: unknown column(s) {', '.join(unknown)}; allowed: {', '.join((*REQUIRED, *COMPUTE))}")
    if "flops_per_s" not in columns and not {"sample_s", "ref_model", "ref_seq_len"} <= columns:
        raise ValueError(f"{path}: needs flops_per_s, or sample_s with ref_model and ref_seq_len")


def _number(row: dict[str, str], column: str, where: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column}: {text!r} is not a number") from None
    low, high = _BOUNDS[column]
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{where}: {column}: {value:g} is outside [{low:g}, {high:g}]")
    return value


def _device(row: dict[str, str], where: str) -> DeviceCapacity:
    device = (row.get("device") or "").strip()
    if not device:
        raise ValueError(f"{where}: device: empty id")
    if (row.get("flops_per_s") or "").strip():
        flops = _number(row, "flops_per_s", where)
    else:
        flops = _sample_flops(row, where) / _number(row, "sample_s", where)
    return DeviceCapacity(device, flops, 1e9 * _number(row, "memory_gb", where),
                          1e6 * _number(row, "up_mbps", where), 1e6 * _number(row, "down_mbps", where))


def _sample_flops(row: dict[str, str], where: str) -> float:
    """FLOPs of one training sample of the reference model: its whole step on one machine with
    LoRA on its default targets (the cost model's edge-only step), for one sample."""
    name = (row.get("ref_model") or "").strip()
    seq_len = int(_number(row, "ref_seq_len", where))
    try:
        return _reference_flops(name, seq_len)
    except Exception as error:  # noqa: BLE001 - the cost model names what is wrong
        raise ValueError(f"{where}: ref_model: {error}") from None


@lru_cache(maxsize=64)
def _reference_flops(model: str, seq_len: int) -> float:
    job = JobSpec(model=model, peft=PeftSpec("lora"), batch=1, seq_len=seq_len, budget=1)
    return step_cost(job, "edge-only").edge_flops
