"""Issue 14, broken scenarios: each is refused before any work starts, with one line naming the
file and the field (and, for a run too big to hold, the estimate), exit 1, nothing written."""

from __future__ import annotations

import math
import time

import pytest

from _hardening import DEFAULT, SCENARIOS, assert_refused, run_cli, scenario_text, tiny_args
from dlora_sim.errors import InputError
from dlora_sim.io import RESULTS_MARKER
from dlora_sim.scenario import load_scenario
from dlora_sim.sim.results import SimulationResult, write_results


def _refused_run(tmp_path, scenario, sets: list[str], *words: str, within_s: float = 5.0) -> str:
    """`run SCENARIO --set ...` is refused quickly with one line holding ``words``; no OUT."""
    out = tmp_path / "out"
    started = time.perf_counter()
    args = [a for s in sets for a in ("--set", s)]
    line = assert_refused(run_cli(["run", str(scenario), "-o", str(out), *args, "--no-progress"]), *words)
    assert time.perf_counter() - started < within_s, "refused, but only after working on it"
    assert not out.exists()
    return line


# (case, --set overrides of paper-default, words the one line must hold)
OVERRIDES = [
    # tracebacks
    ("bandwidth-underflows", ["fleet.groups.0.link={up_bps=5e-324, down_bps=1e6, rtt_s=0.1}"],
     ["fleet.groups.0.link.up_bps:", "greater than or equal to 1"]),
    ("capacity-underflows", ["network.access_capacity_bps=5e-324"], ["network.access_capacity_bps:"]),
    ("energy-overflows", ["fleet.groups.0.device={flops_per_s=1e12, memory_bytes=8e9, joules_per_flop=1e308}"],
     ["fleet.groups.0.device.joules_per_flop:"]),
    ("horizon-underflows", ["run.horizon_s=5e-324"], ["run.horizon_s:"]),
    ("huge-integer", ["job.steps=" + "9" * 5000], ["job.steps:"]),
    ("set-value-deep-but-parsed", ["job.targets=" + "[" * 40 + "]" * 40], ["job.targets.0.0", "nested"]),
    # hangs with unbounded memory, or a MemoryError after a long wait
    ("steps-10^12", ["job.steps=1000000000000"], ["job.steps:", "memory", "limit", "1,000,000,000,000 steps"]),
    ("devices-10^9", ["fleet.groups.0.count=1000000000"], ["fleet.groups.0.count:", "memory", "limit"]),
    ("microsecond-outages", ['fleet.groups.0.availability={kind="markov", mean_online_s=1e-6, mean_offline_s=1e-6}'],
     ["fleet.groups.0.availability:", "memory", "outages"]),
    ("huge-horizon-minute-outages", ["run.horizon_s=1e15",
                                     'fleet.groups.1.availability={kind="markov", mean_online_s=60, mean_offline_s=60}'],
     ["fleet.groups.1.availability:", "memory", "run.horizon_s = 1e+15"]),
    ("timeline-of-every-device", ["fleet.groups.0.count=100000", "job.steps=100000", "run.timeline_sample_devices=100000"],
     ["memory", "limit"]),
    # accepted though wrong
    ("budget-true", ["job.budget=true"], ["job.budget:", "valid integer"]),
    ("steps-string", ['job.steps="20"'], ["job.steps:", "valid integer", "'20'"]),
    ("seed-true", ["run.seed=true"], ["run.seed:", "valid integer"]),
    ("dtype-true", ["job.dtype_bytes=true"], ["job.dtype_bytes:"]),
    ("spread-string", ['fleet.groups.0.compute_spread="0.1"'], ["fleet.groups.0.compute_spread:"]),
    ("start-online-number", ['fleet.groups.0.availability={kind="markov", mean_online_s=60, mean_offline_s=60, '
                             'start_online=1}'], ["fleet.groups.0.availability.start_online:"]),
    ("rank-above-d-model", ["job.rank=5000"], ["job.rank:", "d_model = 4096"]),
    ("tokens-per-step", ["job.batch=1000000000", "job.seq_len=1000000000"], ["job.batch:", "tokens per step"]),
    ("batch-beyond-2^53", ["job.batch=1000000000000000000"], ["job.batch:"]),
]


@pytest.mark.parametrize(("case", "sets", "words"), OVERRIDES, ids=[o[0] for o in OVERRIDES])
def test_bad_override_is_refused_before_work(tmp_path, case, sets, words):
    _refused_run(tmp_path, DEFAULT, sets, f"{DEFAULT}: ", *words)


def test_set_value_too_deep_for_the_parser_is_one_line(tmp_path):
    _refused_run(tmp_path, DEFAULT, ["job.targets=" + "[" * 5000 + "]" * 5000], "--set job.targets", "nested")


def test_fleet_of_120000_groups_is_refused_with_the_estimate(tmp_path):
    """Path finding grows with groups²; such a fleet is refused before the groups are even read."""
    group = '[[fleet.groups]]\nname = "g{i}"\ncount = 1\ndevice = "laptop"\nlink = "wifi"\nregion = "one"\n'
    text = scenario_text().split("[[fleet.groups]]")[0] + "".join(group.format(i=i) for i in range(120_000))
    text += "\n[run]\nstrategies = [\"dlora-all\"]\n"
    scenario = tmp_path / "many.toml"
    scenario.write_text(text)
    _refused_run(tmp_path, scenario, [], f"{scenario}: fleet.groups:", "120,000 groups", "groups²", within_s=20.0)


def test_deeply_nested_toml_is_one_line(tmp_path):
    scenario = tmp_path / "deep.toml"
    scenario.write_text(scenario_text() + "\n[extra]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    _refused_run(tmp_path, scenario, [], f"{scenario}: ", "nested too deeply")


def test_nesting_below_the_parser_limit_is_one_line(tmp_path):
    scenario = tmp_path / "deep.toml"
    scenario.write_text(scenario_text() + "\n[extra]\nx = " + "[" * 200 + "]" * 200 + "\n")
    _refused_run(tmp_path, scenario, [], f"{scenario}: extra.x.0...", "nested more than")


def test_huge_integer_in_toml_is_one_line(tmp_path):
    scenario = tmp_path / "big.toml"
    scenario.write_text(scenario_text(seed="9" * 5000))
    _refused_run(tmp_path, scenario, [], f"{scenario}: malformed TOML", "4300 digits")


def test_a_problem_in_a_list_item_is_one_problem(tmp_path):
    """A list that fails only because its item failed is not counted as another problem."""
    line = _refused_run(tmp_path, DEFAULT, ["fleet.groups=[1]"], "fleet.groups.0:")
    assert "more problem" not in line


# -------------------------------------------------------------------------------- traces


def _trace_scenario(tmp_path, trace) -> object:
    scenario = tmp_path / "traced.toml"
    scenario.write_text(scenario_text().replace(
        'compute_spread = 0.2', f'compute_spread = 0.2\navailability = {{ kind = "trace", file = "{trace}" }}', 1))
    return scenario


@pytest.mark.parametrize(("content", "words"), [
    (b"start_s,end_s\n0,10\n" + "\u00e9".encode("latin-1") + b",20\n", ["line 3", "not UTF-8"]),
    (b"start_s,end_s\n0," + b"9" * 200_000 + b"\n", ["line", "not readable CSV", "field larger"]),
])
def test_unreadable_trace_names_scenario_field_and_trace_file(tmp_path, content, words):
    trace = tmp_path / "trace.csv"
    trace.write_bytes(content)
    scenario = _trace_scenario(tmp_path, trace)
    _refused_run(tmp_path, scenario, [], f"{scenario}: fleet.groups.0.availability.file:", str(trace), *words)


def test_trace_that_is_a_folder_names_it(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.mkdir()
    scenario = _trace_scenario(tmp_path, trace)
    _refused_run(tmp_path, scenario, [], "fleet.groups.0.availability.file:", f"not a file: {trace}")


def test_graphml_capacity_that_underflows_is_refused(tmp_path):
    graph = (SCENARIOS / "flaky-topology.graphml").read_text()
    broken = tmp_path / "net.graphml"
    start = graph.index('<data key="cap">') + len('<data key="cap">')
    broken.write_text(graph[:start] + "5e-324" + graph[graph.index("<", start):])
    scenario = tmp_path / "net.toml"
    scenario.write_text((SCENARIOS / "flaky-network.toml").read_text().replace("flaky-topology.graphml", str(broken)))
    text = scenario.read_text()
    for relative in ("../profiles/", "traces/"):
        text = text.replace(f'"{relative}', f'"{(SCENARIOS / relative).resolve()}/')
    scenario.write_text(text)
    _refused_run(tmp_path, scenario, [], f"{scenario}: network.graphml:", "capacity_bps must be in [1,")


# ------------------------------------------------------------------------ results writing


def test_non_finite_results_are_refused_before_anything_is_written(tmp_path):
    """Should an input still overflow, the results folder is not written half (nor at all)."""
    scenario = load_scenario(DEFAULT, {"job.steps": 4})
    result = SimulationResult(scenario.to_resolved_dict(), {"strategies": {"dlora-kr": {"energy_j": math.inf}}}, [], [])
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"summary\.json: strategies\.dlora-kr\.energy_j is not a finite number"):
        write_results(result, out)
    assert list(tmp_path.iterdir()) == []


def test_a_small_run_still_completes(tmp_path):
    """The checks refuse what is too big, not what is merely unusual."""
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(DEFAULT), "-o", str(out), *tiny_args(),
                            "--set", "fleet.groups.0.device={flops_per_s=2e12, memory_bytes=8e9, joules_per_flop=6e-12}"])
    assert code == 0, err
    assert (out / RESULTS_MARKER).is_file()
