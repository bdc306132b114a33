"""FedScale's traces into dlora-sim's formats, read without running anything from the file.

FedScale ships its device and availability traces as Python pickles: ``client_device_capacity``
(client id -> {"computation": ms per sample of its reference model, "communication": kbit/s})
and ``client_behave_trace`` (client id -> {"active": [start_s, ...], "inactive": [end_s, ...],
"finish_time": ...}). A pickle can run arbitrary code when loaded, so :class:`PlainUnpickler`
builds nothing but dict, list, tuple, str, int, float, bool and None: any other object in the
file is refused with one line.
"""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path
from typing import Any

#: the most a converted file may hold (clients)
MAX_CLIENTS = 10_000_000


class PlainUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global: only the built-in containers and scalars load."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused {module}.{name}: only plain data (dict, list, str, numbers) may load")


def load_plain(path: Path) -> Any:
    """The pickled plain data in ``path``.

    Raises:
        ValueError: the file is unreadable, not a pickle, or holds anything but plain data.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        return PlainUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            MemoryError, RecursionError) as error:
        raise ValueError(f"{path}: not a plain-data pickle ({error})") from None


def _mapping(data: Any, path: Path) -> dict[Any, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of client id -> record, got {type(data).__name__}")
    if len(data) > MAX_CLIENTS:
        raise ValueError(f"{path}: {len(data):,} clients, above the {MAX_CLIENTS:,} a conversion handles")
    return data


def capacity_csv(path: Path, ref_model: str, ref_seq_len: int, memory_gb: float) -> str:
    """``client_device_capacity`` as a capacity trace (docs/traces.md). FedScale states compute as
    milliseconds per sample of its reference model and one bandwidth (kbit/s) for both ways; it
    has no memory, so every device gets ``memory_gb``.

    Raises:
        ValueError: the pickle or one of its records is not what FedScale writes (named).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["device", "sample_s", "ref_model", "ref_seq_len", "memory_gb", "up_mbps", "down_mbps"])
    for client, record in sorted(_mapping(load_plain(path), path).items(), key=lambda kv: str(kv[0])):
        try:
            sample_s = float(record["computation"]) / 1e3
            mbps = float(record["communication"]) / 1e3
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{path}: client {client!r}: needs numeric 'computation' and 'communication'") from None
        writer.writerow([client, f"{sample_s:.9g}", ref_model, ref_seq_len, memory_gb, f"{mbps:.9g}", f"{mbps:.9g}"])
    return out.getvalue()


def availability_csv(path: Path) -> str:
    """``client_behave_trace`` as an availability trace (``device,start_s,end_s`` online intervals).

    Raises:
        ValueError: a record lacks paired 'active'/'inactive' lists of numbers (named).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["device", "start_s", "end_s"])
    for client, record in sorted(_mapping(load_plain(path), path).items(), key=lambda kv: str(kv[0])):
        try:
            starts, ends = [float(x) for x in record["active"]], [float(x) for x in record["inactive"]]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{path}: client {client!r}: needs 'active' and 'inactive' lists of seconds") from None
        for start_s, end_s in zip(starts, ends):
            if end_s > start_s >= 0:
                writer.writerow([client, f"{start_s:.9g}", f"{end_s:.9g}"])
    return out.getvalue()
