"""Fuzz (issue 14): structured mutations of the shipped scenarios, of a profile and of a results
folder, through the real command line.

Whatever the mutation, the command ends in one of two ways: exit 0 with its complete output, or
exit 1 with one line (no traceback) and no output at all; nothing outside ``-o`` is touched
(the inputs included), and memory stays bounded. Examples are few and cheap (every scenario is
first shrunk to one device per group and three steps), so the whole module stays well under a
minute on two cores; ``tests/test_scenario_fuzz.py`` fuzzes single fields far more often, in
process.
"""

from __future__ import annotations

import json
import resource
import shutil
import tomllib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _hardening import PROFILE, SCENARIOS, run_cli, snapshot, tiny_args, toml_value
from dlora_sim.io import RESULTS_MARKER
from dlora_sim.report.data import RUN_FILES

SHIPPED = sorted(SCENARIOS.glob("*.toml"))
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

#: values that break something somewhere: wrong types, edges of every range, overflow and
#: underflow, markup, paths, nesting, and a few valid ones so that some runs succeed
VALUES = st.sampled_from([
    True, False, 0, -1, 1, 3, 2**53, 2**53 + 1, 10**400, 5e-324, 1e-9, 0.5, 1e308, float("inf"),
    float("nan"), -0.0, "", "x", "20", "[/bold]", "<a href='https://x'>y</a>", "../../x", "/tmp",
    [], [1, "a"], [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    {"x": 1}, {"kind": "markov", "mean_online_s": 1e-6, "mean_offline_s": 1e-6},
    {"kind": "trace", "file": "/nonexistent.csv"}, {"up_bps": 5e-324, "down_bps": 1e6, "rtt_s": 0.1},
    "lte", "a100", "phone-mid", "llama-13b", "dlora-kr", "module", "weights", "adapter",
    2, 8, 16, 0.1, 60.0, 256, "wifi", "laptop", "q", ["q", "v"], ["dlora-all", "dlora-random"],
    ["cloud-only", "edge-only"], "step", "activations", "h100", "region-1",
])
FIELDS = st.sampled_from([
    "name", "description", "job", "job.model", "job.peft", "job.rank", "job.targets", "job.adapter_size",
    "job.batch", "job.seq_len", "job.dtype_bytes", "job.steps", "job.target_accuracy", "job.budget",
    "job.kr_interval_steps", "job.kr_warmup_rounds", "job.probe_batch", "job.loss_tokens_per_sample",
    "job.head_out_dim", "job.exchange", "job.profile", "fleet.groups", "fleet.groups.0.count",
    "fleet.groups.0.device", "fleet.groups.0.link", "fleet.groups.0.compute_spread", "fleet.groups.0.region",
    "fleet.groups.0.access", "fleet.groups.0.availability", "network.access_capacity_bps", "network.graphml",
    "cloud.gpu", "cloud.count", "cloud.usd_per_hour", "cloud.batch_window_s", "scheduler.admission_limit",
    "scheduler.session_timeout_s", "scheduler.checkpoint_interval_steps", "run", "run.seed", "run.horizon_s",
    "run.strategies", "run.granularity", "run.timeline_sample_devices",
])


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    """Refusing what is too big is the point: the fuzzed runs raise the process's peak memory by
    less than 1 GB (measured as the growth of the peak, so earlier tests in the session count)."""
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib
    assert grown_kib < 1024**2, f"peak memory grew by {grown_kib / 1024**2:.1f} GB"


def _shrink(scenario: Path) -> list[str]:
    """``--set`` options that make a shipped scenario tiny: one device per group, three steps."""
    raw = tomllib.loads(scenario.read_text())
    sets = [f"fleet.groups.{i}.count=1" for i in range(len(raw["fleet"]["groups"]))]
    sets += ["job.steps=3", "job.kr_interval_steps=1"]
    return [a for s in sets for a in ("--set", s)] + ["--no-progress"]


def _check_outcome(result: tuple[int, str, str], written: Path, complete: list[str]) -> None:
    """Exit 0 with ``written`` complete, or exit 1 with one line and nothing written."""
    code, out, err = result
    assert "Traceback" not in out + err, err
    if code == 0:
        assert all((written / name).is_file() for name in complete) if complete else written.is_file(), err
        return
    assert code == 1, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not written.exists(), "a refused command left output behind"


@FUZZ
@given(scenario=st.sampled_from(SHIPPED), mutation=st.none() | st.tuples(FIELDS, VALUES),
       truncate=st.sampled_from([None, None, None, None]) | st.integers(0, 4000))
def test_mutated_shipped_scenario_runs_or_is_one_line(tmp_path_factory, scenario, mutation, truncate):
    """A shipped scenario with one field set to an odd value (or its file cut short) runs whole
    or is refused in one line; only ``-o`` changes."""
    root = tmp_path_factory.mktemp("fuzz-run")
    sandbox = root / "scenarios"
    sandbox.mkdir()
    source = sandbox / scenario.name
    text = scenario.read_text()
    source.write_text(text[:truncate] if truncate is not None else text)
    for name in ("traces", "flaky-topology.graphml"):  # what the shipped scenarios point at
        target = SCENARIOS / name
        (sandbox / name).symlink_to(target, target_is_directory=target.is_dir())
    (root / "profiles").symlink_to(PROFILE.parent, target_is_directory=True)  # their ../profiles/
    out = sandbox / "out"
    before = snapshot(sandbox)
    change = ["--set", f"{mutation[0]}={toml_value(mutation[1])}"] if mutation else []
    result = run_cli(["run", str(source), "-o", str(out), *_shrink(scenario), *change])
    _check_outcome(result, out, [*RUN_FILES, RESULTS_MARKER])
    assert {k: v for k, v in snapshot(sandbox).items() if not k.startswith("out")} == before


# ------------------------------------------------------------------------ results folders


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "pd"
    code, _, err = run_cli(["run", str(SCENARIOS / "paper-default.toml"), "-o", str(out), *tiny_args()])
    assert code == 0, err
    return out


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (containers and leaves), as tuples of keys and indices."""
    found = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _paths(child, (*prefix, key))
    return found


def _mutate_json(data: object, path: tuple, action: str, value: object) -> object:
    """``data`` with the node at ``path`` replaced by ``value``, deleted, or wrapped in a list."""
    if not path:
        return value if action != "wrap" else [data]
    parent = data
    for key in path[:-1]:
        parent = parent[key]  # type: ignore[index]
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value if action != "wrap" else [parent[path[-1]]]  # type: ignore[index]
    return data


def _damage_parquet(path: Path, how: str, column_index: int) -> None:
    table = pq.read_table(path)
    name = table.column_names[column_index % table.num_columns]
    if how == "drop":
        table = table.drop([name])
    elif how == "as-text":
        table = table.set_column(table.column_names.index(name), name, table.column(name).cast("string"))
    elif how == "empty":
        table = table.slice(0, 0)
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        pq.write_table(table, path)


@FUZZ
@given(data=st.data())
def test_mutated_results_folder_draws_or_is_one_line(results, tmp_path_factory, data):
    """`dashboard` on a results folder with one damaged file: a page, or one line and no page;
    the results folder itself is never changed."""
    folder = tmp_path_factory.mktemp("damaged") / "pd"
    shutil.copytree(results, folder)
    name = data.draw(st.sampled_from([*RUN_FILES, RESULTS_MARKER]))
    path = folder / name
    if name.endswith(".parquet"):
        _damage_parquet(path, data.draw(st.sampled_from(["drop", "as-text", "empty", "truncate"])),
                        data.draw(st.integers(0, 40)))
    elif data.draw(st.booleans()):
        record = json.loads(path.read_text())
        where = data.draw(st.sampled_from(_paths(record)))
        action = data.draw(st.sampled_from(["replace", "delete", "wrap"]))
        path.write_text(json.dumps(_mutate_json(record, where, action, data.draw(VALUES))))
    else:
        path.write_bytes(path.read_bytes()[: data.draw(st.integers(0, 200))])
    before = snapshot(folder)
    page = folder.parent / "page.html"
    result = run_cli(["dashboard", str(folder), "-o", str(page), "--profile", str(PROFILE)])
    _check_outcome(result, page, [])
    assert snapshot(folder) == before


# ------------------------------------------------------------------------------- profiles


@FUZZ
@given(data=st.data())
def test_mutated_profile_tables_and_draws_or_is_one_line(results, tmp_path_factory, data):
    """A profile with one field damaged: `profiles table` prints it or refuses in one line, and
    `dashboard --profile` draws it or refuses in one line without writing a page."""
    folder = tmp_path_factory.mktemp("prof")
    path = folder / PROFILE.name
    record = json.loads(PROFILE.read_text())
    if data.draw(st.booleans()):
        where = data.draw(st.sampled_from(_paths(record)))
        action = data.draw(st.sampled_from(["replace", "delete", "wrap"]))
        path.write_text(json.dumps(_mutate_json(record, where, action, data.draw(VALUES))))
    else:
        path.write_text(PROFILE.read_text()[: data.draw(st.integers(0, 5000))])
    before = snapshot(folder)
    code, out, err = run_cli(["profiles", "table", str(folder)])
    assert "Traceback" not in out + err
    assert code == 0 or (code == 1 and len(err.strip().splitlines()) == 1 and out == ""), err
    page = folder.parent / f"{folder.name}.html"
    _check_outcome(run_cli(["dashboard", str(results), "-o", str(page), "--profile", str(path)]), page, [])
    assert snapshot(folder) == before
