"""`dlora-sim dashboard` on real simulator output: every section present, bad folders are one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlora_sim.cli import main
from dlora_sim.scenario import load_scenario
from dlora_sim.sim import simulate, write_results

from test_sweep_run import tiny_sweep  # noqa: E402  (tests/ is on sys.path)


def tiny_results(folder: Path) -> Path:
    """Simulate the tiny scenario (with a Markov-flaky group, so the timeline has outages) and write it."""
    spec = tiny_sweep(folder / "in")
    scenario = load_scenario(spec.parent / "tiny.toml", {
        "run.strategies": ["dlora-all", "dlora-kr", "dlora-random"],
        "fleet.groups.0.availability": {"kind": "markov", "mean_online_s": 60.0, "mean_offline_s": 20.0},
        "run.timeline_sample_devices": 2,
    })
    return write_results(simulate(scenario), folder / "results")


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run the console entry point; return (exit code, stdout, stderr)."""
    code = 0
    try:
        main(args)
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_dashboard_has_every_section(tmp_path, capsys):
    """The page holds the KR heatmap, active modules, savings, CDF, costs, timeline and topology."""
    results = tiny_results(tmp_path)
    out = tmp_path / "dash" / "run.html"
    code, stdout, _ = run_cli(["dashboard", str(results), "-o", str(out)], capsys)
    assert code == 0 and str(out) in stdout
    text = out.read_text()
    for heading in ("Kill-and-Revive: weight-norm change per module", "Active modules over training",
                    "Savings against the paired baseline", "Completion time across the fleet",
                    "Cost breakdown", "What the cloud sees", "Cloud GPU memory", "Device timeline (sample)", "Network topology"):
        assert f"<h2>{heading}</h2>" in text
    assert len(re.findall(r'<div id="fig\d+"', text)) == 9
    assert "The profile has" not in text and "Profile not readable" not in text
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind


def test_sweep_dashboard_shows_pareto(tmp_path, capsys):
    """A sweep folder gives the Pareto page; rows with a matching profile are counted in the text."""
    pytest.importorskip("distributed")
    from dlora_sim.sweep import load_spec, run_sweep

    spec = load_spec(tiny_sweep(tmp_path / "in", budgets=(3,), counts=(2,)))
    run_sweep(spec, tmp_path / "sweep", n_workers=1, progress=False)
    out = tmp_path / "sweep.html"
    code, _, _ = run_cli(["dashboard", str(tmp_path / "sweep"), "-o", str(out)], capsys)
    text = out.read_text()
    assert code == 0 and "<h2>Accuracy against cost and time, per budget B</h2>" in text
    assert re.search(r"\((\d+) of 2 rows matched a profile;", text)


@pytest.mark.parametrize("make, needle", [
    (lambda p: p / "absent", "results folder not found"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "neither a run results folder"),
    (lambda p: _broken_summary(p), "summary.json: not readable JSON"),
    (lambda p: _missing_parquet(p), "missing devices.parquet"),
])
def test_bad_results_folder_is_one_line(tmp_path, capsys, make, needle):
    """A missing, empty or damaged results folder exits 1 with one line naming it; no file is written."""
    folder = make(tmp_path)
    out = tmp_path / "d.html"
    code, _, stderr = run_cli(["dashboard", str(folder), "-o", str(out)], capsys)
    assert code == 1 and needle in stderr and stderr.count("\n") == 1
    assert "Traceback" not in stderr and not out.exists()


def _broken_summary(tmp: Path) -> Path:
    folder = tmp / "broken"
    folder.mkdir()
    for name in ("scenario.json", "devices.parquet", "timeline.parquet"):
        (folder / name).write_text("x")
    (folder / "summary.json").write_text('{"strategies": ')
    return folder


def _missing_parquet(tmp: Path) -> Path:
    folder = tmp / "partial"
    folder.mkdir()
    (folder / "summary.json").write_text('{"strategies": {"dlora-all": {}}}')
    (folder / "scenario.json").write_text("{}")
    (folder / "timeline.parquet").write_text("x")
    return folder
