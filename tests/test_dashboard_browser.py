"""Dashboards render in a real headless Chromium: every figure draws, the console stays clean.

Opens an HTML file via file://, waits until every plotly figure div has drawn its SVG, collects
the browser console and saves a screenshot. Skips (never fails) only when Chromium or its driver
is missing, and says which.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from _needs import need

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1200")

COUNT_JS = """
return Array.from(document.querySelectorAll('div.plotly-graph-div')).map(
    d => [d.id, d.querySelectorAll('.main-svg').length]);
"""


@dataclass
class Rendered:
    """What the browser saw: figure div ids with their SVG counts, console entries, screenshot."""

    figures: list[tuple[str, int]]
    console: list[dict]
    screenshot: Path


def find_browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver, or skip (fail under CI) saying which is missing."""
    browser = next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)
    driver = shutil.which("chromedriver")
    missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None)
    need(not missing, f"{missing} not installed (Debian: apt-get install chromium chromium-driver, "
                      "or `make system` as root)")
    return browser, driver  # type: ignore[return-value]


def render(html_path: Path, screenshot_path: Path, timeout_s: float = 60.0) -> Rendered:
    """Open ``html_path`` in headless Chromium and wait for every figure to render."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = find_browser()
    profile_dir = tempfile.mkdtemp(prefix="dlora-chromium-")
    options = Options()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(html_path.resolve().as_uri())
        deadline = time.monotonic() + timeout_s
        figures = driver.execute_script(COUNT_JS)
        while (not figures or any(n == 0 for _, n in figures)) and time.monotonic() < deadline:
            time.sleep(0.25)
            figures = driver.execute_script(COUNT_JS)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(int(height) + 100, 16000))
        driver.save_screenshot(str(screenshot_path))
        console = driver.get_log("browser")
    finally:
        driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)
    return Rendered([(str(i), int(n)) for i, n in figures], console, screenshot_path)


def console_errors(rendered: Rendered) -> list[str]:
    """Console messages at error level (SEVERE), which a clean dashboard must not produce."""
    return [e["message"] for e in rendered.console if e.get("level") == "SEVERE"]


def _example_page(path: Path) -> Path:
    """A page with every figure family, built from hand-made data (no simulator needed)."""
    from dlora_sim.report import costs, fleet, kr, page, savings, sweep, topology

    names = [f"layer.{l}.{p}" for l in range(2) for p in "qv"]
    active = [[0, 1, 2, 3], [0, 3], [0, 2]]
    totals = {"dlora-all": {"edge_flops": 8.0, "bytes_total": 8e9, "energy_j": 3.6e6},
              "dlora-kr": {"edge_flops": 1.5, "bytes_total": 1e9, "energy_j": 1e6}}
    segs = [{"strategy": "dlora-kr", "device": d, "state": s, "start_s": 100.0 * i, "end_s": 100.0 * i + 90}
            for d in range(3) for i, s in enumerate(("compute", "transfer", "offline"))]
    rows = [{"budget": 4, "strategy": "dlora-kr", "accuracy": 0.8, "money_usd": 1.0,
             "completion_p50_s": 3600.0, "label": "p"}]
    sections = [
        page.Section("heat", "", kr.norm_heatmap(names, [0, 10, 20], [[1] * 4, [2, 1, 1, 2], [3, 1, 2, 2]], active)),
        page.Section("active", "", kr.active_over_time(names, [0, 10, 20], active)),
        page.Section("savings", "", savings.savings_figure(totals, "dlora-all")),
        page.Section("cdf", "", fleet.completion_cdf({"dlora-kr": [1.0, 2.0], "dlora-all": [2.0, 3.0]})),
        page.Section("costs", "", costs.cost_breakdown(totals)),
        page.Section("timeline", "", fleet.device_timeline(segs)),
        page.Section("topology", "", topology.topology_figure(
            [{"id": "a", "kind": "group"}, {"id": "b", "kind": "cloud"}], [{"source": "a", "target": "b"}])),
        page.Section("pareto", "", sweep.pareto_figure(rows)),
    ]
    return page.write_page(path, "example", "hand-made data", sections)


def test_every_figure_family_renders_without_console_errors(tmp_path):
    """Each figure family draws its SVG in Chromium and the console logs no error."""
    html_path = _example_page(tmp_path / "example.html")
    rendered = render(html_path, tmp_path / "example.png")
    assert len(rendered.figures) == 8
    assert all(n > 0 for _, n in rendered.figures), rendered.figures
    assert console_errors(rendered) == []
    assert rendered.screenshot.stat().st_size > 10_000


def test_run_dashboard_renders_in_chromium(tmp_path):
    """`dlora-sim dashboard` on a real simulated run: all 9 figures draw, no console error, screenshot saved."""
    find_browser()
    from dlora_sim.report.dashboard import build_dashboard
    from test_report_dashboard import tiny_results

    html_path = build_dashboard(tiny_results(tmp_path), tmp_path / "run.html")
    rendered = render(html_path, tmp_path / "run.png")
    assert len(rendered.figures) == 9
    assert all(n > 0 for _, n in rendered.figures), rendered.figures
    assert console_errors(rendered) == []
    assert rendered.screenshot.stat().st_size > 10_000


def test_sweep_dashboard_renders_in_chromium(tmp_path):
    """The sweep page of a real (tiny) sweep: Pareto, budget trend and table all draw, console clean."""
    find_browser()
    pytest.importorskip("distributed")
    from dlora_sim.report.dashboard import build_dashboard
    from dlora_sim.sweep import load_spec, run_sweep
    from test_sweep_run import tiny_sweep

    spec = load_spec(tiny_sweep(tmp_path / "in", budgets=(2, 3), counts=(2,)))
    run_sweep(spec, tmp_path / "sweep", n_workers=1, progress=False)
    rendered = render(build_dashboard(tmp_path / "sweep", tmp_path / "sweep.html"), tmp_path / "sweep.png")
    assert len(rendered.figures) == 3
    assert all(n > 0 for _, n in rendered.figures), rendered.figures
    assert console_errors(rendered) == []
