"""Plotly dashboards and tables from result records; this package never runs a simulation.

One module per figure family, each taking plain lists/dicts so it can be tested with hand-made
data: ``kr`` (weight-norm heatmap, active modules), ``savings`` (vs the paired baseline),
``fleet`` (completion CDF, device timeline), ``costs`` (energy, link, GPU, money), ``topology``
(the network) and ``sweep`` (Pareto fronts). ``data`` reads results folders, ``dashboard``
assembles the pages and ``page`` writes one self-contained, offline HTML file.
"""

from __future__ import annotations

from dlora_sim.report.dashboard import build_dashboard, build_run_dashboard, build_sweep_dashboard

__all__ = ["build_dashboard", "build_run_dashboard", "build_sweep_dashboard"]
