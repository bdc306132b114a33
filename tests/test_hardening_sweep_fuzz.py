"""Issue 14, fuzzed: any sweep file is a spec or one InputError line; any damage to a finished
sweep folder leaves a table of exactly the intact points (which a rerun then completes).

Bounded in time: one cluster start, to finish the sweep that is then damaged (the rerun that
recomputes damaged points is tested in test_hardening_sweep.py), and a few dozen examples each.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlora_sim.errors import InputError
from dlora_sim.sweep import MARKER, SPEC_KEYS, load_spec, read_marker

from test_sweep_run import tiny_base  # tests/ is on sys.path


def toml_value(value) -> str:
    """A TOML literal for a JSON-like value (inline tables and arrays; no TOML library needed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):  # JSON escapes are TOML's, except that TOML escapes DEL too
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


FIELD_PATHS = ["job.budget", "job.budget", "job.steps", "run.seed", "fleet.groups.0.count", "fleet.groups.0.link",
               "fleet.groups.0", "job", "run.strategies", "x.y", "", "job..budget", "fleet.groups.9"]
SCALARS = st.one_of(st.booleans(), st.integers(-3, 30), st.floats(allow_nan=True),
                    st.text(max_size=6), st.sampled_from(["lte", "5g", "dlora-kr", "base.toml"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["up_bps", "down_bps", "rtt_s", "budget", "0", "x"]), inner, max_size=3),
    max_leaves=5)
TABLES = st.dictionaries(st.sampled_from(FIELD_PATHS), VALUES, max_size=3)
GOOD_NUMBERS = st.lists(st.integers(1, 30), min_size=1, max_size=3)
#: the shape of a sweep file right, its field paths and values anything: these reach the points
WELL_FORMED = st.fixed_dictionaries(
    {"base": st.just("base.toml"),
     "grid": st.dictionaries(st.sampled_from(FIELD_PATHS), GOOD_NUMBERS | st.lists(VALUES, max_size=3),
                             min_size=1, max_size=2)},
    optional={"points": st.lists(TABLES, max_size=2), "seeds": GOOD_NUMBERS, "fixed": TABLES})
#: any key of a sweep file, right or wrong
ANY_SHAPE = st.fixed_dictionaries(
    {"base": st.sampled_from(["base.toml", "absent.toml", 3])},
    optional={"name": st.text(max_size=4) | st.integers(),
              "description": st.text(max_size=6) | st.booleans(),
              "seeds": st.lists(st.integers(-1, 3) | st.booleans(), max_size=3) | st.integers(),
              "fixed": TABLES | st.integers(),
              "grid": st.dictionaries(st.sampled_from(FIELD_PATHS), VALUES, max_size=2)
                      | st.text(max_size=3),
              "points": st.lists(TABLES, max_size=2) | st.integers(),
              "profiles": st.sampled_from(["..", "profiles", ""]) | st.integers()})


@pytest.fixture(scope="module")
def spec_folder(tmp_path_factory) -> Path:
    """A folder holding the tiny scenario as base.toml, for the fuzzed sweep files beside it."""
    folder = tmp_path_factory.mktemp("fuzz-spec")
    tiny_base(folder).rename(folder / "base.toml")
    return folder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(raw=WELL_FORMED | ANY_SHAPE)
def test_any_sweep_file_is_a_spec_or_one_line_naming_it(spec_folder, raw):
    """No other exception escapes load_spec; an error is one line that starts with the file."""
    path = spec_folder / "spec.toml"
    path.write_text("".join(f"{toml_value(k)} = {toml_value(v)}\n" for k, v in raw.items()))
    try:
        spec = load_spec(path)
    except InputError as error:
        message = str(error)
        assert message.startswith(f"{path}: ") and "\n" not in message
        field = re.split(r"[.: ]", message.removeprefix(f"{path}: "))[0]
        assert field in {*SPEC_KEYS, "unknown", "point", "malformed"}
    else:
        assert spec.points and len({p.point_id for p in spec.points}) == len(spec.points)


DAMAGE = ["intact", "truncate", "garbage", "not-a-record", "wrong-id", "no-marker", "no-results",
          "no-summary"]


def damage(point_dir: Path, how: str, cut: int) -> None:
    """Damage one finished point folder the way a crash, a disk or a user might."""
    marker = point_dir / MARKER
    if how == "truncate":
        text = marker.read_bytes()  # at least the closing brace goes (the newline alone is no damage)
        marker.write_bytes(text[:cut % (len(text) - 1)])
    elif how == "garbage":
        marker.write_bytes(bytes(range(cut % 256, 256)))
    elif how == "not-a-record":
        marker.write_text(json.dumps({"point_id": point_dir.name, "strategies": [1], "scenario": 2}))
    elif how == "wrong-id":
        record = json.loads(marker.read_text())
        marker.write_text(json.dumps({**record, "point_id": "0" * 12}))
    elif how == "no-marker":
        marker.unlink()
    elif how == "no-results":
        shutil.rmtree(point_dir / "results")
    elif how == "no-summary":
        (point_dir / "results" / "summary.json").unlink()


@pytest.fixture(scope="module")
def finished_folder(tmp_path_factory):
    """A finished two-point sweep, run once (the one cluster start of this module)."""
    pytest.importorskip("distributed")
    from dlora_sim.sweep import run_sweep
    from test_sweep_run import tiny_sweep

    root = tmp_path_factory.mktemp("fuzz-folder")
    spec = load_spec(tiny_sweep(root / "in", budgets=(2, 3), counts=(2,)))
    assert run_sweep(spec, root / "out", n_workers=1, progress=False).failures == []
    return spec, root / "out"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(hows=st.lists(st.sampled_from(DAMAGE), min_size=2, max_size=2), cut=st.integers(0, 10**4))
def test_damaged_sweep_folder_tables_exactly_the_intact_points(finished_folder, tmp_path_factory,
                                                                hows, cut):
    """Whatever the damage, the table rebuilds without error and lists exactly the intact points;
    every damaged one reads as not done, so a rerun recomputes it."""
    from dlora_sim.sweep_table import build_table

    spec, finished = finished_folder
    out = tmp_path_factory.mktemp("damaged") / "out"
    shutil.copytree(finished, out)
    for point, how in zip(spec.points, hows):
        damage(out / "points" / point.point_id, how, cut)
    intact = {p.point_id for p, how in zip(spec.points, hows) if how == "intact"}
    assert {p.point_id for p in spec.points if read_marker(out / "points" / p.point_id)} == intact
    rows = pq.read_table(build_table(spec, out)).to_pylist()
    assert {r["point_id"] for r in rows} == intact
