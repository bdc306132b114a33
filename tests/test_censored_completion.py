"""Completion is censored data (issue 16): a horizon that cuts part of the fleet off must show.

One fleet, half of it fast (laptops on Wi-Fi, done in about a minute) and half slow (low-end
phones on 3G, nowhere near done when the 10-minute horizon stops the run). Every place that shows
a per-device figure — summary.json, the run table, the sweep rows and page, the run dashboard —
must report the finished fraction, mark the median "> horizon" (it falls among unfinished
devices), and never average finished and unfinished devices together.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from _sim_scenarios import small
from dlora_sim.cli.run import _print_summary
from dlora_sim.report import sweep
from dlora_sim.report.dashboard import build_run_dashboard
from dlora_sim.report.data import load_run
from dlora_sim.sim import simulate
from dlora_sim.sim.results import FINISHED_MEANS, write_results
from dlora_sim.sweep_table import strategy_metrics

HORIZON_S = 600.0
GROUPS = [{"name": "fast", "count": 2, "device": "laptop", "link": "wifi"},
          {"name": "slow", "count": 2, "device": "phone-low", "link": "3g"}]


@pytest.fixture(scope="module")
def cut_off(tmp_path_factory):
    """The run and its results folder."""
    scenario = small({"run.horizon_s": HORIZON_S, "run.strategies": ["dlora-all", "dlora-kr"]}, groups=GROUPS)
    result = simulate(scenario)
    folder = write_results(result, tmp_path_factory.mktemp("cut") / "run")
    return result, folder


def test_summary_reports_the_finished_fraction_and_censors_the_median(cut_off):
    result, _ = cut_off
    for name, block in result.summary["strategies"].items():
        rows = [r for r in result.devices if r["strategy"] == name]
        done = [r for r in rows if r["finished"]]
        assert [r["group"] for r in done] == ["fast", "fast"], name  # the horizon cut the phones off
        assert block["finished_devices"] == 2 and block["feasible_devices"] == 4
        assert block["finished_fraction"] == 0.5
        assert block["horizon_s"] == HORIZON_S
        # half finished: the median lies between the last finisher and an unfinished device
        for key in ("completion_p50_s", "completion_p95_s", "completion_p99_s"):
            assert block[key] is None and block["censored"][key] is True


def test_no_per_device_mean_mixes_finished_with_unfinished_devices(cut_off):
    result, folder = cut_off
    table = pq.read_table(folder / "devices.parquet").to_pylist()
    for name, block in result.summary["strategies"].items():
        rows = [r for r in table if r["strategy"] == name]
        done = [r for r in rows if r["finished"]]
        means = block["per_finished_device"]
        for key in FINISHED_MEANS:
            value = (lambda r: r["bytes_up"] + r["bytes_down"]) if key == "bytes_total" else (lambda r, k=key: r[k])
            expected = float(np.mean([value(r) for r in done]))
            assert means[key] == pytest.approx(expected, rel=1e-12), (name, key)
        # the unfinished phones moved bytes too: an all-device mean would differ
        everyone = float(np.mean([r["bytes_up"] + r["bytes_down"] for r in rows]))
        assert not math.isclose(everyone, means["bytes_total"], rel_tol=1e-3)
        # the cloud's bills are per finished device: the price of one fine-tuned device
        assert means["provisioned_usd"] == pytest.approx(block["provisioned_usd"] / 2)
        assert means["money_usd"] == pytest.approx(block["money_usd"] / 2)


def test_the_run_table_shows_done_counts_and_censored_medians(cut_off, capsys):
    _, folder = cut_off
    _print_summary(folder, Console(stderr=True))
    out = capsys.readouterr().out
    assert out.count("2/4") == 2  # both strategies
    assert out.count(">0.17") == 4  # p50 and p95 of both: beyond the 600 s (0.17 h) horizon
    assert "rented $" in out and "mobile" in out  # the bills table


def test_sweep_rows_keep_censoring_and_the_page_draws_it(cut_off):
    result, _ = cut_off
    rows = []
    for strategy, metrics in strategy_metrics(result.summary).items():
        rows.append({"strategy": strategy, "budget": 3, **metrics})
    kr = next(r for r in rows if r["strategy"] == "dlora-kr")
    assert kr["censored.completion_p50_s"] is True and "completion_p50_s" not in kr
    assert kr["finished_fraction"] == 0.5
    assert sweep.cell_text(kr, "completion_p50_s") == "> 10.0 min (horizon)"
    assert sweep.cell_text(kr, "finished_fraction") == "50.0%"
    value, cut = sweep.censored_value(kr, "completion_p50_s")
    assert cut and value == HORIZON_S
    # a second budget so the trend has a line: the censored median is an open triangle at the horizon
    later = dict(kr, budget=6)
    fig = sweep.budget_trend_figure([kr, later], [])
    median = [t for t in fig.data if t.xaxis == "x2"][0]
    assert list(median.y) == [HORIZON_S / 3600] * 2
    assert list(median.marker.symbol) == ["triangle-up-open"] * 2
    assert "> horizon" in median.hovertext[0] and "2/4 devices finished" in median.hovertext[0]


def test_pareto_prices_a_device_by_the_devices_finished():
    """A point that finished half its fleet costs twice as much per device, and is marked open."""
    rows = [{"budget": 4, "strategy": "dlora-all", "accuracy": 0.8, "provisioned_usd": 100.0,
             "per_finished_device.provisioned_usd": 100.0 / 8, "finished_fraction": 0.5,
             "finished_devices": 8, "feasible_devices": 16, "completion_p50_s": None,
             "censored.completion_p50_s": True, "horizon_s": 7200.0},
            {"budget": 4, "strategy": "dlora-kr", "accuracy": 0.8, "provisioned_usd": 120.0,
             "per_finished_device.provisioned_usd": 120.0 / 16, "finished_fraction": 1.0,
             "finished_devices": 16, "feasible_devices": 16, "completion_p50_s": 3600.0}]
    fig = sweep.pareto_figure(rows)
    points = fig.data[0]
    assert list(points.x) == [12.5, 7.5]  # all modules is not the cheapest per fine-tuned device
    assert list(points.marker.symbol) == ["square-open", "circle"]
    fronts = [t for t in fig.data if (t.name or "").startswith("Pareto")]
    assert list(fronts[0].x) == [7.5]
    time_points = fig.data[2]
    assert list(time_points.x) == [2.0, 1.0]  # the censored median drawn at the horizon
    assert list(fronts[1].x) == [1.0]  # and kept off the front


def test_run_dashboard_says_how_many_finished(cut_off, tmp_path):
    _, folder = cut_off
    page = build_run_dashboard(load_run(folder), tmp_path / "d.html").read_text(encoding="utf-8")
    assert "Devices finished within the 10.0 min horizon" in page
    assert "2 unfinished" in page  # the CDF's legend


def test_a_damaged_finished_count_is_one_error_naming_file_and_field(cut_off, tmp_path):
    import json
    import shutil

    from dlora_sim.errors import InputError

    _, folder = cut_off
    copy = shutil.copytree(folder, tmp_path / "copy")
    summary = json.loads((copy / "summary.json").read_text())
    summary["strategies"]["dlora-kr"]["horizon_s"] = "a week"
    (copy / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(InputError) as error:
        load_run(copy)
    assert "summary.json" in str(error.value) and "horizon_s" in str(error.value)
