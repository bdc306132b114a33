"""Scenario files: TOML in, a frozen, fully validated :class:`Scenario` out.

Public API (additive changes only; consumers: the engine, sweeps, the ``run`` command):

- ``load_scenario(path, overrides=None) -> Scenario``: overrides are dotted field paths set on
  the raw TOML before validation (``{"job.budget": 8, "fleet.groups.0.count": 50}``).
- ``scenario_from_dict(raw, source=..., base_dir=..., overrides=...)``: the same from a dict.
- ``scenario_from_resolved(resolved)``: back from ``to_resolved_dict()`` / ``scenario.json``.
- ``parse_override("job.budget=8") -> ("job.budget", 8)``: for command-line ``--set``.
- ``Scenario.to_resolved_dict()``: JSON-able, defaults filled, catalog names expanded, paths
  absolute; plus ``job.module_count``, ``job.total_steps``, ``network.kind``.
- Models: ``Scenario`` with ``job: JobConfig`` (``.total_steps``, ``.module_count``,
  ``.load_profile()``, ``.to_job_spec()``), ``fleet: FleetConfig`` (``groups`` of
  ``FleetGroup`` with ``device: DeviceSpec``, ``link: LinkSpec``, ``availability`` one of
  ``AlwaysOn | MarkovOnOff | TraceOnOff`` (``.intervals_for(i)``), ``.access_node``,
  ``bandwidth_trace: BandwidthTraceSpec | None``), ``network: NetworkConfig`` (``.kind``,
  ``link_traces`` of ``LinkTrace``), ``cloud: CloudConfig`` (``.gpu_spec``),
  ``scheduler: SchedulerConfig``, ``run: RunConfig``.

Every error is ``InputError("<file>: <field.path>: <problem>")`` on one line. Relative paths
(profile, trace, GraphML) resolve against the scenario file's folder. The fields, units and
defaults are documented in docs/scenarios.md.
"""

from __future__ import annotations

from dlora_sim.scenario.load import (
    apply_overrides,
    load_scenario,
    parse_override,
    scenario_from_dict,
    scenario_from_resolved,
)
from dlora_sim.scenario.models import (
    AlwaysOn,
    Availability,
    BandwidthTraceSpec,
    CloudConfig,
    DeviceSpec,
    FleetConfig,
    FleetGroup,
    JobConfig,
    LinkSpec,
    LinkTrace,
    MarkovOnOff,
    NetworkConfig,
    RunConfig,
    Scenario,
    SchedulerConfig,
    TraceOnOff,
)

__all__ = [
    "AlwaysOn",
    "Availability",
    "BandwidthTraceSpec",
    "CloudConfig",
    "DeviceSpec",
    "FleetConfig",
    "FleetGroup",
    "JobConfig",
    "LinkSpec",
    "LinkTrace",
    "MarkovOnOff",
    "NetworkConfig",
    "RunConfig",
    "Scenario",
    "SchedulerConfig",
    "TraceOnOff",
    "apply_overrides",
    "load_scenario",
    "parse_override",
    "scenario_from_dict",
    "scenario_from_resolved",
]
