"""Sweeps run real paired simulations on a local Dask cluster, resumably; helpers for other sweep tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import importlib.util

import pyarrow.parquet as pq
import pytest

from dlora_sim.sweep import MARKER, load_spec, run_sweep

# a mark, not importorskip: the helpers below serve the spec tests too, which need no Dask
pytestmark = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="sweeps run on Dask: pip install 'dlora-sim[scale]'")

REPO = Path(__file__).resolve().parents[1]


def any_profile() -> Path:
    """A committed MiniLM profile for the tiny scenarios (the simulator replays its KR schedule)."""
    for path in sorted((REPO / "profiles").glob("*.json")):
        if "minilm" in path.read_text(encoding="utf-8")[:4000].lower():
            return path
    pytest.skip("no MiniLM profile committed under profiles/")


def tiny_base(folder: Path, steps: int = 20) -> Path:
    """Write a tiny scenario (a few phones, MiniLM, tens of steps) as folder/tiny.toml; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "tiny.toml"
    base.write_text(f"""
[job]
model = "minilm-l6"
targets = ["q", "k", "v", "o"]
batch = 4
seq_len = 64
steps = {steps}
budget = 3
kr_interval_steps = 5
profile = "{any_profile()}"

[[fleet.groups]]
name = "phones"
count = 2
device = "phone-mid"
link = "lte"
compute_spread = 0.2

[run]
seed = 0
horizon_s = 86400
strategies = ["dlora-all", "dlora-kr"]
timeline_sample_devices = 1
""")
    return base


def tiny_sweep(folder: Path, budgets=(2, 3), counts=(2, 3), steps: int = 20, seeds=None) -> Path:
    """Write a tiny scenario and a sweep over its budget and fleet size; return the spec."""
    tiny_base(folder, steps)
    spec = folder / "sweep.toml"
    seed_line = f"seeds = {list(seeds)}" if seeds else ""
    spec.write_text(f"""
base = "tiny.toml"
{seed_line}
[grid]
"job.budget" = {list(budgets)}
"fleet.groups.0.count" = {list(counts)}
""")
    return spec


def numbers(table_path: Path) -> list[dict]:
    """The sweep table without its wall-clock column, sorted, NaN made comparable: what must reproduce."""
    rows = pq.read_table(table_path).drop(["point_wall_s"]).to_pylist()
    rows = [{k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]
    return sorted(rows, key=lambda r: (r["point_id"], r["strategy"]))


def test_local_sweep_writes_every_point_and_one_table(tmp_path):
    """Each point gets a results folder and a marker; the table has one row per point and strategy."""
    spec = load_spec(tiny_sweep(tmp_path / "in"))
    outcome = run_sweep(spec, tmp_path / "out", n_workers=1, progress=False)
    assert (outcome.n_points, outcome.n_run, outcome.failures) == (4, 4, [])
    for point in spec.points:
        folder = tmp_path / "out" / "points" / point.point_id
        assert (folder / "results" / "summary.json").is_file()
        record = json.loads((folder / MARKER).read_text())
        assert record["overrides"] == point.all_overrides
    rows = numbers(outcome.table_path)
    assert len(rows) == 8 and {r["strategy"] for r in rows} == {"dlora-all", "dlora-kr"}
    assert {(r["job.budget"], r["devices"]) for r in rows} == {(2, 2), (2, 3), (3, 2), (3, 3)}
    assert all(r["budget"] == r["job.budget"] for r in rows)

    again = run_sweep(spec, tmp_path / "out", n_workers=1, progress=False)
    assert (again.n_run, again.n_skipped) == (0, 4)
    assert numbers(again.table_path) == rows


def test_a_sweep_of_the_new_strategies_tabulates_and_draws_them(tmp_path):
    """split-lora, fed-lora and edge-only-int4 run in a sweep; the table and the page show them."""
    from dlora_sim.report.dashboard import build_dashboard

    spec_path = tiny_sweep(tmp_path / "in", budgets=(2,), counts=(2,))
    base = tmp_path / "in" / "tiny.toml"
    base.write_text(base.read_text().replace('strategies = ["dlora-all", "dlora-kr"]',
                                             'strategies = ["dlora-all", "split-lora", "fed-lora", "edge-only-int4"]'))
    outcome = run_sweep(load_spec(spec_path), tmp_path / "out", n_workers=1, progress=False)
    assert outcome.failures == []
    names = {r["strategy"] for r in numbers(outcome.table_path)}
    assert names == {"dlora-all", "split-lora", "fed-lora", "edge-only-int4"}
    page = build_dashboard(tmp_path / "out", tmp_path / "sweep.html").read_text(encoding="utf-8")
    assert all(f'"{name}"' in page for name in names)  # each row of the points table


def test_sweep_point_equals_a_plain_run(tmp_path):
    """A sweep point's summary is exactly what load_scenario + simulate give for its overrides and seed."""
    from dlora_sim.scenario import load_scenario
    from dlora_sim.sim import simulate

    spec = load_spec(tiny_sweep(tmp_path / "in", budgets=(2,), counts=(2,), seeds=(3,)))
    run_sweep(spec, tmp_path / "out", n_workers=1, progress=False)
    (point,) = spec.points
    written = json.loads((tmp_path / "out" / "points" / point.point_id / "results" / "summary.json").read_text())
    direct = simulate(load_scenario(spec.base, point.all_overrides)).summary
    assert written == json.loads(json.dumps(direct))
    assert written["seed"] == point.seed == 3


def test_bad_point_field_fails_before_running(tmp_path):
    """A grid value the scenario rejects is one InputError naming the point and field when the spec
    loads, before any cluster starts."""
    from dlora_sim.errors import InputError

    with pytest.raises(InputError, match=r"sweep\.toml: point job\.budget=99.*tiny\.toml: job\.budget"):
        load_spec(tiny_sweep(tmp_path / "in", budgets=(2, 99), counts=(2,)))
