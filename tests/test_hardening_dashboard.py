"""Issue 14, dashboards and profile tables: a damaged results folder, a bad option or free text
with markup is one line or plain text, never a traceback or a live link."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from _hardening import DEFAULT, PROFILE, REPO, assert_refused, run_cli, snapshot, tiny_args


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """One small results folder of paper-default, written by `dlora-sim run`."""
    out = tmp_path_factory.mktemp("run") / "pd"
    code, _, err = run_cli(["run", str(DEFAULT), "-o", str(out), *tiny_args()])
    assert code == 0, err
    return out


@pytest.fixture
def damaged(results, tmp_path):
    """A copy of the results folder to damage."""
    copy = tmp_path / "damaged"
    shutil.copytree(results, copy)
    return copy


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


DAMAGE = [
    ("null-strategy", "summary.json", lambda d: d["strategies"].update({"dlora-kr": None}), "strategies.dlora-kr"),
    ("no-strategies", "summary.json", lambda d: d.update(strategies={}), "strategies"),
    ("work-lost-list", "summary.json", lambda d: d["strategies"]["dlora-kr"].update(work_lost=[1]),
     "strategies.dlora-kr.work_lost"),
    ("groups-not-a-list", "scenario.json", lambda d: d["fleet"].update(groups=5), "fleet.groups"),
    ("targets-a-number", "scenario.json", lambda d: d["job"].update(targets=3), "job.targets"),
    ("group-name-a-number", "scenario.json", lambda d: d["fleet"]["groups"][0].update(name=7), "fleet.groups[0].name"),
    ("description-a-list", "scenario.json", lambda d: d.update(description=["x"]), "description"),
]


@pytest.mark.parametrize(("case", "name", "edit", "field"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_json_is_one_line_naming_file_and_field(damaged, tmp_path, case, name, edit, field):
    _edit_json(damaged / name, edit)
    out = tmp_path / "page.html"
    assert_refused(run_cli(["dashboard", str(damaged), "-o", str(out)]), f"{damaged / name}: {field}:")
    assert not out.exists()


@pytest.mark.parametrize(("name", "change", "words"), [
    ("timeline.parquet", lambda t: t.drop(["kind"]), "column 'kind' is missing"),
    ("timeline.parquet", lambda t: t.set_column(t.column_names.index("t_start"), "t_start",
                                                t.column("t_start").cast("string")), "column 't_start'"),
    ("devices.parquet", lambda t: t.drop(["strategy"]), "column 'strategy' is missing"),
])
def test_damaged_table_is_one_line_naming_file_and_column(damaged, tmp_path, name, change, words):
    pq.write_table(change(pq.read_table(damaged / name)), damaged / name)
    out = tmp_path / "page.html"
    assert_refused(run_cli(["dashboard", str(damaged), "-o", str(out)]), str(damaged / name), words)
    assert not out.exists()


def test_output_naming_a_folder_is_one_line(results, tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    assert_refused(run_cli(["dashboard", str(results), "-o", str(folder)]), str(folder), "is a folder")
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["pages"]


def test_chosen_profile_of_random_bytes_is_an_error_not_a_placeholder(results, tmp_path):
    """`--profile` names a file the user wants drawn: if it is no profile, say so and stop."""
    junk = tmp_path / "junk.json"
    junk.write_bytes(bytes(range(256)) * 8)
    out = tmp_path / "page.html"
    assert_refused(run_cli(["dashboard", str(results), "--profile", str(junk), "-o", str(out)]), str(junk))
    assert not out.exists()


def test_free_text_with_markup_is_shown_as_text(damaged, tmp_path):
    """A description, group name or strategy holding <a href> never becomes a live link."""
    link = '<a href="https://evil.example">click</a>'
    _edit_json(damaged / "scenario.json", lambda d: (d.update(description=link), d["fleet"]["groups"][0].update(name=link)))
    _edit_json(damaged / "summary.json", lambda d: d["strategies"].update({link: d["strategies"]["dlora-kr"]}))
    out = tmp_path / "page.html"
    code, _, err = run_cli(["dashboard", str(damaged), "-o", str(out), "--profile", str(PROFILE)])
    assert code == 0, err
    page = out.read_text()
    assert "&lt;a href=" in page
    assert '<a href="https://evil' not in page and "\\u003ca href" not in page


def test_topology_layout_does_not_depend_on_the_hash_seed(results):
    """The dashboard's network drawing is the same in every process."""
    script = ("import json, sys; from dlora_sim.report.data import topology_records; "
              "from dlora_sim.report.topology import topology_figure; "
              f"nodes, edges = topology_records(json.load(open({str(results / 'scenario.json')!r}))); "
              "print(topology_figure(nodes, edges).to_json())")
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}, cwd=REPO).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1


def test_rich_markup_in_an_out_path_is_printed_as_text(tmp_path):
    """User text printed by the CLI (here the -o path) is escaped, not read as Rich markup."""
    out = tmp_path / "x[/bold]"
    code, _, err = run_cli(["run", str(DEFAULT), "-o", str(out), *tiny_args()])
    assert code == 0, err
    assert "x[/bold]" in err.replace("\n", "")


# --------------------------------------------------------------------------- profiles table


@pytest.fixture
def profiles(tmp_path) -> Path:
    folder = tmp_path / "profiles"
    folder.mkdir()
    shutil.copy(PROFILE, folder / PROFILE.name)
    return folder


def test_table_write_into_a_folder_is_one_line(profiles, tmp_path):
    target = tmp_path / "docs"
    target.mkdir()
    result = run_cli(["profiles", "table", str(profiles), "--write", str(target)])
    assert_refused(result, str(target), "--write", "folder")
    assert result[1] == "" and list(target.iterdir()) == []


def test_table_write_into_a_latin1_readme_keeps_it(profiles, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_bytes("# Profils mesurés\n".encode("latin-1"))
    before = snapshot(tmp_path)
    result = run_cli(["profiles", "table", str(profiles), "--write", str(readme)])
    assert_refused(result, str(readme), "UTF-8")
    assert result[1] == "" and snapshot(tmp_path) == before


@pytest.mark.parametrize("value", [10**30, True, "3"])
def test_profile_with_a_huge_or_wrongly_typed_integer_is_one_line(profiles, value):
    path = profiles / PROFILE.name
    _edit_json(path, lambda d: d["result"].update(trainable_params=value))
    assert_refused(run_cli(["profiles", "table", str(profiles)]), str(path), "trainable_params")


def test_profile_nested_too_deeply_is_one_line(profiles):
    path = profiles / PROFILE.name
    path.write_text('{"schema_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_refused(run_cli(["profiles", "table", str(profiles)]), str(path), "nested")
