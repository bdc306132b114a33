"""Scenario files: shipped ones load, overrides apply, everything resolves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlora_sim.errors import InputError
from dlora_sim.scenario import (
    MarkovOnOff,
    TraceOnOff,
    load_scenario,
    parse_override,
    scenario_from_dict,
    scenario_from_resolved,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
SHIPPED = sorted(SCENARIOS.glob("*.toml"))
DEFAULT = SCENARIOS / "paper-default.toml"


def test_the_five_named_scenarios_are_shipped():
    """The issue names five scenarios; each exists as scenarios/<name>.toml."""
    names = {path.stem for path in SHIPPED}
    assert {"paper-default", "phone-fleet-lte", "rural-3g", "cloud-saturation", "flaky-network"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_resolves_to_json(path):
    """Each shipped scenario validates, and its resolved form survives a JSON round trip."""
    scenario = load_scenario(path)
    resolved = scenario.to_resolved_dict()
    assert json.loads(json.dumps(resolved, allow_nan=False)) == resolved
    assert resolved["name"] == path.stem
    assert Path(resolved["job"]["profile"]).is_absolute()
    assert Path(resolved["job"]["profile"]).is_file()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_resolved_dict_rebuilds_the_same_scenario(path):
    """scenario.json (the resolved dict) loads back to an equal scenario."""
    scenario = load_scenario(path)
    assert scenario_from_resolved(scenario.to_resolved_dict()) == scenario


def test_paper_default_is_the_papers_setup():
    """paper-default: LLaMA-7B, LoRA r=8 on q,k,v,o (128 modules), B=16, a small fleet."""
    scenario = load_scenario(DEFAULT)
    job = scenario.job
    assert (job.model, job.peft, job.rank, job.targets, job.budget) == ("llama-7b", "lora", 8, ("q", "k", "v", "o"), 16)
    assert job.module_count == 128
    assert scenario.fleet.device_count <= 32
    assert {"dlora-all", "dlora-kr"} <= set(scenario.run.strategies)


def test_phone_fleet_has_a_thousand_markov_phones_and_eight_a100s():
    """phone-fleet-lte: 1,000 phones on LTE, all with Markov on/off, 8 A100s."""
    scenario = load_scenario(SCENARIOS / "phone-fleet-lte.toml")
    assert scenario.fleet.device_count == 1000
    assert all(g.link.name == "lte" and isinstance(g.availability, MarkovOnOff) for g in scenario.fleet.groups)
    assert len({g.device.name for g in scenario.fleet.groups}) > 1
    assert (scenario.cloud.gpu, scenario.cloud.count) == ("a100", 8)


def test_overrides_set_fields_and_list_items_before_validation():
    """Dotted overrides reach job fields and fleet groups by index."""
    scenario = load_scenario(DEFAULT, {"job.budget": 8, "fleet.groups.0.count": 50, "run.seed": 7})
    assert scenario.job.budget == 8
    assert scenario.fleet.groups[0].count == 50
    assert scenario.run.seed == 7
    assert load_scenario(DEFAULT).job.budget == 16  # the file itself is untouched


def test_an_override_is_validated_like_the_file():
    """An override with an impossible value is refused with the field it set."""
    with pytest.raises(InputError, match=r"paper-default\.toml: job\.budget: 129 is above the 128"):
        load_scenario(DEFAULT, {"job.budget": 129})


def test_override_can_add_a_missing_table():
    """Overriding into a section the file lacks creates it (here: an inline device)."""
    device = {"flops_per_s": 2e12, "memory_bytes": 8e9, "joules_per_flop": 1e-11}
    scenario = load_scenario(DEFAULT, {"fleet.groups.1.device": device, "scheduler.admission_limit": 3})
    assert scenario.fleet.groups[1].device.flops_per_s == 2e12
    assert scenario.scheduler.admission_limit == 3


def test_override_index_out_of_range_names_the_path():
    """A list index past the end is an error naming the path and the allowed range."""
    with pytest.raises(InputError, match=r"fleet\.groups\.9: override index must be 0\.\.1"):
        load_scenario(DEFAULT, {"fleet.groups.9.count": 1})


def test_parse_override_reads_toml_values():
    """--set values are TOML: numbers, strings, arrays and tables; bare words stay strings."""
    assert parse_override("job.budget=8") == ("job.budget", 8)
    assert parse_override("run.horizon_s = 1e5") == ("run.horizon_s", 1e5)
    assert parse_override("run.strategies=['dlora-kr']") == ("run.strategies", ["dlora-kr"])
    assert parse_override("job.exchange=weights") == ("job.exchange", "weights")
    with pytest.raises(InputError):
        parse_override("job.budget")


def test_catalog_names_expand_to_full_tables():
    """A group's device/link given by catalog name carry the catalog's numbers after loading."""
    from dlora_sim.cost import get_device, get_link

    group = load_scenario(DEFAULT).fleet.groups[0]
    assert group.device.flops_per_s == get_device(group.device.name).flops_per_s
    assert group.link.up_bps == get_link(group.link.name).up_bps


def test_baseline_strategy_is_always_simulated():
    """dlora-all is the paired baseline of every saving, so it is added when a list omits it."""
    scenario = load_scenario(DEFAULT, {"run.strategies": ["dlora-kr"]})
    assert scenario.run.strategies == ("dlora-all", "dlora-kr")


def test_default_targets_follow_the_peft_method():
    """Without targets, adapter gets its own defaults (attn, ffn), not LoRA's."""
    raw = _raw_default()
    del raw["job"]["targets"]
    raw["job"]["peft"] = "adapter"
    scenario = scenario_from_dict(raw, base_dir=SCENARIOS)
    assert scenario.job.targets == ("attn", "ffn")
    assert scenario.job.module_count == 64


def test_target_accuracy_takes_steps_from_the_profile():
    """With target_accuracy, total_steps is the first evaluated step reaching it."""
    base = load_scenario(DEFAULT)
    evals = sorted((e.step, e.accuracy) for e in base.job.load_profile().traces.eval if e.step > 0)
    step, accuracy = evals[-1]
    first = next(s for s, a in evals if a >= accuracy)
    scenario = load_scenario(DEFAULT, {"job.steps": None, "job.target_accuracy": accuracy})
    assert scenario.job.total_steps == first
    assert scenario.to_resolved_dict()["job"]["total_steps"] == first


def test_relative_paths_resolve_against_the_scenario_folder(tmp_path, monkeypatch):
    """The profile path is relative to the scenario file, wherever the command runs from."""
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario(DEFAULT)
    assert scenario.job.profile.parent.name == "profiles"
    assert scenario.job.profile.is_file()


def test_overridden_relative_paths_also_resolve_against_the_scenario_folder(tmp_path, monkeypatch):
    """A --set/sweep override of a path is read relative to the scenario file too."""
    monkeypatch.chdir(tmp_path)
    other = sorted(p for p in (SCENARIOS.parent / "profiles").glob("*.json"))[0]
    scenario = load_scenario(DEFAULT, {"job.profile": f"../profiles/{other.name}"})
    assert scenario.job.profile == other.resolve()


def test_trace_availability_cycles_trace_devices(tmp_path):
    """Group device i replays trace device i mod n; sorted numerically (2 before 10)."""
    trace = tmp_path / "t.csv"
    trace.write_text("device,start_s,end_s\n10,5,6\n2,0,1\n2,3,4\n")
    raw = _raw_default()
    raw["fleet"]["groups"][0]["availability"] = {"kind": "trace", "file": str(trace)}
    availability = scenario_from_dict(raw, base_dir=SCENARIOS).fleet.groups[0].availability
    assert isinstance(availability, TraceOnOff)
    assert availability.intervals_for(0) == ((0.0, 1.0), (3.0, 4.0))
    assert availability.intervals_for(1) == ((5.0, 6.0),)
    assert availability.intervals_for(2) == availability.intervals_for(0)


def test_scenarios_are_frozen():
    """A validated scenario cannot be changed in place (the engine and sweeps share it)."""
    scenario = load_scenario(DEFAULT)
    with pytest.raises(Exception):
        scenario.job.budget = 3  # type: ignore[misc]


def test_job_spec_matches_the_scenario():
    """to_job_spec hands the cost model the same job (one source of truth for step costs)."""
    job = load_scenario(DEFAULT).job
    spec = job.to_job_spec()
    assert (spec.batch, spec.seq_len, spec.budget, spec.steps) == (job.batch, job.seq_len, job.budget, job.total_steps)
    assert spec.table.n_modules == job.module_count


def _raw_default() -> dict:
    import tomllib

    return tomllib.loads(DEFAULT.read_text())
