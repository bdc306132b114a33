"""Sweeps: many paired simulation runs over a grid of scenario fields, on a Dask cluster.

A sweep is a lab's plate of wells: one base scenario, and per well (point) a few fields changed
(``job.budget = 8``, ``fleet.groups.0.link = "5g"``). Each point runs the full paired simulation
(every strategy on the same fleet and seed) and lands in its own folder; a point counts as done
only once its completion marker ``DONE.json`` is written, last and atomically. A rerun skips done
points, so an interrupted sweep loses nothing it finished. The table of all points
(``sweep.parquet``) is always rebuilt from the point folders, never appended to.

Dask use follows STYLE.md §4: one task per point (points are seconds to minutes of work, well
above Dask's per-task overhead), a task takes (base scenario, overrides, seed) and returns a
small record; the client submits every task, then drains them with ``as_completed``. Workers
write the point folders themselves, so a remote cluster needs the output folder on shared
storage (see docs/sweeps.md).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlora_sim.errors import InputError
from dlora_sim.io import atomic_write_json

MARKER = "DONE.json"
SPEC_KEYS = ("base", "name", "description", "seeds", "fixed", "grid", "points", "profiles")


@dataclass(frozen=True)
class Point:
    """One sweep point: scenario field overrides and a seed (None: the base scenario's seed)."""

    overrides: dict[str, Any]
    seed: int | None
    point_id: str
    label: str

    @property
    def all_overrides(self) -> dict[str, Any]:
        """The overrides with the seed as ``run.seed``: what the point's id and scenario use."""
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


def point_id(overrides: Mapping[str, Any]) -> str:
    """Stable id of a point: the first 12 hex digits of SHA-256 over its canonical JSON.

    Key order and the process do not matter (sorted keys, no whitespace), so the same overrides
    always map to the same folder, on any machine and in any rerun.
    """
    canonical = json.dumps(dict(overrides), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested tables become dotted paths; quoted dotted keys pass through unchanged."""
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, prefix=f"{path}.")
        else:
            yield path, value


def _label(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str) if not isinstance(v, str) else v}"
                     for k, v in overrides.items()) or "base scenario"


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep specification file.

    Args:
        path: the TOML file; ``base`` and ``profiles`` resolve against its folder.

    Returns:
        The spec with its points expanded (grid product, then explicit points, each per seed),
        duplicates removed, in a stable order.

    Raises:
        InputError: one line naming the file and the field for any problem.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: sweep file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read sweep file: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: malformed TOML: {error}") from None
    unknown = sorted(set(raw) - set(SPEC_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r}; allowed: {', '.join(SPEC_KEYS)}")
    if not isinstance(raw.get("base"), str) or not raw["base"]:
        raise InputError(f"{path}: base: required, the base scenario file (relative to this file)")
    base = (path.resolve().parent / raw["base"]).resolve()
    if not base.is_file():
        raise InputError(f"{path}: base: scenario file {base} not found")
    seeds = raw.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not seeds
                              or not all(isinstance(s, int) and s >= 0 for s in seeds)):
        raise InputError(f"{path}: seeds: must be a non-empty list of integers >= 0, e.g. [0, 1]")
    fixed = dict(_flatten(_table(raw, "fixed", path)))
    grid = dict(_flatten(_table(raw, "grid", path)))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{path}: grid.{key}: must be a non-empty list of values")
    explicit = raw.get("points", [])
    if not isinstance(explicit, list) or not all(isinstance(p, Mapping) for p in explicit):
        raise InputError(f"{path}: points: must be an array of tables, e.g. [[points]] then fields")
    combos: list[dict[str, Any]] = []
    if grid:
        keys = list(grid)
        combos += [dict(zip(keys, values)) for values in itertools.product(*grid.values())]
    combos += [dict(_flatten(p)) for p in explicit]
    if not combos:
        combos = [{}]
    points: dict[str, Point] = {}
    for combo in combos:
        for seed in seeds if seeds is not None else [None]:
            overrides = {**fixed, **combo}
            pid = point_id(with_seed(overrides, seed))
            shown = {k: v for k, v in with_seed(overrides, seed).items() if k not in fixed}
            points.setdefault(pid, Point(overrides, seed, pid, _label(shown)))
    varied = tuple(dict.fromkeys([*grid, *(k for c in combos for k in c),
                                  *(["run.seed"] if seeds is not None else [])]))
    profiles = raw.get("profiles")
    if profiles is not None and not isinstance(profiles, str):
        raise InputError(f"{path}: profiles: must be a folder path (string)")
    return SweepSpec(
        source=path, name=str(raw.get("name") or path.stem), base=base,
        points=tuple(points.values()),
        profiles_dir=(path.resolve().parent / profiles).resolve() if profiles else None,
        description=str(raw.get("description", "")), varied=varied,
    )


def _table(raw: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise InputError(f"{path}: {key}: must be a table of field = value(s)")
    return value


def validate_points(spec: SweepSpec) -> None:
    """Load every point's scenario once, so a bad field fails before any cluster starts.

    Raises:
        InputError: naming the sweep file, the point and the scenario field.
    """
    from dlora_sim.scenario import load_scenario

    for point in spec.points:
        try:
            load_scenario(spec.base, point.all_overrides)
        except InputError as error:
            raise InputError(f"{spec.source}: point {point.label}: {error}") from None


def is_done(point_dir: Path) -> bool:
    """A point is done iff its completion marker exists (it is written last, atomically)."""
    return (point_dir / MARKER).is_file()


def run_point(base: str, overrides: dict[str, Any], seed: int | None,
              point_dir: str) -> dict[str, Any]:
    """The Dask task: simulate one point (all strategies, paired) and write its folder.

    Args:
        base: the base scenario file.
        overrides: dotted field paths to values.
        seed: the run seed (``run.seed``); None keeps the base scenario's.
        point_dir: the point's folder; results go to ``point_dir/results``, the marker last.

    Returns:
        The small record also stored in the marker: id, overrides, summary, timing.
    """
    from dlora_sim.scenario import load_scenario
    from dlora_sim.sim import simulate
    from dlora_sim.sim.results import write_results
    from dlora_sim.sweep_table import point_record

    started = time.perf_counter()
    overrides = with_seed(overrides, seed)
    scenario = load_scenario(base, overrides)
    result = simulate(scenario, progress=False)
    folder = Path(point_dir)
    write_results(result, folder / "results")
    record = point_record(point_id(overrides), overrides, folder / "results",
                          wall_s=time.perf_counter() - started)
    atomic_write_json(folder / MARKER, record)  # written last: the point is now done
    return record


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


def _open_client(scheduler: str | None, n_workers: int, connect_timeout_s: float = 10.0) -> Any:
    """A Dask client: on an existing scheduler, or on a small LocalCluster of processes."""
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("dlora-sim sweep needs Dask: pip install 'dlora-sim[scale]'") from None
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{connect_timeout_s}s")
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(f"--scheduler {scheduler}: cannot connect: {error}") from None
    if n_workers < 1:
        raise InputError(f"--workers: must be >= 1 (got {n_workers})")
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=logging.ERROR)
    return Client(cluster)


def _close_client(client: Any, own_cluster: bool) -> None:
    cluster = client.cluster if own_cluster else None
    client.close()
    if cluster is not None:
        cluster.close()


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    scheduler: str | None = None,
    n_workers: int = 2,
    progress: bool = True,
    connect_timeout_s: float = 10.0,
) -> SweepOutcome:
    """Run every point of ``spec`` that is not done yet, then rebuild the sweep table.

    Args:
        spec: the loaded sweep specification.
        out_dir: the sweep folder (``points/<id>/`` per point, ``sweep.parquet``, ``sweep.json``).
        scheduler: address of an existing Dask scheduler (``tcp://host:port``); None starts a
            LocalCluster of ``n_workers`` single-threaded worker processes.
        n_workers: LocalCluster size when no scheduler is given.
        progress: show a rich progress bar on stderr.
        connect_timeout_s: how long to try reaching ``scheduler`` before giving up.

    Returns:
        A :class:`SweepOutcome`; failed points are listed, not raised, so finished ones count.

    Raises:
        InputError: a bad point field (checked before anything runs) or an unreachable scheduler.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dlora_sim.sweep_table import build_table

    out = Path(out_dir)
    validate_points(spec)
    pending = [p for p in spec.points if not is_done(out / "points" / p.point_id)]
    # connect before writing anything: an unreachable scheduler leaves no folder behind
    client = _open_client(scheduler, n_workers, connect_timeout_s) if pending else None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep.json", {
        "name": spec.name, "source": str(spec.source), "base": str(spec.base),
        "description": spec.description, "varied": list(spec.varied),
        "profiles_dir": str(spec.profiles_dir) if spec.profiles_dir else None,
        "points": [{"point_id": p.point_id, "label": p.label, "overrides": p.all_overrides}
                   for p in spec.points],
    })
    failures: list[tuple[str, str]] = []
    console = Console(stderr=True)
    if client is not None:
        from distributed import as_completed

        try:
            with Progress(TextColumn("[bold]sweep {task.description}"), BarColumn(),
                          MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                          disable=not progress) as bar:
                task = bar.add_task(spec.name, total=len(spec.points),
                                    completed=len(spec.points) - len(pending))
                futures = {
                    client.submit(run_point, str(spec.base), p.overrides, p.seed,
                                  str((out / "points" / p.point_id).resolve()),  # worker cwd may differ
                                  key=f"dlora-point-{p.point_id}-{time.time_ns()}", pure=False): p
                    for p in pending
                }
                for future in as_completed(futures):
                    point = futures[future]
                    try:
                        future.result()
                    except Exception as error:  # a failed point must not lose the others
                        failures.append((point.label, f"{type(error).__name__}: {error}"))
                        console.print(f"[red]point {point.point_id} ({point.label}) failed: {error}")
                    bar.advance(task)
        finally:
            _close_client(client, own_cluster=scheduler is None)
    table_path = build_table(spec, out)
    return SweepOutcome(out, table_path, len(spec.points), len(spec.points) - len(pending),
                        len(pending), failures)
