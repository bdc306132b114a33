"""What ``dlora-sim cost`` prices, read the way ``run`` reads it: a scenario's job on one fleet
group's device and link and the scenario's cloud GPU, or a device and a link written inline.

The cost model prices catalogue hardware by name and hardware of one's own as objects
(:class:`dlora_sim.cost.CostModel`); this module turns the scenario's validated tables into those
objects, so a device or link the simulator accepts (``device = { flops_per_s = 2e12, ... }``) is
priced with exactly its numbers. Inline text is validated by the very fleet-group model a scenario
file goes through, so the rules and the messages are the same.
"""

from __future__ import annotations

import tomllib
from typing import Any

from pydantic import ValidationError

from dlora_sim import cost
from dlora_sim.errors import InputError, first_problem
from dlora_sim.scenario._catalog import job_spec
from dlora_sim.scenario.fleet import FleetGroup

__all__ = ["cost_device", "cost_link", "scenario_inputs", "inline_hardware"]


def cost_device(spec: Any) -> cost.EdgeDevice:
    """A scenario's device table as the cost model's device."""
    return cost.EdgeDevice(name=spec.name, flops_per_s=float(spec.flops_per_s), memory_bytes=int(spec.memory_bytes),
                           joules_per_flop=float(spec.joules_per_flop))


def cost_link(spec: Any) -> cost.Link:
    """A scenario's link table as the cost model's link, its radio power model by
    :func:`dlora_sim.cost.radio_watts` (the catalogue link's of the same name, else none), the
    rule the simulator's fleet and the planner use, so ``cost`` and ``run`` price the same joules."""
    entry = cost.LINKS.get(spec.name)
    radio = dict(zip(cost.RADIO_FIELDS, cost.radio_watts(spec)))
    return cost.Link(name=spec.name, up_bps=float(spec.up_bps), down_bps=float(spec.down_bps),
                     rtt_s=float(spec.rtt_s), source=entry.source if entry is not None else "",
                     data_usd_per_gb=float(spec.data_usd_per_gb), **radio)


def scenario_inputs(scenario: Any, group: str | None = None) -> tuple[cost.JobSpec, cost.EdgeDevice, cost.Link,
                                                                       cost.CloudGPU, str]:
    """The job, device, link and GPU of a loaded scenario, and the group's name.

    Args:
        scenario: a validated scenario (``load_scenario``).
        group: the fleet group whose device and link to price; None: the first.

    Raises:
        InputError: no group of that name (the message lists the groups).
    """
    groups = scenario.fleet.groups
    chosen = groups[0] if group is None else next((g for g in groups if g.name == group), None)
    if chosen is None:
        raise InputError(f"--group {group!r}: no such fleet group; the scenario has {', '.join(g.name for g in groups)}")
    return (job_spec(scenario.job), cost_device(chosen.device), cost_link(chosen.link), scenario.cloud.gpu_spec,
            chosen.name)


def _value(option: str, text: str) -> Any:
    """A catalogue name as it is, or an inline TOML table (``{ flops_per_s = 2e12, ... }``) parsed."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{option}: not a TOML inline table ({error})") from None


def inline_hardware(device: str, link: str) -> tuple[cost.EdgeDevice, cost.Link]:
    """``--device`` and ``--link`` as given: catalogue names or inline tables, validated as a
    scenario's fleet group is (a table naming a catalogue link changes only the fields it gives).

    Raises:
        InputError: ``--device: <field>: <problem>`` or ``--link: ...`` on one line.
    """
    raw = {"name": "cost", "count": 1, "device": _value("--device", device), "link": _value("--link", link)}
    try:
        group = FleetGroup.model_validate(raw)
    except ValidationError as error:
        where = error.errors()[0]["loc"][0]
        problem = first_problem(error).removeprefix(f"{where}.").removeprefix(f"{where}: ")
        raise InputError(f"--{where}: {problem}") from None
    return cost_device(group.device), cost_link(group.link)
