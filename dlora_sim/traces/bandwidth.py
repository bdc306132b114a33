"""Bandwidth over time: the Pensieve/FCC ``[t, Mbit/s]`` form, and Mahimahi packet-delivery traces.

Our format (CSV with a header, or Parquet with the same column names), one row a change point:

- ``time_s``: seconds, strictly increasing within a trace (the first row of a trace is its time 0,
  so FCC's epoch timestamps need no shifting);
- ``mbit_s``: Mbit/s (10^6 bit/s) from this row's time to the next row's; 0 (no capacity: an
  outage) or 10^-6 to 10^9;
- ``trace`` (optional): an id; a file may hold several traces, each its own rows in time order.

Each row's rate holds until the next row's time; the **last row's holds for as long as the step
before it**, so a trace sampled every second covers one second per row (a one-row trace is a
constant). That length is the trace's ``duration_s``, its period when looped.

:func:`read_pensieve` reads Pensieve's cooked traces (FCC and HSDPA: two numbers a line, time and
Mbit/s, no header); :func:`read_mahimahi` reads Mahimahi's (one integer a line: a millisecond at
which one 1500-byte packet may leave; repeated lines are several packets; the trace repeats after
its last millisecond) into a piecewise-constant rate over bins of a stated width. Both return
:class:`BandwidthTrace` for :func:`to_csv` or :func:`to_parquet`. Every problem is one ``ValueError`` naming the file,
the row (CSV line or Parquet row) and the column.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = ("time_s", "mbit_s")
OPTIONAL = ("trace",)
#: a trace file bigger than this is refused before it is parsed
MAX_BYTES = 256 * 2**20
#: rows (change points) in one file, all traces together
MAX_ROWS = 10_000_000
#: the finest time step a trace may have: finer is no network measurement, and float seconds
#: far into a run could not tell its change points apart
MIN_STEP_S = 1e-6
#: the largest time a trace may name (the scenario's longest duration)
MAX_TIME_S = 1e15
#: rates: 0 (an outage), or 1 bit/s to 1 Pbit/s, the scenario's own bandwidth bounds
MIN_MBIT_S, MAX_MBIT_S = 1e-6, 1e9
#: Mahimahi: bytes one delivery opportunity carries (an Ethernet MTU)
MTU_BYTES = 1500


@dataclass(frozen=True, eq=False)
class BandwidthTrace:
    """One trace: rates (Mbit/s) from each row's time (s from the trace's start) to the next's.

    ``times_s[0]`` is 0; the last rate holds until ``duration_s`` (the period when looped; 0 for a
    one-row trace, a constant). :attr:`changes` is the same with repeated rates merged, as the
    simulator follows it.
    """

    name: str
    times_s: np.ndarray
    mbit_s: np.ndarray
    duration_s: float

    def __post_init__(self) -> None:
        for array in (self.times_s, self.mbit_s):
            array.flags.writeable = False

    @functools.cached_property
    def changes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(times_s, mbit_s)`` of the rows where the rate changes (the first row always)."""
        keep = np.ones(len(self.times_s), dtype=bool)
        keep[1:] = self.mbit_s[1:] != self.mbit_s[:-1]
        if keep.all():
            return self.times_s, self.mbit_s
        times, rates = self.times_s[keep], self.mbit_s[keep]
        times.flags.writeable = rates.flags.writeable = False
        return times, rates

    @property
    def mean_mbit_s(self) -> float:
        """The time-average rate over one period (a constant trace: its rate)."""
        if len(self.times_s) == 1:
            return float(self.mbit_s[0])
        widths = np.diff(np.append(self.times_s, self.duration_s))
        return float(np.dot(widths, self.mbit_s) / self.duration_s)

    @property
    def changes_per_period(self) -> int:
        """Rate changes in one period when looped (the wrap counts where it changes the rate)."""
        times, rates = self.changes
        n = len(times)
        return n - 1 + int(n > 1 and rates[-1] != rates[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BandwidthTrace):
            return NotImplemented
        return (self.name == other.name and self.duration_s == other.duration_s
                and np.array_equal(self.times_s, other.times_s) and np.array_equal(self.mbit_s, other.mbit_s))

    def __hash__(self) -> int:
        return hash((self.name, self.duration_s, len(self.times_s)))


def load_bandwidth(path: Path) -> tuple[BandwidthTrace, ...]:
    """The traces of a bandwidth file, in order of first appearance (cached per file version).

    Raises:
        ValueError: the file is unreadable, too big, empty, or a row breaks the format (named).
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    if stat.st_size > MAX_BYTES:
        raise ValueError(f"{path}: {stat.st_size:,} bytes, above the {MAX_BYTES:,} a bandwidth trace may have")
    return _load(str(path), stat.st_size, stat.st_mtime_ns)


def find(traces: tuple[BandwidthTrace, ...], name: str, path: Path) -> BandwidthTrace:
    """The trace called ``name``; ValueError listing the ids the file has."""
    for trace in traces:
        if trace.name == name:
            return trace
    shown = ", ".join(repr(t.name) for t in traces[:10]) + (f", ... ({len(traces)} traces)" if len(traces) > 10 else "")
    raise ValueError(f"{path} has no trace {name!r}; it has {shown}")


@functools.lru_cache(maxsize=32)
def _load(path: str, _size: int, _mtime_ns: int) -> tuple[BandwidthTrace, ...]:
    names, times, rates, where = (_parquet_columns if path.endswith(".parquet") else _csv_columns)(path)
    if not len(times):
        raise ValueError(f"{path}: no rows")
    return _traces(path, names, times, rates, where)


def _traces(path: str, names: list[str], times: np.ndarray, rates: np.ndarray, where) -> tuple[BandwidthTrace, ...]:
    """Validate the columns (``where(i)`` names row ``i``) and split them into traces."""
    bad = np.flatnonzero(~np.isfinite(times) | (times < 0) | (times > MAX_TIME_S))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: {where(i)}: time_s: {times[i]:g} is not a time in [0, {MAX_TIME_S:g}] s")
    ok = np.isfinite(rates) & ((rates == 0) | ((rates >= MIN_MBIT_S) & (rates <= MAX_MBIT_S)))
    bad = np.flatnonzero(~ok)
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: {where(i)}: mbit_s: {rates[i]:g} is not 0 or in [{MIN_MBIT_S:g}, {MAX_MBIT_S:g}]")
    order: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        order.setdefault(name, []).append(i)
    out = []
    for name, rows in order.items():
        index = np.asarray(rows, dtype=np.int64)
        t, r = times[index], rates[index]
        steps = np.diff(t)
        bad = np.flatnonzero(steps < MIN_STEP_S)
        if len(bad):
            i = int(index[bad[0] + 1])
            label = f" (trace {name!r})" if name else ""
            problem = "is not after" if steps[bad[0]] <= 0 else f"is less than {MIN_STEP_S:g} s after"
            raise ValueError(f"{path}: {where(i)}: time_s: {t[bad[0] + 1]:g} {problem} the previous row's "
                             f"{t[bad[0]]:g}{label}")
        if not np.any(r > 0):
            raise ValueError(f"{path}: {where(int(index[0]))}: mbit_s: trace {name!r} is 0 throughout: it never "
                             "delivers a byte")
        out.append(make_trace(name, t, r))
    return tuple(out)


def make_trace(name: str, times_s: np.ndarray, mbit_s: np.ndarray) -> BandwidthTrace:
    """A trace from validated rows, shifted to start at 0, its duration set by the last step."""
    times_s = np.asarray(times_s, dtype=float)
    duration = float(times_s[-1] + (times_s[-1] - times_s[-2]) - times_s[0]) if len(times_s) > 1 else 0.0
    return BandwidthTrace(name, times_s - times_s[0], np.array(mbit_s, dtype=float), duration)


# ------------------------------------------------------------------------------------ our format


def _check_columns(path: str, columns) -> None:
    columns = list(columns)
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; needs time_s, mbit_s (and optionally trace)")
    unknown = sorted(set(columns) - set(COLUMNS) - set(OPTIONAL))
    if unknown:
        raise ValueError(f"{path}: unknown column(s) {', '.join(unknown)}; allowed: trace, time_s, mbit_s")
    if len(set(columns)) != len(columns):
        raise ValueError(f"{path}: a column name repeats in the header")


def _csv_columns(path: str):
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte {data[error.start]:#04x})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    names: list[str] = []
    times: list[float] = []
    rates: list[float] = []
    lines: list[int] = []
    try:
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file; needs a header time_s,mbit_s (and optionally trace)")
        header = [h.strip() for h in header]
        _check_columns(path, header)
        it, ir = header.index("time_s"), header.index("mbit_s")
        iname = header.index("trace") if "trace" in header else None
        width = len(header)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            line = reader.line_num
            if len(row) != width:
                raise ValueError(f"{path}: line {line}: {len(row)} fields, the header has {width}")
            if len(times) >= MAX_ROWS:
                raise ValueError(f"{path}: line {line}: more than {MAX_ROWS:,} rows, the most a bandwidth file may have")
            times.append(_number(row[it], path, line, "time_s"))
            rates.append(_number(row[ir], path, line, "mbit_s"))
            if iname is not None:
                name = row[iname].strip()
                if not name:
                    raise ValueError(f"{path}: line {line}: trace: empty id")
                names.append(name)
            else:
                names.append("")
            lines.append(line)
    except csv.Error as error:
        raise ValueError(f"{path}: line {reader.line_num}: not readable CSV ({error})") from None
    return names, np.asarray(times, dtype=float), np.asarray(rates, dtype=float), lambda i: f"line {lines[i]}"


def _number(text: str, path: str, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: line {line}: {column}: {text.strip()[:40]!r} is not a number") from None


def _parquet_columns(path: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"{path}: not a readable Parquet file ({error})") from None
    if rows > MAX_ROWS:
        raise ValueError(f"{path}: {rows:,} rows, above the {MAX_ROWS:,} a bandwidth file may have")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as error:
        raise ValueError(f"{path}: not a readable Parquet file ({error})") from None
    _check_columns(path, table.column_names)
    columns = {}
    for column in COLUMNS:
        array = table.column(column)
        if array.null_count:
            first = int(np.flatnonzero(np.asarray(array.is_null()))[0])
            raise ValueError(f"{path}: row {first}: {column}: missing value")
        if not (pa.types.is_floating(array.type) or pa.types.is_integer(array.type)):
            raise ValueError(f"{path}: {column}: a column of {array.type}, not numbers")
        columns[column] = np.asarray(array.to_numpy(), dtype=float)
    if "trace" in table.column_names:
        names = ["" if v is None else str(v).strip() for v in table.column("trace").to_pylist()]
        empty = [i for i, v in enumerate(names) if not v]
        if empty:
            raise ValueError(f"{path}: row {empty[0]}: trace: empty id")
    else:
        names = [""] * table.num_rows
    return names, columns["time_s"], columns["mbit_s"], lambda i: f"row {i}"


# ------------------------------------------------------------------------------- other formats


def _read_text(path: Path) -> str:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    if size > MAX_BYTES:
        raise ValueError(f"{path}: {size:,} bytes, above the {MAX_BYTES:,} a bandwidth trace may have")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte {data[error.start]:#04x})") from None


def read_pensieve(path: Path, name: str | None = None) -> BandwidthTrace:
    """A Pensieve cooked trace (FCC, HSDPA): ``time_s mbit_s`` a line, whitespace or a comma
    between, no header; validated like our format (``name`` defaults to the file's stem).

    Raises:
        ValueError: one line naming the file, the line and the column.
    """
    times, rates, lines = [], [], []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        fields = line.replace(",", " ").split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != 2:
            raise ValueError(f"{path}: line {line_no}: {len(fields)} fields, expected 2 (time_s, mbit_s)")
        if len(times) >= MAX_ROWS:
            raise ValueError(f"{path}: line {line_no}: more than {MAX_ROWS:,} rows")
        times.append(_number(fields[0], str(path), line_no, "time_s"))
        rates.append(_number(fields[1], str(path), line_no, "mbit_s"))
        lines.append(line_no)
    if not times:
        raise ValueError(f"{path}: no rows")
    label = name if name is not None else Path(path).stem
    (trace,) = _traces(str(path), [label] * len(times), np.asarray(times, dtype=float),
                       np.asarray(rates, dtype=float), lambda i: f"line {lines[i]}")
    return trace


def read_mahimahi(path: Path, bin_s: float, name: str | None = None) -> BandwidthTrace:
    """A Mahimahi packet-delivery trace as a piecewise-constant rate.

    Each line is a millisecond (an integer, non-decreasing) at which one 1500-byte packet may be
    delivered; Mahimahi repeats the trace after its last millisecond, so that is the period. The
    period is cut into ``round(period / bin_s)`` equal bins (at least one, so the bin is
    ``bin_s`` up to rounding, and whole bins fill the period); a bin's rate is its packets ×
    1500 × 8 bits over its width. Every packet is counted once per period, so the converted trace
    delivers exactly the bytes Mahimahi's does, period by period.

    Raises:
        ValueError: one line naming the file, the line and the problem.
    """
    if not (math.isfinite(bin_s) and bin_s >= 1e-3):
        raise ValueError(f"bin width must be at least 0.001 s (Mahimahi's resolution), got {bin_s}")
    stamps, lines = [], []
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if not text.isdigit():
            raise ValueError(f"{path}: line {line_no}: {text[:40]!r} is not a millisecond (a whole number >= 0)")
        value = int(text)
        if stamps and value < stamps[-1]:
            raise ValueError(f"{path}: line {line_no}: {value} ms is before the previous line's {stamps[-1]} ms")
        if len(stamps) >= MAX_ROWS * 10:
            raise ValueError(f"{path}: line {line_no}: more than {MAX_ROWS * 10:,} packets")
        stamps.append(value)
        lines.append(line_no)
    if not stamps:
        raise ValueError(f"{path}: no packet lines")
    period_ms = stamps[-1]
    if period_ms <= 0:
        raise ValueError(f"{path}: line {lines[-1]}: the last millisecond is 0: the trace has no length")
    if period_ms / 1e3 > MAX_TIME_S:
        raise ValueError(f"{path}: line {lines[-1]}: {period_ms} ms is beyond {MAX_TIME_S:g} s")
    n_bins = max(1, round(period_ms / (bin_s * 1e3)))
    if n_bins > MAX_ROWS:
        raise ValueError(f"{path}: {n_bins:,} bins of {bin_s:g} s, above the {MAX_ROWS:,} rows a trace may have; "
                         "choose a wider bin")
    width_ms = period_ms / n_bins
    ms = np.asarray(stamps, dtype=float)
    # a packet at the period's end is the next period's first (Mahimahi: t mod period); either
    # way it is counted once per period, in the first bin
    index = np.minimum((np.mod(ms, period_ms) / width_ms).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    mbit = counts * (MTU_BYTES * 8.0) / (width_ms / 1e3) / 1e6
    mbit = np.where((mbit > 0) & (mbit < MIN_MBIT_S), MIN_MBIT_S, mbit)
    label = name if name is not None else Path(path).stem
    return BandwidthTrace(label, np.arange(n_bins) * (width_ms / 1e3), mbit.astype(float), period_ms / 1e3)


# --------------------------------------------------------------------------------------- writing


def rows(traces) -> tuple[list[str], np.ndarray, np.ndarray]:  # noqa: ANN001 - a sequence of BandwidthTrace
    """Trace ids, times and rates of ``traces`` as the rows of our format."""
    names: list[str] = []
    for trace in traces:
        names += [trace.name] * len(trace.times_s)
    return (names, np.concatenate([t.times_s for t in traces]).astype(float),
            np.concatenate([t.mbit_s for t in traces]).astype(float))


def to_csv(traces) -> str:  # noqa: ANN001 - a sequence of BandwidthTrace
    """The traces in our CSV format (``trace,time_s,mbit_s``), reading back to the same traces."""
    names, times, rates = rows(traces)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trace", "time_s", "mbit_s"])
    for name, t, r in zip(names, times, rates):
        writer.writerow([name, repr(float(t)), repr(float(r))])
    return out.getvalue()


def to_parquet(traces) -> bytes:  # noqa: ANN001 - a sequence of BandwidthTrace
    """The traces in our Parquet format (the CSV's columns), as the file's bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names, times, rates = rows(traces)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"trace": names, "time_s": times, "mbit_s": rates}), buffer)
    return buffer.getvalue()
