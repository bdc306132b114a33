"""Sweep specifications: grids and lists expand to stable, deduplicated points; bad specs fail in one line."""

from __future__ import annotations

import pytest

from dlora_sim.errors import InputError
from dlora_sim.sweep import load_spec, point_id


def _write(tmp_path, text, base=True):
    if base:
        (tmp_path / "base.toml").write_text("# stands in for a scenario; specs only check it exists\n")
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_point_id_ignores_key_order_and_is_stable():
    """Same overrides in any order give the same id; a changed value gives another."""
    a = point_id({"job.budget": 8, "fleet.groups.0.link": "lte"})
    assert a == point_id({"fleet.groups.0.link": "lte", "job.budget": 8})
    assert a != point_id({"job.budget": 16, "fleet.groups.0.link": "lte"})
    assert len(a) == 12 and int(a, 16) >= 0


def test_point_id_is_a_fixed_function_of_the_overrides():
    """The id is SHA-256 of canonical JSON: pinned here so folders survive code changes."""
    assert point_id({"job.budget": 8}) == point_id({"job.budget": 8})
    import hashlib
    assert point_id({"job.budget": 8}) == hashlib.sha256(b'{"job.budget":8}').hexdigest()[:12]


def test_grid_times_seeds_with_fixed_fields(tmp_path):
    """A 2x2 grid over two seeds gives 8 points, each carrying the fixed fields and run.seed."""
    spec = load_spec(_write(tmp_path, """
base = "base.toml"
seeds = [0, 1]
[fixed]
"run.horizon_s" = 3600
[grid]
"job.budget" = [2, 4]
fleet.groups.0.link = ["lte", "5g"]
"""))
    assert len(spec.points) == 8
    first = spec.points[0]
    assert first.overrides == {"run.horizon_s": 3600, "job.budget": 2, "fleet.groups.0.link": "lte"}
    assert first.seed == 0 and first.all_overrides == {**first.overrides, "run.seed": 0}
    assert first.point_id == point_id(first.all_overrides)
    assert spec.varied == ("job.budget", "fleet.groups.0.link", "run.seed")
    assert "run.horizon_s" not in spec.points[0].label
    assert spec.base == (tmp_path / "base.toml").resolve()


def test_explicit_points_join_the_grid_without_duplicates(tmp_path):
    """A [[points]] entry equal to a grid point is kept once; a new one is appended."""
    spec = load_spec(_write(tmp_path, """
base = "base.toml"
[grid]
"job.budget" = [2, 4]
[[points]]
"job.budget" = 4
[[points]]
job.budget = 8
"""))
    assert [p.overrides["job.budget"] for p in spec.points] == [2, 4, 8]


@pytest.mark.parametrize("text, needle", [
    ('base = "base.toml"\ngrid = 3', "grid: must be a table"),
    ('base = "base.toml"\n[grid]\n"job.budget" = []', "grid.job.budget: must be a non-empty list"),
    ('base = "base.toml"\nseeds = [-1]', "seeds: must be a non-empty list"),
    ('base = "nope.toml"', "base: scenario file"),
    ('base = "base.toml"\ncolour = 1', "unknown key 'colour'; allowed: base"),
    ('base = "base.toml"\n[grid', "malformed TOML"),
    ('grid = {}', "base: required"),
])
def test_bad_specs_name_file_and_field(tmp_path, text, needle):
    """Each broken spec raises InputError whose single line names the file and the field."""
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_missing_spec_file_is_an_input_error(tmp_path):
    """A spec path that does not exist is reported, not a traceback."""
    with pytest.raises(InputError, match="sweep file not found"):
        load_spec(tmp_path / "absent.toml")
