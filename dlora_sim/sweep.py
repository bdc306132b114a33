"""Sweeps: many paired simulation runs over a grid of scenario fields, on a Dask cluster.

A sweep is a lab's plate of wells: one base scenario, and per well (point) a few fields changed
(``job.budget = 8``, ``fleet.groups.0.link = "5g"``). Each point runs the full paired simulation
(every strategy on the same fleet and seed) and lands in its own folder, named by a hash of the
point's *resolved* scenario (every field after the overrides, defaults and catalog names filled
in): edit the base scenario and the affected points get new folders, so a rerun recomputes them
instead of keeping stale results. A point counts as done only once its completion marker
``DONE.json`` is written (last, atomically) and reads back whole next to its results. A rerun
skips done points, so an interrupted sweep loses nothing it finished. The table of all points
(``sweep.parquet``) is always rebuilt from the point folders, never appended to.

Dask use: one task per point (points are seconds to minutes of work, well above Dask's per-task
overhead); a task takes (resolved scenario, overrides, point id, point folder) and returns a
small record; the client submits every task, then drains them with ``as_completed``. Workers
write the point folders themselves, so a remote cluster needs the output folder on shared
storage (see docs/sweeps.md). Whoever reaches a Dask scheduler can run code on its workers, so
the local cluster listens on loopback only and a remote one is reached over ``tls://``.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import math
import os
import time
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlora_sim.errors import InputError
from dlora_sim.io import MAX_DEPTH, atomic_write_json, dig, too_deep_at

MARKER = "DONE.json"
MANIFEST = "sweep.json"
LOCK = ".sweep.lock"
SPEC_KEYS = ("base", "name", "description", "seeds", "fixed", "grid", "points", "profiles")
#: points per sweep; each is resolved (and validated) before anything runs, at ~25 ms apiece
MAX_POINTS = 10_000
SCHEMES = ("tcp", "tls")


@dataclass(frozen=True)
class Point:
    """One sweep point: scenario field overrides, a seed, and the scenario they resolve to.

    ``scenario`` is the validated scenario as ``Scenario.to_resolved_dict`` gives it: what the
    point's id hashes and what its task simulates, so the two cannot disagree.
    """

    overrides: dict[str, Any]
    seed: int | None
    point_id: str
    label: str
    scenario: dict[str, Any] = field(repr=False)

    @property
    def all_overrides(self) -> dict[str, Any]:
        """The overrides with the seed as ``run.seed``: what the point's scenario is built from."""
        return with_seed(self.overrides, self.seed)


def with_seed(overrides: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """``overrides`` plus ``run.seed`` when a seed is given."""
    return {**overrides, "run.seed": seed} if seed is not None else dict(overrides)


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep specification (see docs/sweeps.md for the TOML format)."""

    source: Path
    name: str
    base: Path
    points: tuple[Point, ...]
    profiles_dir: Path | None = None
    description: str = ""
    varied: tuple[str, ...] = field(default_factory=tuple)


def point_id(resolved: Mapping[str, Any]) -> str:
    """Stable id of a point: the first 12 hex digits of SHA-256 over its resolved scenario.

    The canonical JSON (sorted keys, no whitespace) does not depend on key order or the process,
    so the same scenario always maps to the same folder, in any rerun; any change to the
    scenario, in the base file or the overrides, maps to another.
    """
    canonical = json.dumps(dict(resolved), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


# -------------------------------------------------------------------------- the sweep file


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep specification file, and resolve every point's scenario.

    Args:
        path: the TOML file; ``base`` and ``profiles`` resolve against its folder.

    Returns:
        The spec with its points expanded (grid product, then explicit points, each per seed),
        each validated against the base scenario, scenarios that resolve alike kept once, in a
        stable order.

    Raises:
        InputError: one line naming the file and the field for any problem, before anything runs.
    """
    path = Path(path)
    raw = _read_toml(path)
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r}; allowed: {', '.join(SPEC_KEYS)}")
    name = _name(raw, path)
    description = _optional_string(raw, "description", path, "free text") or ""
    profiles = _optional_string(raw, "profiles", path, "a folder path")
    profiles_dir = _beside(path, "profiles", profiles) if profiles else None
    base = _base_file(raw, path)
    seeds = _seeds(raw, path)
    base_table = _base_table(base)
    fixed = dict(_flatten(_table(raw, "fixed", path), base_table))
    grid, combos = _combinations(raw, path, base_table, seeds)
    varied = tuple(dict.fromkeys([*grid, *(k for c in combos for k in c),
                                  *(["run.seed"] if seeds is not None else [])]))
    return SweepSpec(
        source=path, name=name, base=base,
        points=_resolve_points(path, base, fixed, combos or [{}], seeds),
        profiles_dir=profiles_dir, description=description, varied=varied,
    )


def _combinations(raw: Mapping[str, Any], path: Path, base_table: Mapping[str, Any],
                  seeds: list[int] | None) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """The grid, and every combination of overrides: the grid product, then ``[[points]]``.

    The points are counted before the product is taken, so a grid too large to run is refused
    without first filling memory with it.
    """
    grid = dict(_flatten(_table(raw, "grid", path), base_table))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{path}: grid.{key}: must be a non-empty list of values")
    explicit = raw.get("points", [])
    if not isinstance(explicit, list) or not all(isinstance(p, Mapping) for p in explicit):
        raise InputError(f"{path}: points: must be an array of tables, e.g. [[points]] then fields")
    if not grid and not explicit and seeds is None:
        raise InputError(f"{path}: grid: nothing to sweep; give [grid] lists, [[points]] tables "
                         "or seeds (for one run of the base scenario use dlora-sim run)")
    n_combos = (math.prod(len(v) for v in grid.values()) if grid else 0) + len(explicit)
    n_points = max(n_combos, 1) * len(seeds or [None])
    if n_points > MAX_POINTS:
        raise InputError(f"{path}: grid: {n_points} points, more than the {MAX_POINTS} a sweep "
                         "may have; split it into several sweeps")
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] if grid else []
    return grid, combos + [dict(_flatten(p, base_table)) for p in explicit]


def _read_toml(path: Path) -> dict[str, Any]:
    """The sweep file's table, refused whole when unreadable, malformed or nested too deeply."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: sweep file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read sweep file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: malformed TOML: {error}") from None
    except RecursionError:
        raise InputError(f"{path}: malformed TOML: nested too deeply") from None
    too_deep = too_deep_at(raw)
    if too_deep is not None:
        raise InputError(f"{path}: {too_deep}: nested more than {MAX_DEPTH} levels deep")
    return raw


def _beside(path: Path, key: str, relative: str) -> Path:
    """``relative`` (the value of ``key``) as an absolute path, against the sweep file's folder."""
    try:
        return (path.resolve().parent / relative).resolve()
    except (OSError, ValueError) as error:  # a NUL byte, a symlink loop
        raise InputError(f"{path}: {key}: not a usable path: {error}") from None


def _base_file(raw: Mapping[str, Any], path: Path) -> Path:
    if not isinstance(raw.get("base"), str) or not raw["base"]:
        raise InputError(f"{path}: base: required, the base scenario file (relative to this file)")
    base = _beside(path, "base", raw["base"])
    if not base.is_file():
        raise InputError(f"{path}: base: scenario file {base} not found")
    return base


def _base_table(base: Path) -> dict[str, Any]:
    """The base scenario's raw TOML, which tells where a table in the sweep file goes (see
    :func:`_flatten`). A file that does not parse gives an empty table here: resolving the
    first point loads it again and reports its problem, naming it."""
    try:
        return tomllib.loads(base.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return {}


def _seeds(raw: Mapping[str, Any], path: Path) -> list[int] | None:
    """``seeds``: integers >= 0, strictly (``true`` is a bool in TOML, not the seed 1)."""
    seeds = raw.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise InputError(f"{path}: seeds: must be a non-empty list of integers >= 0, e.g. [0, 1]")
    return seeds


def _table(raw: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(f"{path}: {key}: must be a table of field = value(s)")
    return value


def _optional_string(raw: Mapping[str, Any], key: str, path: Path, what: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{path}: {key}: must be a string ({what})")
    return value


def _name(raw: Mapping[str, Any], path: Path) -> str:
    """The sweep's name, also its default folder ``results/sweeps/<name>``: so never a path."""
    name = _optional_string(raw, "name", path, "a name, not a path") or path.stem
    if name in (".", "..") or any(c in name for c in "/\\") or not name.isprintable() \
            or not name.strip():
        raise InputError(f"{path}: name: {name!r} cannot name a folder "
                         "(no '/', '\\' or control characters, not '.' or '..')")
    return name


def _flatten(table: Mapping[str, Any], base: Mapping[str, Any],
             prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested tables become dotted field paths; quoted dotted keys pass through unchanged.

    A table goes *inside* a field only where the base scenario holds a table, a list (items by
    index) or nothing there. Where it holds a value, such as the catalog name in
    ``link = "lte"``, the table is the field's new value: ``"fleet.groups.0.link" = { up_bps =
    2e6, ... }`` replaces the named link with that one, as an inline table in ``[[points]]``
    means.
    """
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(dig(base, path, {}), (Mapping, list)):
            yield from _flatten(value, base, prefix=f"{path}.")
        else:
            yield path, value


def _label(overrides: Mapping[str, Any]) -> str:
    """``job.budget=8, fleet.groups.0.link=5g``: strings bare unless they hold control
    characters (a label is printed on one line), everything else as JSON."""
    return ", ".join(f"{k}={v if isinstance(v, str) and v.isprintable() else json.dumps(v)}"
                     for k, v in overrides.items()) or "base scenario"


def _resolve_points(path: Path, base: Path, fixed: Mapping[str, Any],
                    combos: list[dict[str, Any]], seeds: list[int] | None) -> tuple[Point, ...]:
    """Every (combination, seed) as a validated point; points resolving alike are kept once."""
    from dlora_sim.scenario import load_scenario

    points: dict[str, Point] = {}
    for combo in combos:
        for seed in seeds if seeds is not None else [None]:
            overrides = {**fixed, **combo}
            label = _label({k: v for k, v in with_seed(overrides, seed).items() if k not in fixed})
            try:
                resolved = load_scenario(base, with_seed(overrides, seed)).to_resolved_dict()
            except InputError as error:
                raise InputError(f"{path}: point {label}: {error}") from None
            pid = point_id(resolved)
            points.setdefault(pid, Point(overrides, seed, pid, label, resolved))
    return tuple(points.values())


# ------------------------------------------------------------------------------- one point


def read_marker(point_dir: Path) -> dict[str, Any] | None:
    """The record of a finished point, or None when the point is not done.

    Done means: ``DONE.json`` parses as this point's record and the results it describes are
    there. A truncated or foreign marker, or one whose results folder went missing, reads as
    not done, so a rerun recomputes the point instead of failing on it.
    """
    try:
        record = json.loads((point_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # missing, unreadable, truncated, not UTF-8
        return None
    if not (isinstance(record, dict) and record.get("point_id") == point_dir.name
            and isinstance(record.get("scenario"), dict)
            and isinstance(record.get("strategies"), dict)
            and all(isinstance(m, dict) for m in record["strategies"].values())):
        return None
    results = point_dir / "results"
    if not all((results / name).is_file() for name in ("summary.json", "scenario.json")):
        return None
    return record


def is_done(point_dir: Path) -> bool:
    """A point is done iff its marker reads back whole next to its results (see read_marker)."""
    return read_marker(point_dir) is not None


def run_point(scenario: dict[str, Any], overrides: dict[str, Any], pid: str,
              point_dir: str) -> dict[str, Any]:
    """The Dask task: simulate one point (all strategies, paired) and write its folder.

    Args:
        scenario: the point's resolved scenario (``Scenario.to_resolved_dict``), validated
            again here, so a worker checks the files it names (profiles, traces) itself.
        overrides: the point's dotted field overrides, kept in its record for readers.
        pid: the point's id (the hash of ``scenario``).
        point_dir: the point's folder; results go to ``point_dir/results``, the marker last.

    Returns:
        The small record also stored in the marker: id, overrides, summary, timing.
    """
    from dlora_sim.scenario.load import scenario_from_resolved
    from dlora_sim.sim import simulate
    from dlora_sim.sim.results import write_results
    from dlora_sim.sweep_table import point_record

    started = time.perf_counter()
    folder = Path(point_dir)
    (folder / MARKER).unlink(missing_ok=True)  # a damaged marker: not done until rewritten
    result = simulate(scenario_from_resolved(scenario, source=f"point {pid}"), progress=False)
    write_results(result, folder / "results")
    record = point_record(pid, overrides, folder / "results",
                          wall_s=time.perf_counter() - started)
    atomic_write_json(folder / MARKER, record)  # written last: the point is now done
    return record


# --------------------------------------------------------------------- the sweep folder


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold the sweep folder's exclusive lock while a sweep writes it.

    ``flock`` belongs to the open file, so the kernel drops it when its holder dies, even by
    ``kill -9``: a lock file left by a dead sweep is simply taken over. The pid written into it
    only names the holder in the message a second sweep gets. (A helper io.py could offer; it
    lives here because only sweeps lock folders.)
    """
    lock_path = folder / LOCK
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise InputError(f"{folder}: cannot create the lock file {LOCK}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise InputError(f"{folder}: another sweep (pid {holder}) is writing this folder; "
                             "wait for it to end or choose another -o") from None
        except OSError as error:
            raise InputError(f"{folder}: cannot lock the sweep folder: {error.strerror}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)


def _check_out_dir(out: Path) -> None:
    """``-o`` must be a sweep folder, an empty folder or a new path: a sweep never writes its
    files into a folder that holds anything else."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: -o: exists and is not a folder")
    if out.is_dir() and not (out / MANIFEST).is_file():
        try:
            others = [p.name for p in out.iterdir() if p.name != LOCK]
        except OSError as error:
            raise InputError(f"{out}: -o: cannot read the folder: {error.strerror}") from None
        if others:
            raise InputError(f"{out}: -o: not a sweep folder (no {MANIFEST}) and not empty; "
                             "choose a new or empty folder")


def _write_manifest(spec: SweepSpec, out: Path) -> None:
    atomic_write_json(out / MANIFEST, {
        "name": spec.name, "source": str(spec.source), "base": str(spec.base),
        "description": spec.description, "varied": list(spec.varied),
        "profiles_dir": str(spec.profiles_dir) if spec.profiles_dir else None,
        "points": [{"point_id": p.point_id, "label": p.label, "overrides": p.all_overrides}
                   for p in spec.points],
    })


# ------------------------------------------------------------------------------- Dask


@dataclass(frozen=True)
class TLSFiles:
    """The client's certificate files for a ``tls://`` scheduler (PEM; the key may sit in the
    certificate file)."""

    ca_file: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    def given(self) -> list[str]:
        """The options that were given, by their CLI names."""
        return [option for option, value in (("--tls-ca-file", self.ca_file),
                                             ("--tls-cert", self.cert), ("--tls-key", self.key))
                if value is not None]


def check_scheduler(address: str) -> str:
    """The scheme of a scheduler address, after checking it is ``tcp|tls://HOST:PORT``.

    A bad address is refused at once: Dask itself would retry it until the connect timeout.
    """
    scheme, sep, location = address.partition("://")
    if not sep:
        raise InputError(f"--scheduler {address}: expected tls://HOST:PORT or tcp://HOST:PORT")
    if scheme not in SCHEMES:
        raise InputError(f"--scheduler {address}: unsupported scheme {scheme!r}; "
                         f"use {' or '.join(s + '://' for s in SCHEMES)}")
    host, colon, port = location.rpartition(":")
    if not colon or not host.strip("[]") or any(c in host for c in "/ "):
        raise InputError(f"--scheduler {address}: expected {scheme}://HOST:PORT")
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise InputError(f"--scheduler {address}: port must be a number 1..65535 (got {port!r})")
    return scheme


def _distributed() -> Any:
    """The ``distributed`` package, or one line saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise InputError("dlora-sim sweep needs Dask: pip install 'dlora-sim[scale]'") from None
    return distributed


def tls_security(address: str, tls: TLSFiles) -> Any:
    """The ``distributed.security.Security`` for a ``tls://`` address, after checking its files.

    Each file is opened and the certificate chain loaded here, so a missing, unreadable or
    non-PEM file is one line naming its option rather than a failure deep in a connect.
    """
    import ssl

    if tls.ca_file is None or tls.cert is None:
        raise InputError(f"--scheduler {address}: tls:// needs --tls-ca-file and --tls-cert "
                         "(and --tls-key unless the key is in the certificate file)")
    for option, file in (("--tls-ca-file", tls.ca_file), ("--tls-cert", tls.cert),
                         ("--tls-key", tls.key)):
        if file is not None:
            try:
                file.open("rb").close()
            except OSError as error:
                raise InputError(f"{option} {file}: cannot read: {error.strerror}") from None
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file))
    except ssl.SSLError as error:
        raise InputError(f"--tls-ca-file {tls.ca_file}: not a PEM CA certificate: "
                         f"{error.reason or error}") from None
    try:
        context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    except ssl.SSLError as error:
        raise InputError(f"--tls-cert {tls.cert}: not a PEM certificate with its key "
                         f"(--tls-key): {error.reason or error}") from None
    return _distributed().Security(
        require_encryption=True, tls_ca_file=str(tls.ca_file), tls_client_cert=str(tls.cert),
        tls_client_key=str(tls.key) if tls.key else None)


def _connection(scheduler: str | None, tls: TLSFiles) -> Any:
    """Check the scheduler options as a whole; the Security to connect with (None: plain)."""
    if scheduler is None or check_scheduler(scheduler) == "tcp":
        if tls.given():
            where = f"--scheduler {scheduler}" if scheduler else "the local cluster"
            raise InputError(f"{tls.given()[0]}: only used with a tls:// scheduler, "
                             f"not with {where}")
        return None
    return tls_security(scheduler, tls)


def _open_client(scheduler: str | None, security: Any, n_workers: int,
                 connect_timeout_s: float) -> Any:
    """A Dask client: on an existing scheduler, or on a small LocalCluster of processes.

    The LocalCluster listens on 127.0.0.1 only, its dashboard (and the HTTP routes a scheduler
    always serves) too, on a free port: anyone who can reach a scheduler can run code on its
    workers.
    """
    import logging

    distributed = _distributed()
    if scheduler:
        try:
            return distributed.Client(scheduler, security=security, timeout=f"{connect_timeout_s}s")
        except (OSError, TimeoutError, ValueError) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise InputError(f"--scheduler {scheduler}: cannot connect: {reason}") from None
    cluster = distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    return distributed.Client(cluster)


def _close_client(client: Any, own_cluster: bool) -> None:
    cluster = client.cluster if own_cluster else None
    client.close()
    if cluster is not None:
        cluster.close()


@contextmanager
def dask_client(scheduler: str | None, n_workers: int, tls: TLSFiles = TLSFiles(),
                connect_timeout_s: float = 10.0) -> Iterator[Any]:
    """A Dask client for a block, reached exactly as a sweep reaches one (``dlora-sim plan``
    confirms its candidates on it): an existing scheduler, or a loopback LocalCluster of
    ``n_workers`` processes that is shut down after the block.

    Raises:
        InputError: bad scheduler or TLS options, or an unreachable scheduler (one line).
    """
    if n_workers < 1:
        raise InputError(f"--workers: must be >= 1 (got {n_workers})")
    client = _open_client(scheduler, _connection(scheduler, tls), n_workers, connect_timeout_s)
    try:
        yield client
    finally:
        _close_client(client, own_cluster=scheduler is None)


# ------------------------------------------------------------------------------- running


@dataclass
class SweepOutcome:
    """What a sweep invocation did: where, how many points ran or were skipped, what failed."""

    out_dir: Path
    table_path: Path
    n_points: int
    n_skipped: int
    n_run: int
    failures: list[tuple[str, str]]


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    progress: bool = True,
    connect_timeout_s: float = 10.0,
    tls: TLSFiles = TLSFiles(),
) -> SweepOutcome:
    """Run every point of ``spec`` that is not done yet, then rebuild the sweep table.

    Args:
        spec: the loaded sweep specification.
        out_dir: the sweep folder (``points/<id>/`` per point, ``sweep.parquet``, ``sweep.json``);
            locked while this runs, so a second sweep into it stops with one line.
        scheduler: address of an existing Dask scheduler (``tls://host:port``, or
            ``tcp://host:port`` on a trusted network); None starts a loopback LocalCluster of
            ``n_workers`` single-threaded worker processes.
        n_workers: LocalCluster size when no scheduler is given.
        progress: show a rich progress bar on stderr.
        connect_timeout_s: how long to try reaching ``scheduler`` before giving up.
        tls: the client's certificate files, for a ``tls://`` scheduler only.

    Returns:
        A :class:`SweepOutcome`; failed points are listed, not raised, so finished ones count.

    Raises:
        InputError: bad scheduler options, an unreachable scheduler, an ``out_dir`` that is not
            a sweep folder or is locked by another sweep; all before any point runs.
    """
    from dlora_sim.sweep_table import build_table

    out = Path(out_dir)
    if n_workers < 1:
        raise InputError(f"--workers: must be >= 1 (got {n_workers})")
    security = _connection(scheduler, tls)
    _check_out_dir(out)
    pending = [p for p in spec.points if not is_done(out / "points" / p.point_id)]
    # connect before writing anything: an unreachable scheduler leaves no folder behind
    client = _open_client(scheduler, security, n_workers, connect_timeout_s) if pending else None
    try:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"{out}: -o: cannot create the folder: {error.strerror}") from None
        with _folder_lock(out):
            # again under the lock: what another sweep finished meanwhile is not run twice
            pending = [p for p in pending if not is_done(out / "points" / p.point_id)]
            _write_manifest(spec, out)
            failures = _run_pending(client, spec, pending, out, progress) if pending else []
            table_path = build_table(spec, out)
    finally:
        if client is not None:
            _close_client(client, own_cluster=scheduler is None)
    return SweepOutcome(out, table_path, len(spec.points), len(spec.points) - len(pending),
                        len(pending), failures)


def _run_pending(client: Any, spec: SweepSpec, pending: list[Point], out: Path,
                 progress: bool) -> list[tuple[str, str]]:
    """Submit every pending point, drain them as they complete; the failures, as (label, why)."""
    from distributed import as_completed
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    failures: list[tuple[str, str]] = []
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]sweep {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  disable=not progress) as bar:
        # names and messages are the user's text, not markup
        task = bar.add_task(escape(spec.name), total=len(spec.points),
                            completed=len(spec.points) - len(pending))
        futures = {
            client.submit(run_point, p.scenario, p.all_overrides, p.point_id,
                          str((out / "points" / p.point_id).resolve()),  # worker cwd may differ
                          key=f"dlora-point-{p.point_id}-{time.time_ns()}", pure=False): p
            for p in pending
        }
        for future in as_completed(futures):
            point = futures[future]
            try:
                future.result()
            except Exception as error:  # a failed point must not lose the others
                reason = f"{type(error).__name__}: {' '.join(str(error).split())}"
                failures.append((point.label, reason))
                console.print(f"point {point.point_id} ({point.label}) failed: {reason}",
                              style="red", markup=False, highlight=False)
            bar.advance(task)
    return failures
