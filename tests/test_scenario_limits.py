"""Issue 10, sizes before work: a fleet or horizon that cannot fit (memory) or cannot finish
(events) is refused by the loader in well under a second, with one line naming the field and the
estimate; ``dlora-sim run`` exits 1 with that line. Every granularity has its own estimator."""

from __future__ import annotations

import time
import typing

import pytest

from _hardening import DEFAULT, SCENARIOS, assert_refused, run_cli
from dlora_sim.errors import InputError
from dlora_sim.scenario import limits, load_scenario
from dlora_sim.scenario.models import RunConfig

GRANULARITIES = typing.get_args(RunConfig.model_fields["granularity"].annotation)
WEEKS_3 = 3 * 7 * 86_400.0
MICRO_OUTAGES = {"fleet.groups.0.availability": {"kind": "markov", "mean_online_s": 1e-6, "mean_offline_s": 1e-6},
                 "run.horizon_s": WEEKS_3}


@pytest.fixture
def limit_8gb(monkeypatch):
    """The same memory limit on every machine, so that the messages are the same."""
    monkeypatch.setattr(limits, "_memory_limit", lambda: (8e9, "a test's limit"))


def _refused(overrides: dict) -> str:
    """The one-line InputError of loading paper-default with ``overrides``, checked fast."""
    started = time.perf_counter()
    with pytest.raises(InputError) as caught:
        load_scenario(DEFAULT, overrides)
    assert time.perf_counter() - started < 1.0, "refused, but only after working on it"
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_every_granularity_has_an_estimator():
    assert set(GRANULARITIES) <= set(limits.ESTIMATORS)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_a_billion_devices_is_refused_by_the_loader_naming_the_count(limit_8gb, granularity):
    message = _refused({"fleet.groups.0.count": 10**9, "run.granularity": granularity})
    assert "fleet.groups.0.count: the run would hold about" in message
    assert "in memory, above the limit of 8.0 GB" in message and "1,000,000,008 devices" in message


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_microsecond_outages_over_weeks_are_refused_by_the_loader_naming_the_availability(limit_8gb, granularity):
    message = _refused({**MICRO_OUTAGES, "run.granularity": granularity})
    assert "fleet.groups.0.availability: the run would" in message
    assert "9.07e+11 outages each within run.horizon_s = 1.8144e+06 s" in message
    assert "mean_online_s + mean_offline_s = 1e-06 + 1e-06 s" in message


def test_segment_holds_no_outage_list_so_microsecond_outages_are_refused_for_their_events(limit_8gb):
    """The segment engine draws outages in blocks as devices reach them: not a memory problem,
    but 5.8e13 state changes, which no day of work would get through."""
    message = _refused({**MICRO_OUTAGES, "run.granularity": "segment"})
    assert "the run would take about 5.8e+13 events (segment granularity), above the limit of" in message
    assert "more than 24 hours even at an assumed 2,000,000 events/s" in message


def test_a_run_that_fits_in_memory_but_not_in_a_day_is_refused_for_its_events(monkeypatch):
    """10 million devices × 1,000 steps × 4 strategies at about 10 SimPy events a device-step."""
    monkeypatch.setattr(limits, "_memory_limit", lambda: (1e18, "a test's limit"))
    message = _refused({"fleet.groups.0.count": 10**7})
    assert message.startswith(f"{DEFAULT}: fleet.groups.0.count: the run would take about 4.0e+11 events "
                              "(step granularity), above the limit of 1.7e+10")
    assert "200,000 events/s" in message and "4.00e+10 device-steps at about 10 events each" in message


def test_module_granularity_counts_events_per_round_trip(monkeypatch):
    """At ``module`` granularity a step is an exchange per PEFT module (128) and two more, each
    about 6 events: a fleet that is fine at ``step`` is refused for its events at ``module``."""
    monkeypatch.setattr(limits, "_memory_limit", lambda: (1e18, "a test's limit"))
    overrides = {"fleet.groups.0.count": 20_000, "run.timeline_sample_devices": 0}
    load_scenario(DEFAULT, overrides)  # step: 8e7 device-steps, 8e8 events
    message = _refused({**overrides, "run.granularity": "module"})
    assert "fleet.groups.0.count: the run would take about 6.3e+10 events (module granularity)" in message
    assert "at about 790 events each" in message


def test_the_estimate_takes_the_granularity_into_account():
    scenario = load_scenario(DEFAULT, {"fleet.groups.0.count": 10_000, "run.timeline_sample_devices": 0})
    by = {g: limits.ESTIMATORS[g](scenario) for g in ("step", "module", "segment")}
    assert by["segment"].total_bytes < by["step"].total_bytes / 100  # O(devices), not O(device-steps)
    assert by["module"].total_events > 50 * by["step"].total_events
    assert by["segment"].total_events < by["step"].total_events / 100


@pytest.mark.parametrize("scenario", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("granularity", [None, "segment"], ids=["as-shipped", "segment"])
def test_shipped_scenarios_fit(limit_8gb, scenario, granularity):
    if granularity == "segment" and "bandwidth_trace" in scenario.read_text():
        # traced links are for the step and module engines: segment refuses them in one line
        with pytest.raises(InputError, match=r"bandwidth_trace: time-varying bandwidth needs granularity"):
            load_scenario(scenario, {"run.granularity": granularity})
        return
    load_scenario(scenario, {"run.granularity": granularity} if granularity else None)


def test_the_memory_limit_is_a_share_of_this_machine():
    limit, source = limits._memory_limit()
    assert limit > 0 and source
    assert limits.memory_limit_bytes() == limit


# -------------------------------------------------------------------------------- through the CLI


def _cli_refused(tmp_path, sets: list[str], *words: str) -> str:
    out = tmp_path / "out"
    started = time.perf_counter()
    args = [a for s in sets for a in ("--set", s)]
    line = assert_refused(run_cli(["run", str(DEFAULT), "-o", str(out), *args, "--no-progress"]), *words)
    assert time.perf_counter() - started < 1.0, "refused, but only after working on it"
    assert not out.exists()
    return line


def test_cli_refuses_a_billion_devices_with_one_line(tmp_path, limit_8gb):
    _cli_refused(tmp_path, ["fleet.groups.0.count=1000000000"],
                 f"{DEFAULT}: fleet.groups.0.count: the run would hold about", "above the limit of 8.0 GB")


@pytest.mark.parametrize("granularity", ["step", "segment"])
def test_cli_refuses_microsecond_outages_over_three_weeks_with_one_line(tmp_path, limit_8gb, granularity):
    _cli_refused(tmp_path, ['fleet.groups.0.availability={kind="markov", mean_online_s=1e-6, mean_offline_s=1e-6}',
                            f"run.horizon_s={WEEKS_3}", f'run.granularity="{granularity}"'],
                 f"{DEFAULT}: fleet.groups.0.availability: the run would", "9.07e+11 outages each")
