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

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dlora_sim.scenario import _catalog, _files
from dlora_sim.scenario._files import FieldError

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Section(BaseModel):
    """Base of every section: frozen, unknown keys rejected, no silent int→str coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, validate_default=True)


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", Path.cwd()))


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the scenario file's folder (see docs/scenarios.md)."""
    path = Path(path).expanduser()
    return (path if path.is_absolute() else _base_dir(info) / path).resolve()


# --------------------------------------------------------------------------------------- job


class JobConfig(_Section):
    """The fine-tuning job every device in the fleet runs (``[job]``).

    ``steps`` and ``target_accuracy`` are alternatives: with a target, the step count is the
    first evaluated step at which the profile's recorded accuracy reaches it
    (:attr:`total_steps`).
    """

    model: str = "llama-7b"
    peft: Literal["lora", "adapter", "ia3"] = "lora"
    rank: PositiveInt = 8
    targets: tuple[str, ...] = ()
    adapter_size: PositiveInt = 64
    batch: PositiveInt = 4
    seq_len: PositiveInt = 256
    dtype_bytes: Literal[1, 2, 4] = 2
    steps: PositiveInt | None = None
    target_accuracy: Annotated[float, Field(gt=0, le=1)] | None = None
    budget: PositiveInt = 16
    kr_interval_steps: PositiveInt = 50
    kr_warmup_rounds: Annotated[int, Field(ge=0)] = 1
    probe_batch: PositiveInt | None = None
    loss_tokens_per_sample: PositiveInt = 1
    head_out_dim: PositiveInt | None = None
    killed_policy: Literal["offload", "edge-forward"] = "offload"
    head_placement: Literal["edge", "cloud"] = "edge"
    exchange: Literal["activations", "weights"] = "activations"
    profile: Path

    @model_validator(mode="before")
    @classmethod
    def _default_targets(cls, data: Any) -> Any:
        """No ``targets`` → the PEFT method's default (lora q,k,v,o; adapter attn,ffn; ia3 k,v,down)."""
        if isinstance(data, dict) and "targets" not in data and isinstance(data.get("peft", "lora"), str):
            data = {**data, "targets": _catalog.default_targets(data.get("peft", "lora"))}
        return data

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _catalog.check_name("model", name)

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        if not targets:
            raise ValueError("at least one target module kind is needed, e.g. ['q', 'v']")
        if len(set(targets)) != len(targets):
            raise ValueError(f"targets repeat a name: {list(targets)}")
        return targets

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, path: Path, info: ValidationInfo) -> Path:
        path = _resolve(path, info)
        _files.load_profile_cached(path)  # raises ValueError naming the problem
        return path

    @model_validator(mode="after")
    def _consistent(self) -> JobConfig:
        if self.loss_tokens_per_sample > self.seq_len:
            raise FieldError("loss_tokens_per_sample", f"{self.loss_tokens_per_sample} is above seq_len {self.seq_len}")
        if (self.steps is None) == (self.target_accuracy is None):
            raise FieldError("steps", "give exactly one of 'steps' or 'target_accuracy'")
        try:
            n_modules = self.module_count
        except ValueError as error:  # a target the model does not have
            raise FieldError("targets", str(error)) from None
        if self.budget > n_modules:
            raise FieldError(
                "budget",
                f"{self.budget} is above the {n_modules} PEFT modules of {self.model} "
                f"{self.peft} on targets {','.join(self.targets)}; allowed: 1..{n_modules}",
            )
        if self.target_accuracy is not None:
            _files.steps_to_accuracy(self.profile, self.target_accuracy)  # raises if never
        return self

    @property
    def module_count(self) -> int:
        """Number of PEFT modules of this model/PEFT/targets (the cost model's module table)."""
        return _catalog.module_count(self)

    @property
    def total_steps(self) -> int:
        """Training steps per device: ``steps``, or the profile's steps to ``target_accuracy``."""
        if self.steps is not None:
            return self.steps
        assert self.target_accuracy is not None
        return _files.steps_to_accuracy(self.profile, self.target_accuracy)

    def load_profile(self) -> Any:
        """The job's :class:`dlora_sim.profile.Profile` (loaded once per file version)."""
        return _files.load_profile_cached(self.profile)

    def to_job_spec(self, **overrides: Any) -> Any:
        """This job as the cost model's ``JobSpec`` (one source of truth for per-step costs).

        ``overrides`` set ``JobSpec`` fields the scenario does not own, e.g. the KR churn per
        round that the engine derives from the profile (``kr_churn_per_round=...``).
        """
        return _catalog.job_spec(self, **overrides)


# ------------------------------------------------------------------------------------- fleet


class DeviceSpec(_Section):
    """An edge device: a catalog name in TOML becomes this full table after validation."""

    name: str = "inline"
    flops_per_s: PositiveFloat
    memory_bytes: PositiveInt
    joules_per_flop: PositiveFloat


class LinkSpec(_Section):
    """A device's own last-mile link (not shared): bandwidth each way and end-to-end RTT."""

    name: str = "inline"
    up_bps: PositiveFloat
    down_bps: PositiveFloat
    rtt_s: NonNegativeFloat
    jitter_s: NonNegativeFloat = 0.0
    loss_rate: Annotated[float, Field(ge=0, lt=1)] = 0.0


class AlwaysOn(_Section):
    """The device is online for the whole horizon."""

    kind: Literal["always"] = "always"


class MarkovOnOff(_Section):
    """Two-state on/off process with exponential sojourns of the given means."""

    kind: Literal["markov"]
    mean_online_s: PositiveFloat
    mean_offline_s: PositiveFloat
    start_online: bool = True


class TraceOnOff(_Section):
    """Online intervals read from a CSV (``start_s,end_s`` and optionally ``device``).

    Device ``i`` of a group replays trace device ``i mod n`` (sorted trace device ids), so a
    short trace drives a large group; without a ``device`` column all share the intervals.
    Outside every interval the device is offline.
    """

    kind: Literal["trace"]
    file: Path

    @field_validator("file")
    @classmethod
    def _trace_loads(cls, path: Path, info: ValidationInfo) -> Path:
        path = _resolve(path, info)
        _files.load_trace_cached(path)
        return path

    def intervals_for(self, device_index: int) -> tuple[tuple[float, float], ...]:
        """Sorted, non-overlapping online intervals (start_s, end_s) of one group device."""
        traces = _files.load_trace_cached(self.file)
        return traces[device_index % len(traces)]


Availability = Annotated[AlwaysOn | MarkovOnOff | TraceOnOff, Field(discriminator="kind")]


class FleetGroup(_Section):
    """``count`` identical-in-kind devices: same device class, link, region and availability.

    ``compute_spread`` s: each device's FLOP/s is the catalog value times a factor drawn
    uniformly from [1 − s, 1 + s] with the run seed. ``access`` names the shared access
    network the group's devices attach to (groups naming the same one share it).
    """

    name: str
    count: PositiveInt
    device: DeviceSpec
    link: LinkSpec
    compute_spread: Annotated[float, Field(ge=0, lt=1)] = 0.0
    region: str = "region-0"
    access: str | None = None
    availability: Availability = AlwaysOn()

    @field_validator("device", mode="before")
    @classmethod
    def _device_from_catalog(cls, value: Any) -> Any:
        return _catalog.device_table(value) if isinstance(value, str) else value

    @field_validator("link", mode="before")
    @classmethod
    def _link_from_catalog(cls, value: Any) -> Any:
        return _catalog.link_table(value) if isinstance(value, str) else value

    @field_validator("availability", mode="before")
    @classmethod
    def _availability_kind(cls, value: Any) -> Any:
        if isinstance(value, str):  # availability = "always" is accepted as a shorthand
            return {"kind": value}
        return value

    @property
    def access_node(self) -> str:
        """The group's access network id: ``access`` if given, else the group name."""
        return self.access if self.access is not None else self.name


class FleetConfig(_Section):
    """``[fleet]``: one or more ``[[fleet.groups]]`` with unique names."""

    groups: tuple[FleetGroup, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> FleetConfig:
        seen: set[str] = set()
        for index, group in enumerate(self.groups):
            if group.name in seen:
                raise FieldError(f"groups.{index}.name", f"group name {group.name!r} repeats")
            seen.add(group.name)
        return self

    @property
    def device_count(self) -> int:
        return sum(group.count for group in self.groups)


# ----------------------------------------------------------------------------------- network


class NetworkConfig(_Section):
    """``[network]``: the built-in access → region → cloud tree, or a GraphML file.

    Built-in: every access network is one shared link of ``access_capacity_bps`` (each
    direction) to its region, every region one link of ``region_capacity_bps`` to the cloud.
    The latencies are one-way and *added* to each device's own link RTT (twice, once per
    direction); the catalogs' RTTs are end-to-end already, hence the 0 defaults.
    """

    access_capacity_bps: PositiveFloat = 10e9
    access_latency_s: NonNegativeFloat = 0.0
    region_capacity_bps: PositiveFloat = 100e9
    region_latency_s: NonNegativeFloat = 0.0
    graphml: Path | None = None

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
        tiers = {f for f in self.model_fields_set - {"graphml"} if getattr(self, f) != fields[f].default}
        if self.graphml is not None and tiers:
            raise FieldError(
                sorted(tiers)[0], "set either 'graphml' or the built-in tier fields, not both"
            )
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
    usd_per_hour: PositiveFloat | None = None
    batch_max_users: PositiveInt = 8
    batch_window_s: NonNegativeFloat = 0.005

    @field_validator("gpu")
    @classmethod
    def _known_gpu(cls, name: str) -> str:
        return _catalog.check_name("gpu", name)

    @property
    def gpu_spec(self) -> Any:
        """The catalog's ``CloudGPU`` entry (its price replaced by ``usd_per_hour`` if set)."""
        return _catalog.gpu(self.gpu, self.usd_per_hour)


class SchedulerConfig(_Section):
    """``[scheduler]``: how the cloud admits and keeps sessions."""

    admission_limit: PositiveInt | None = None
    checkpoint_interval_steps: PositiveInt = 50
    session_timeout_s: PositiveFloat = 300.0
    queue_capacity: PositiveInt = 1024


class RunConfig(_Section):
    """``[run]``: seed, simulated horizon, strategies compared, and event granularity.

    ``dlora-all`` is the paired baseline of every saving, so it is always simulated: if the
    list omits it, it is added first.
    """

    seed: Annotated[int, Field(ge=0)] = 0
    horizon_s: PositiveFloat = 7 * 24 * 3600.0
    strategies: tuple[str, ...] = ("dlora-all", "dlora-kr")
    granularity: Literal["module", "step"] = "step"
    timeline_sample_devices: Annotated[int, Field(ge=0)] = 8

    @field_validator("strategies")
    @classmethod
    def _known_strategies(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            _catalog.check_name("strategy", name)
        if len(set(names)) != len(names):
            raise ValueError(f"strategies repeat a name: {list(names)}")
        return names if "dlora-all" in names else ("dlora-all", *names)


# ----------------------------------------------------------------------------------- scenario


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

    def to_resolved_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field, defaults filled in, catalog names expanded, paths absolute."""
        data = self.model_dump(mode="json")
        data["job"]["module_count"] = self.job.module_count
        data["job"]["total_steps"] = self.job.total_steps
        data["network"]["kind"] = self.network.kind
        data["cloud"]["usd_per_hour_effective"] = float(self.cloud.gpu_spec.usd_per_hour)
        return data
