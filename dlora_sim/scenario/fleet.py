"""``[[fleet.groups]]``: the devices, their own links and when they are online."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dlora_sim.scenario import _catalog, _files, limits
from dlora_sim.scenario._base import (
    BitsPerSecond,
    FlopsPerSecond,
    Fraction,
    JoulesPerFlop,
    Lax,
    MeanSeconds,
    PositiveInt,
    Seconds,
    UsdPerGb,
    _resolve,
    _Section,
)
from dlora_sim.scenario._files import FieldError
from dlora_sim.scenario.bandwidth import BandwidthTraceSpec
from dlora_sim.traces.capacity import DeviceCapacity, load_capacity


class DeviceSpec(_Section):
    """An edge device: a catalog name in TOML becomes this full table after validation."""

    name: str = "inline"
    flops_per_s: FlopsPerSecond
    memory_bytes: PositiveInt
    joules_per_flop: JoulesPerFlop


class LinkSpec(_Section):
    """A device's own last-mile link (not shared): bandwidth each way and end-to-end RTT.

    ``data_usd_per_gb``: what the user's plan charges per GB moved (the catalogue's cellular
    links: $6.00, Wi-Fi and fibre: 0); the results price every device's traffic with it.
    """

    name: str = "inline"
    up_bps: BitsPerSecond
    down_bps: BitsPerSecond
    rtt_s: Seconds
    jitter_s: Seconds = 0.0
    loss_rate: Fraction = 0.0
    data_usd_per_gb: UsdPerGb = 0.0


class AlwaysOn(_Section):
    """The device is online for the whole horizon."""

    kind: Literal["always"] = "always"


class MarkovOnOff(_Section):
    """Two-state on/off process with exponential sojourns of the given means."""

    kind: Literal["markov"]
    mean_online_s: MeanSeconds
    mean_offline_s: MeanSeconds
    start_online: bool = True


class TraceOnOff(_Section):
    """Online intervals read from a CSV (``start_s,end_s`` and optionally ``device``).

    Device ``i`` of a group replays trace device ``i mod n`` (sorted trace device ids), so a
    short trace drives a large group; without a ``device`` column all share the intervals.
    Outside every interval the device is offline.
    """

    kind: Literal["trace"]
    file: Annotated[Path, Lax]

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
    ``capacity_trace``: a device-capacity trace (docs/traces.md); each device of the group is a
    trace device drawn with the run seed, whose FLOP/s, memory and bandwidths replace the
    catalog device's and link's (the link keeps its RTT, jitter and loss; no compute spread).
    ``bandwidth_trace``: the devices' own links follow bandwidth traces over time, per direction
    (docs/traces.md); a traced direction's rate replaces the link's (and a capacity trace's).
    """

    name: str
    count: PositiveInt
    device: DeviceSpec
    link: LinkSpec
    compute_spread: Fraction = 0.0
    region: str = "region-0"
    access: str | None = None
    availability: Availability = AlwaysOn()
    capacity_trace: Annotated[Path | None, Lax] = None
    bandwidth_trace: BandwidthTraceSpec | None = None

    @field_validator("device", mode="before")
    @classmethod
    def _device_from_catalog(cls, value: Any) -> Any:
        return _catalog.device_table(value) if isinstance(value, str) else value

    @field_validator("link", mode="before")
    @classmethod
    def _link_from_catalog(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _catalog.link_table(value)
        # a table naming a catalogue link changes only the fields it gives, e.g.
        # link = { name = "lte", data_usd_per_gb = 2.5 }
        if isinstance(value, dict) and _catalog.is_catalog_link(value.get("name")):
            return {**_catalog.link_table(value["name"]), **value}
        return value

    @field_validator("capacity_trace")
    @classmethod
    def _capacity_loads(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        path = _resolve(path, info)
        load_capacity(path)  # raises ValueError naming the file, row and column
        return path

    def capacities(self) -> tuple[DeviceCapacity, ...]:
        """The devices of the group's capacity trace (empty without one)."""
        return load_capacity(self.capacity_trace) if self.capacity_trace is not None else ()

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

    groups: Annotated[tuple[FleetGroup, ...], Lax] = Field(min_length=1)

    @field_validator("groups", mode="before")
    @classmethod
    def _not_too_many(cls, groups: Any) -> Any:
        """Refused before the groups themselves are validated: that alone would take long."""
        problem = limits.too_many_groups(len(groups)) if isinstance(groups, (list, tuple)) else None
        if problem:
            raise ValueError(problem)
        return groups

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
