"""``dlora-sim compare``: two real small runs side by side, and folders it must refuse in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _sim_scenarios import small
from dlora_sim.cli import main
from dlora_sim.sim import simulate
from dlora_sim.sim.results import write_results


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    """The same small job on LTE and on 5G (real simulations, about a second each)."""
    root = tmp_path_factory.mktemp("runs")
    write_results(simulate(small()), root / "lte")
    write_results(simulate(small({"fleet.groups.0.link": "5g"})), root / "5g")
    return root / "lte", root / "5g"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def test_json_names_the_difference_and_the_direction(two_runs, capsys):
    """The scenario field that differs is named; 5G finishes sooner with the same bytes."""
    lte, fiveg = two_runs
    code, out, _ = _run(["compare", str(lte), str(fiveg), "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert [r["label"] for r in data["runs"]] == ["lte", "5g"]
    assert data["scenario_differences"]["fleet.groups.0.link.name"] == ["lte", "5g"]
    assert set(data["strategies"]) == {"dlora-all", "dlora-kr"}
    for strategy in data["strategies"].values():
        assert strategy["finished_fraction"]["values"] == [1.0, 1.0]
        assert strategy["completion_p50_s"]["relative"][1] < -0.1
        assert strategy["bytes_total"]["relative"] == [0.0, 0.0]


def test_table_fits_80_columns_and_page_is_written_deterministically(two_runs, capsys, monkeypatch, tmp_path):
    """At 80 columns no line is longer and no value is cut to '…'; the page is byte-identical twice."""
    monkeypatch.setenv("COLUMNS", "80")
    lte, fiveg = two_runs
    pages = []
    for name in ("a.html", "b.html"):
        code, out, err = _run(["compare", str(lte), str(fiveg), "-o", str(tmp_path / name)], capsys)
        assert code == 0, err
        pages.append((tmp_path / name).read_bytes())
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    assert "completion_p50_s" in out and "finished_fraction" in out
    assert pages[0] == pages[1]
    page = pages[0].decode()
    assert "Plotly" in page and "5g against lte" in page and "fleet.groups.0.link.name" in page


def test_folder_without_marker_is_refused_in_one_line(two_runs, capsys, tmp_path):
    """A copy of a run's files without the results marker is not a results folder."""
    copy = tmp_path / "copied"
    shutil.copytree(two_runs[0], copy)
    (copy / ".dlora-sim-results").unlink()
    code, _, err = _run(["compare", str(two_runs[0]), str(copy)], capsys)
    assert code == 1
    assert err.strip().splitlines() == [f"error: {copy}: not a results folder of `dlora-sim run` "
                                        "(no .dlora-sim-results marker)"]


def test_broken_summary_is_refused_naming_the_field(two_runs, capsys, tmp_path):
    """A summary.json whose strategies block is not a table: one line naming file and field."""
    broken = tmp_path / "broken"
    shutil.copytree(two_runs[0], broken)
    (broken / "summary.json").write_text(json.dumps({"strategies": []}))
    code, _, err = _run(["compare", str(broken), str(two_runs[1])], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{broken / 'summary.json'}: strategies" in lines[0]


def test_one_folder_is_not_a_comparison(two_runs, capsys):
    code, _, err = _run(["compare", str(two_runs[0])], capsys)
    assert code == 1 and "at least two results folders" in err


def test_flags_read_yes_no_and_a_censored_median_reads_above_the_horizon(two_runs, capsys, monkeypatch, tmp_path):
    """A run whose 100 s horizon cuts every device off: its ``censored.*`` flags print as yes
    against the reference's no (not 1 / 0 s), changed flags say ``differs`` with no percentage,
    and its median, null in the summary, prints as ``> 100.0 s`` rather than a blank."""
    monkeypatch.setenv("COLUMNS", "120")
    cut = tmp_path / "cut"
    write_results(simulate(small({"run.horizon_s": 100.0})), cut)
    code, out, err = _run(["compare", str(two_runs[0]), str(cut), "--all"], capsys)
    assert code == 0, err
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.count("│") == 5}
    assert rows["censored.completion_p50_s"] == ["no", "yes", "differs"]
    assert rows["completion_p50_s"][1] == "> 100.0 s"
    code, out, _ = _run(["compare", str(two_runs[0]), str(cut), "--json"], capsys)
    flag = json.loads(out)["strategies"]["dlora-kr"]["censored.completion_p50_s"]
    assert flag == {"values": [False, True], "relative": [0.0, None]}
