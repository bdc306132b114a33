"""Sweep specifications: grids and lists expand to stable, deduplicated points; bad specs fail in one line."""

from __future__ import annotations

import pytest

from dlora_sim.errors import InputError
from dlora_sim.sweep import load_spec, point_id

from test_sweep_run import tiny_base  # tests/ is on sys.path


def _write(tmp_path, text):
    """The sweep file ``text`` beside a tiny base scenario named base.toml."""
    tiny_base(tmp_path).rename(tmp_path / "base.toml")
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_point_id_ignores_key_order_and_is_stable():
    """Same fields in any order give the same id; a changed value gives another."""
    a = point_id({"job.budget": 8, "fleet.groups.0.link": "lte"})
    assert a == point_id({"fleet.groups.0.link": "lte", "job.budget": 8})
    assert a != point_id({"job.budget": 16, "fleet.groups.0.link": "lte"})
    assert len(a) == 12 and int(a, 16) >= 0


def test_point_id_is_a_fixed_function_of_its_mapping():
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
    assert first.point_id == point_id(first.scenario)  # the resolved scenario, not the overrides
    assert first.scenario["run"]["horizon_s"] == 3600 and first.scenario["job"]["budget"] == 2
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
    ('base = "base.toml"\nseeds = [true]', "seeds: must be a non-empty list of integers"),
    ('base = "base.toml"\n[grid]', "grid: nothing to sweep"),
    ('base = "base.toml"', "grid: nothing to sweep"),
    ('base = "base.toml"\n[grid.job]', "grid: nothing to sweep"),
    ('base = "base.toml"\nname = "../elsewhere"\n[grid]\n"job.budget" = [2]', "name: '../elsewhere'"),
    ('base = "base.toml"\nname = 5\n[grid]\n"job.budget" = [2]', "name: must be a string"),
    ('base = "base.toml"\nname = "x\\u001b[31m"\n[grid]\n"job.budget" = [2]', "name: 'x\\x1b[31m' cannot"),
    ('base = "base\\u0000.toml"', "base: not a usable path"),
    ('base = "base.toml"\nprofiles = "p\\u0000"\n[grid]\n"job.budget" = [2]', "profiles: not a usable path"),
    ('base = "base.toml"\n[grid]\n"job.budget" = [99]', "point job.budget=99: "),
    ('base = "base.toml"\n[grid]\n"job.budget" = [1, 2]\n"job.steps" = ' + str(list(range(5001))),
     "grid: 10002 points, more than the 10000"),
    ('base = "base.toml"\n[grid]\n"job.budget" = ' + "[" * 40 + "]" * 40, "grid.job.budget.0...: nested more than 32"),
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


def test_inline_table_in_points_replaces_a_named_field(tmp_path):
    """An inline table replaces a catalog name (link = "lte"); a [points.job] table goes inside job."""
    spec = load_spec(_write(tmp_path, """
base = "base.toml"
[[points]]
"fleet.groups.0.link" = { up_bps = 2e6, down_bps = 8e6, rtt_s = 0.1 }
[[points]]
[points.job]
budget = 4
"""))
    custom, nested = spec.points
    assert custom.overrides == {"fleet.groups.0.link": {"up_bps": 2e6, "down_bps": 8e6, "rtt_s": 0.1}}
    link = custom.scenario["fleet"]["groups"][0]["link"]
    assert (link["up_bps"], link["down_bps"], link["rtt_s"]) == (2e6, 8e6, 0.1)
    assert nested.overrides == {"job.budget": 4}
    assert nested.scenario["fleet"]["groups"][0]["link"]["name"] == "lte"


def test_ids_follow_the_resolved_scenario(tmp_path):
    """Overrides that resolve to the same scenario are one point; editing the base changes the ids."""
    path = _write(tmp_path, """
base = "base.toml"
[[points]]
"job.budget" = 3      # the base's own value: this point is the base scenario
[[points]]
"job.steps" = 20      # the base's own value too: the same point again
[[points]]
"job.budget" = 2
""")
    before = load_spec(path)
    assert [p.label for p in before.points] == ["job.budget=3", "job.budget=2"]
    base = tmp_path / "base.toml"
    base.write_text(base.read_text().replace("steps = 20", "steps = 21"))
    after = load_spec(path)
    assert [p.label for p in after.points] == ["job.budget=3", "job.steps=20", "job.budget=2"]
    old_base, old_budget_2 = (p.point_id for p in before.points)
    new_budget_3, new_steps_20, new_budget_2 = (p.point_id for p in after.points)
    assert {new_budget_3, new_budget_2}.isdisjoint({old_base, old_budget_2})
    assert new_steps_20 == old_base  # steps back at 20 is exactly the old base scenario


def test_one_bad_point_value_is_one_problem(tmp_path):
    """A value the scenario refuses in one way is reported once: no '(and 1 more problem)'."""
    path = _write(tmp_path, 'base = "base.toml"\n[grid]\n"fleet.groups.0.link" = [5]\n')
    with pytest.raises(InputError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: point fleet.groups.0.link=5: ")
    assert "fleet.groups.0.link: " in message and "more problem" not in message
