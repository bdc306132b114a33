"""Figure functions of dlora_sim.report, fed with small hand-made data."""

from __future__ import annotations

import math

import numpy as np

from dlora_sim.report import costs, fleet, kr, page, savings, sweep, topology

NAMES = ["layer.0.q", "layer.0.v", "layer.1.q", "layer.1.v"]
STEPS = [0, 10, 20, 30]
NORMS = [[1.0, 1.0, 1.0, 1.0], [1.5, 1.1, 1.0, 1.3], [1.9, 1.1, 1.0, 1.6], [2.0, 1.1, 1.4, 1.6]]
ACTIVE = [[0, 1, 2, 3], [0, 3], [0, 3], [0, 2]]


def test_kr_events_finds_kills_and_revivals():
    """A module leaving the active set is a kill, one entering it a revival, at that round."""
    kills, revivals = kr.kr_events(ACTIVE)
    assert kills == [(1, 1), (1, 2), (3, 3)]
    assert revivals == [(3, 2)]


def test_norm_change_matrix_is_absolute_round_difference():
    """The heatmap value is |norm(r) - norm(r-1)| per module, rounds along columns."""
    change = kr.norm_change_matrix(NORMS)
    assert change.shape == (4, 3)
    assert np.allclose(change[:, 0], [0.5, 0.1, 0.0, 0.3])
    assert np.allclose(change[2], [0.0, 0.0, 0.4])


def test_norm_heatmap_marks_every_kill_and_revival():
    """The heatmap carries one marker per kill and per revival, at the round's step."""
    fig = kr.norm_heatmap(NAMES, STEPS, NORMS, ACTIVE)
    kill_trace = next(t for t in fig.data if (t.name or "").startswith("killed"))
    revive_trace = next(t for t in fig.data if (t.name or "").startswith("revived"))
    assert list(kill_trace.x) == [10, 10, 30] and list(kill_trace.y) == ["layer.0.v", "layer.1.q", "layer.1.v"]
    assert list(revive_trace.x) == [30] and list(revive_trace.y) == ["layer.1.q"]
    assert fig.layout.xaxis.title.text == "training step"


def test_active_over_time_stacks_to_active_count():
    """Per round, the stacked per-layer counts add up to the number of active modules."""
    fig = kr.active_over_time(NAMES, STEPS, ACTIVE)
    stacked = [t for t in fig.data if getattr(t, "stackgroup", None) == "active"]
    totals = np.sum([list(t.y) for t in stacked], axis=0)
    assert list(totals) == [len(a) for a in ACTIVE]


def test_savings_are_one_minus_ratio_to_baseline():
    """A strategy using 1/8 of the baseline's bytes shows 87.5% saved."""
    totals = {"dlora-all": {"bytes_total": 800.0, "round_trips": 10.0},
              "dlora-kr": {"bytes_total": 100.0, "round_trips": 20.0}}
    fig = savings.savings_figure(totals, baseline="dlora-all")
    (bar,) = fig.data
    assert list(bar.x) == ["bytes up + down", "round trips"]
    assert math.isclose(bar.y[0], 87.5) and math.isclose(bar.y[1], -100.0)
    assert "87.5% less" in bar.hovertext[0] and "100.0% more" in bar.hovertext[1]


def test_savings_without_baseline_says_so():
    """A missing baseline gives an explanatory empty figure rather than an exception."""
    fig = savings.savings_figure({"dlora-kr": {"bytes_total": 1.0}}, baseline="dlora-all")
    assert "not in these results" in fig.layout.annotations[0].text


def test_cdf_counts_unfinished_devices():
    """Unfinished devices stay in the denominator, so the CDF ends below 1."""
    xs, ys = fleet.cdf_points([3.0, 1.0, math.nan, 2.0])
    assert list(xs) == [1.0, 2.0, 3.0] and list(ys) == [0.25, 0.5, 0.75]


def test_device_timeline_dropdown_switches_strategy():
    """With two strategies the timeline has a drop-down whose buttons show only their traces."""
    segs = [{"strategy": s, "device": d, "state": st, "start_s": 0.0 + i, "end_s": 1.0 + i}
            for s in ("dlora-all", "dlora-kr") for d in (0, 1) for i, st in enumerate(("compute", "offline"))]
    fig = fleet.device_timeline(segs)
    buttons = fig.layout.updatemenus[0].buttons
    assert len(buttons) == 2
    visible = buttons[1].args[0]["visible"]
    assert sum(visible) == 2 and visible[:2] == [False, False]


def test_cost_breakdown_scales_units():
    """Energy in joules is shown in kWh: 3.6e6 J is one bar of height 1."""
    fig = costs.cost_breakdown({"dlora-kr": {"energy_j": 3.6e6}})
    assert len(fig.data) == 1 and math.isclose(fig.data[0].y[0], 1.0)


def test_topology_draws_every_node_and_link():
    """Each node appears once and each link gets one hover midpoint with its bandwidth."""
    nodes = [{"id": "g0", "kind": "group", "label": "phones"}, {"id": "lte", "kind": "access"},
             {"id": "eu", "kind": "region"}, {"id": "cloud", "kind": "cloud"}]
    edges = [{"source": "g0", "target": "lte", "up_bps": 5e6}, {"source": "lte", "target": "eu"},
             {"source": "eu", "target": "cloud", "rtt_s": 0.02}]
    fig = topology.topology_figure(nodes, edges)
    mids = next(t for t in fig.data if (t.name or "").startswith("link"))
    assert len(mids.x) == 3 and "5.0 Mbit/s" in mids.hovertext[0]
    assert sum(len(t.x) for t in fig.data if t.mode == "markers+text") == 4


def test_pareto_front_keeps_only_non_dominated():
    """A point that costs more and is less accurate than another is not on the front."""
    costs_ = [1.0, 2.0, 3.0, 2.5]
    acc = [0.5, 0.8, 0.9, 0.7]
    assert sweep.pareto_front(costs_, acc) == [0, 1, 2]


def test_pareto_figure_one_front_per_budget():
    """Each budget gets its own front trace in each panel."""
    rows = [{"budget": b, "strategy": "dlora-kr", "accuracy": a, "per_finished_device.provisioned_usd": c,
             "completion_p50_s": 3600 * c, "label": "x"}
            for b, a, c in ((4, 0.7, 1.0), (4, 0.75, 2.0), (16, 0.8, 3.0), (16, 0.79, 4.0))]
    fig = sweep.pareto_figure(rows)
    fronts = [t for t in fig.data if (t.name or "").startswith("Pareto")]
    assert len(fronts) == 4
    assert list(fronts[0].x) == [1.0, 2.0] and list(fronts[1].x) == [3.0]


def test_page_embeds_plotly_once_and_every_figure(tmp_path):
    """The page is self-contained: plotly.js inline once, one div per section, written atomically."""
    sections = [page.Section("a", "first", costs.cost_breakdown({"x": {"energy_j": 1.0}})),
                page.Section("b", "second", sweep.pareto_figure([]))]
    out = page.write_page(tmp_path / "d.html", "T", "sub", sections, facts=[("k", "v")])
    text = out.read_text()
    assert text.count("window.Plotly") >= 1 and text.count("<script type=\"text/javascript\">/**") <= 1
    assert 'id="fig0"' in text and 'id="fig1"' in text
    assert "<script src=" not in text and "src=\"http" not in text
    assert list(tmp_path.iterdir()) == [out]


def test_diff_norm_profiles_are_shown_as_recorded():
    """With score diff-norm the profile already holds the change, so it is not differenced again."""
    change = kr.norm_change_matrix([[0.0, 0.0], [0.2, 0.0], [0.1, 0.3]], score="diff-norm")
    assert np.allclose(change, [[0.2, 0.1], [0.0, 0.3]])


def test_savings_axis_is_cut_for_huge_losses():
    """A strategy using 500x the baseline does not flatten the others: the axis stops near -200%."""
    totals = {"dlora-all": {"edge_flops": 1.0}, "edge-only": {"edge_flops": 500.0},
              "dlora-kr": {"edge_flops": 0.2}}
    fig = savings.savings_figure(totals, baseline="dlora-all")
    assert fig.layout.yaxis.range[0] == savings.CLIP_PERCENT - 10
    assert "49900.0% more" in fig.data[0].hovertext[0]


def test_budget_trend_one_line_per_strategy_and_setting():
    """Lines are drawn per (strategy, other fields), sorted by B, in each panel."""
    rows = [{"budget": b, "strategy": s, "fleet.groups.0.link": link, "per_finished_device.bytes_total": b * 1e9,
             "completion_p50_s": 3600.0 * b, "finished_fraction": 1.0}
            for b in (16, 4) for s in ("dlora-kr", "dlora-all") for link in ("lte", "5g")]
    fig = sweep.budget_trend_figure(rows, ["fleet.groups.0.link"])
    assert len(fig.data) == 12  # 4 lines x (traffic, median, finished fraction)
    first = fig.data[0]
    assert list(first.x) == [4, 16] and list(first.y) == [4.0, 16.0]
    assert "link=" in first.name


def test_budget_trend_needs_two_budgets():
    """A sweep that does not vary B says so instead of drawing flat dots."""
    fig = sweep.budget_trend_figure([{"budget": 4, "strategy": "dlora-kr"}], [])
    assert "does not vary the budget" in fig.layout.annotations[0].text


def test_occupancy_counts_time_inside_segments():
    """Cumulative busy time at t sums whole segments before t and the part of the current one."""
    from dlora_sim.report.timeline import occupancy

    starts, ends = np.array([0.0, 10.0]), np.array([4.0, 12.0])
    assert list(occupancy(starts, ends, np.array([-1.0, 2.0, 5.0, 11.0, 20.0]))) == [0.0, 2.0, 4.0, 5.0, 6.0]


def test_thin_timeline_bins_busy_devices_and_keeps_quiet_ones():
    """A device with thousands of segments becomes at most N bars naming their mix; a quiet one is unchanged."""
    from dlora_sim.report.timeline import thin_timeline

    busy = [{"strategy": "s", "device": 0, "state": "upload" if i % 3 else "compute",
             "start_s": float(i), "end_s": i + 0.9} for i in range(3000)]
    quiet = [{"strategy": "s", "device": 1, "state": "offline", "start_s": 0.0, "end_s": 50.0}]
    out = thin_timeline(busy + quiet, max_bars_per_device=100)
    mine = [r for r in out if r["device"] == 0]
    assert 1 <= len(mine) <= 100
    assert all(r["state"] == "upload" and "upload 67%" in r["detail"] for r in mine)
    assert mine[0]["start_s"] == 0.0 and math.isclose(mine[-1]["end_s"], 2999.9)
    assert [r for r in out if r["device"] == 1] == quiet


def test_completion_cdf_uses_a_log_axis_when_strategies_differ_by_orders_of_magnitude():
    """Cloud-only in half an hour beside DLoRA in a week: the time axis becomes logarithmic."""
    from dlora_sim.report.fleet import completion_cdf

    wide = completion_cdf({"cloud-only": [1800.0, 1900.0], "dlora-all": [600_000.0, 650_000.0]})
    close = completion_cdf({"dlora-kr": [1800.0, 2000.0], "dlora-all": [2500.0, 3000.0]})
    assert wide.layout.xaxis.type == "log" and close.layout.xaxis.type == "linear"


def test_cost_panels_name_the_strategy_under_each_bar_and_wrap_into_rows():
    """Ten bills do not squeeze into one row, and each bar says whose it is (issue 16)."""
    totals = {s: {c.key: 1.0 for c in costs.DEFAULT_COMPONENTS} for s in ("dlora-all", "dlora-kr")}
    fig = costs.cost_breakdown(totals)
    assert [t.x[0] for t in fig.data[:2]] == ["DLoRA all", "DLoRA KR"]
    assert fig.layout.xaxis.showticklabels is not False and fig.layout.xaxis.tickangle == -40
    assert len(fig.layout.annotations) == len(costs.DEFAULT_COMPONENTS) == 10
    assert fig.layout.yaxis6.domain[1] < fig.layout.yaxis.domain[0]  # the sixth panel is on row 2


def test_kr_figures_say_they_show_the_training_profile_not_the_job():
    """A 24-module profile beside a 128-module job: both KR titles say which is drawn."""
    from _sim_scenarios import PROFILE
    from dlora_sim.report.dashboard import _kr_sections

    sections, _ = _kr_sections(PROFILE, job={"module_count": 128, "budget": 16})
    for section in sections:
        assert "not the simulated 128-module job" in section.figure.layout.title.text
    assert "replays this run's churn" in sections[0].explanation
    same, _ = _kr_sections(PROFILE, job={"module_count": 24, "budget": 3})
    assert "not the simulated" not in same[0].figure.layout.title.text
