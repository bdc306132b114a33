"""The scenario as frozen pydantic models: one class per TOML section.

A scenario is the planner's experiment sheet: which fine-tuning job (``[job]``), run by which
devices (``[[fleet.groups]]``), over which network (``[network]``), against which cloud
(``[cloud]``), managed how (``[scheduler]``), compared how (``[run]``). Every model forbids
unknown keys and is frozen, so a validated scenario can be handed to the engine, a sweep worker
or a results file without anyone changing it underneath.

Catalog names (model, device, link, GPU) are resolved here, at the boundary: a group's
``device``/``link`` may be a catalog name or an inline table, and after validation it is always
the full inline form, so the engine reads numbers, never names. Files (profile, availability
traces, GraphML) are resolved against the folder of the scenario file (the validation context's
``base_dir``; the current directory when a model is built in code) and checked when loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dlora_sim.scenario import _catalog, _files, limits
from dlora_sim.scenario._base import (
    MAX_SECONDS,
    BitsPerSecond,
    Lax,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PositiveSeconds,
    Seconds,
    UsdPerHour,
    _resolve,
    _Section,
)
from dlora_sim.scenario._files import FieldError
from dlora_sim.scenario.bandwidth import BandwidthTraceSpec, LinkTrace, segment_problem  # noqa: F401  (re-exported)
from dlora_sim.scenario.fleet import (  # noqa: F401  (re-exported: the scenario's model family)
    AlwaysOn,
    Availability,
    DeviceSpec,
    FleetConfig,
    FleetGroup,
    LinkSpec,
    MarkovOnOff,
    TraceOnOff,
)
from dlora_sim.scenario.job import JobConfig

# ----------------------------------------------------------------------------------- network


class NetworkConfig(_Section):
    """``[network]``: the built-in access → region → cloud tree, or a GraphML file.

    Built-in: every access network is one shared link of ``access_capacity_bps`` (each
    direction) to its region, every region one link of ``region_capacity_bps`` to the cloud.
    The latencies are one-way and *added* to each device's own link RTT (twice, once per
    direction); the catalogs' RTTs are end-to-end already, hence the 0 defaults.
    ``link_traces``: shared links whose capacity follows a bandwidth trace (docs/traces.md).
    """

    access_capacity_bps: BitsPerSecond = 10e9
    access_latency_s: Seconds = 0.0
    region_capacity_bps: BitsPerSecond = 100e9
    region_latency_s: Seconds = 0.0
    graphml: Annotated[Path | None, Lax] = None
    link_traces: Annotated[tuple[LinkTrace, ...], Lax] = ()

    @field_validator("graphml")
    @classmethod
    def _graphml_loads(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        path = _resolve(path, info)
        _files.load_graphml_cached(path)
        return path

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkConfig:
        fields = type(self).model_fields
        tiers = {f for f in self.model_fields_set - {"graphml", "link_traces"}
                 if getattr(self, f) != fields[f].default}
        if self.graphml is not None and tiers:
            raise FieldError(
                sorted(tiers)[0], "set either 'graphml' or the built-in tier fields, not both"
            )
        for index, trace in enumerate(self.link_traces):
            selector = trace.selector
            if (selector == "edge") != (self.graphml is not None):
                raise FieldError(f"link_traces.{index}.{selector}",
                                 "a GraphML network names its links by edge = [\"<node>\", \"<node>\"]"
                                 if self.graphml is not None else
                                 "the built-in network names its links by access or region; edge is for GraphML")
        return self

    @property
    def kind(self) -> Literal["builtin", "graphml"]:
        return "builtin" if self.graphml is None else "graphml"

    def load_graph(self) -> Any:
        """A fresh copy of the validated GraphML graph (``networkx.Graph``); None if built-in."""
        if self.graphml is None:
            return None
        return _files.load_graphml_cached(self.graphml).copy()


# ------------------------------------------------------------------------- cloud, scheduler, run


class CloudConfig(_Section):
    """``[cloud]``: the GPU pool serving every session's frozen base model."""

    gpu: str = "a100"
    count: PositiveInt = 1
    usd_per_hour: UsdPerHour | None = None
    batch_max_users: PositiveInt = 8
    batch_window_s: Seconds = 0.005
    memory_gib: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None  # up to 10^6 GiB
    memory_full: Literal["queue", "recompute"] = "queue"

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, name: str) -> str:
        return _catalog.check_name("gpu", name)

    @property
    def gpu_spec(self) -> Any:
        """The catalog's ``CloudGPU`` entry (price and memory replaced by ``usd_per_hour`` and
        ``memory_gib`` where set)."""
        return _catalog.gpu(self.gpu, self.usd_per_hour, self.memory_gib)


class SchedulerConfig(_Section):
    """``[scheduler]``: how the cloud admits and keeps sessions."""

    admission_limit: PositiveInt | None = None
    checkpoint_interval_steps: PositiveInt = 50
    session_timeout_s: PositiveSeconds = 300.0
    queue_capacity: PositiveInt = 1024


class RunConfig(_Section):
    """``[run]``: seed, simulated horizon, strategies compared, and event granularity.

    ``dlora-all`` is the paired baseline of every saving, so it is always simulated: if the
    list omits it, it is added first.
    """

    seed: NonNegativeInt = 0
    horizon_s: Annotated[float, Field(ge=1.0, le=MAX_SECONDS, allow_inf_nan=False)] = 7 * 24 * 3600.0
    strategies: Annotated[tuple[str, ...], Lax] = ("dlora-all", "dlora-kr")
    granularity: Literal["module", "step", "segment"] = "step"
    timeline_sample_devices: NonNegativeInt = 8
    #: processes that simulate the strategies side by side (same results; about 1/workers of the
    #: wall time on as many free cores, each process holding its own copy of the fleet)
    workers: Annotated[int, Field(ge=1, le=64)] = 1

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            _catalog.check_name("strategy", name)
        if len(set(names)) != len(names):
            raise ValueError(f"strategies repeat a name: {list(names)}")
        return names if "dlora-all" in names else ("dlora-all", *names)


# ----------------------------------------------------------------------------------- scenario

#: a scenario name is the default results folder's name (``results/<name>``), so never a path
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def name_from_file(stem: str) -> str:
    """The default name, from the scenario file's name: what a name may not hold becomes '-'."""
    name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", stem)).lstrip("._-")[:100]
    return name or "scenario"


class Scenario(_Section):
    """A whole validated scenario. Build it with :func:`dlora_sim.scenario.load_scenario`."""

    name: str = "scenario"
    description: str = ""
    job: JobConfig
    fleet: FleetConfig
    network: NetworkConfig = NetworkConfig()
    cloud: CloudConfig = CloudConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    run: RunConfig = RunConfig()

    @field_validator("name")
    @classmethod
    def _name_is_not_a_path(cls, name: str) -> str:
        if not NAME_PATTERN.fullmatch(name) or ".." in name:
            raise ValueError(f"{name!r} is not a name: it names the results folder, so it takes 1 to 100 "
                             "letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'")
        return name

    @model_validator(mode="after")
    def _graph_reaches_groups(self) -> Scenario:
        if self.network.graphml is None:
            regions: dict[str, str] = {}
            for index, group in enumerate(self.fleet.groups):
                other = regions.setdefault(group.access_node, group.region)
                if other != group.region:
                    raise FieldError(
                        f"fleet.groups.{index}.region",
                        f"access network {group.access_node!r} is already in region {other!r}",
                    )
            return self
        graph = _files.load_graphml_cached(self.network.graphml)
        for index, group in enumerate(self.fleet.groups):
            problem = _files.graphml_reach_problem(graph, group.access_node)
            if problem:
                raise FieldError(f"fleet.groups.{index}.access", problem)
        return self

    @model_validator(mode="after")
    def _link_traces_name_links(self) -> Scenario:
        """Every traced shared link exists (and is traced once); no traced link under ``segment``."""
        seen: dict[object, int] = {}
        accesses = {group.access_node for group in self.fleet.groups}
        regions = {group.region for group in self.fleet.groups}
        graph = _files.load_graphml_cached(self.network.graphml) if self.network.graphml is not None else None
        for index, trace in enumerate(self.network.link_traces):
            selector = trace.selector
            where = f"network.link_traces.{index}.{selector}"
            if selector == "access" and trace.access not in accesses:
                raise FieldError(where, f"no fleet group attaches to access network {trace.access!r}; "
                                        f"known: {', '.join(sorted(accesses))}")
            if selector == "region" and trace.region not in regions:
                raise FieldError(where, f"no fleet group is in region {trace.region!r}; known: {', '.join(sorted(regions))}")
            if selector == "edge":
                u, v = trace.edge  # type: ignore[misc]
                if graph is None or not graph.has_edge(u, v):
                    raise FieldError(where, f"the GraphML topology has no edge between {u!r} and {v!r}")
            key = (selector, frozenset(trace.edge) if selector == "edge" else getattr(trace, selector))
            if key in seen:
                raise FieldError(where, f"the same link is traced by network.link_traces.{seen[key]} already")
            seen[key] = index
        problem = segment_problem(self)
        if problem is not None:
            raise FieldError(*problem)
        return self

    @model_validator(mode="after")
    def _fits_in_memory(self) -> Scenario:
        """Refuse now what would exhaust memory later (see :mod:`dlora_sim.scenario.limits`)."""
        problem = limits.memory_problem(self)
        if problem is not None:
            raise FieldError(*problem)
        return self

    def to_resolved_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field, defaults filled in, catalog names expanded, paths absolute."""
        data = self.model_dump(mode="json")
        data["job"]["module_count"] = self.job.module_count
        data["job"]["total_steps"] = self.job.total_steps
        data["network"]["kind"] = self.network.kind
        data["cloud"]["usd_per_hour_effective"] = float(self.cloud.gpu_spec.usd_per_hour)
        return data
