"""The plan's page: its Pareto front, the deadline, the confirmed candidates (offline HTML).

Reads the plain record ``Plan.to_dict()`` (what ``plan.json`` holds); runs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from dlora_sim.report.page import Section, write_page
from dlora_sim.report.style import empty_figure, finish, human_bytes, human_seconds, plain, strategy_colour


def _hover(p: Mapping[str, Any]) -> str:
    acc = p.get("accuracy")
    lines = [
        plain(p["label"]),
        f"completion (estimate): {human_seconds(p['time_s'])}",
        f"cloud: ${p['cloud_usd']:,.0f} provisioned ({p['gpus']}× {plain(p['gpu'])}, "
        f"{100 * (p.get('gpu_utilisation') or 0):.1f}% busy)",
        f"device energy: {p['device_energy_j'] / 1e3:,.1f} kJ per device",
        f"traffic: {human_bytes(p['bytes_per_device'])} per device",
        f"accuracy: {'unknown' if acc is None else f'{100 * acc:.1f}%'}",
        f"bound by: {plain(p.get('bound', ''))}",
    ]
    if p.get("sim_devices"):
        fleet = p.get("fleet_time_s")
        lines.append(f"simulated: {'not all finished' if fleet is None else human_seconds(fleet)} "
                     f"({p['sim_finished']}/{p['sim_devices']} devices finished)")
    return "<br>".join(lines)


def _hours(seconds: float | None) -> float:
    return math.nan if seconds is None else seconds / 3600.0


def front_figure(plan: Mapping[str, Any]) -> go.Figure:
    """Cloud cost against completion time, one colour per strategy; the deadline and budget lines."""
    fig = go.Figure()
    front = plan["front"]
    for strategy in dict.fromkeys(p["strategy"] for p in front):
        pts = [p for p in front if p["strategy"] == strategy]
        fig.add_trace(go.Scatter(
            x=[_hours(p["time_s"]) for p in pts], y=[p["cloud_usd"] for p in pts], mode="markers",
            name=plain(strategy), marker={"color": strategy_colour(strategy), "size": 9},
            hovertext=[_hover(p) for p in pts], hoverinfo="text"))
    confirmed = [p for p in plan["confirmed"] if p.get("fleet_time_s") is not None]
    if confirmed:
        fig.add_trace(go.Scatter(
            x=[_hours(p["fleet_time_s"]) for p in confirmed],
            y=[p.get("sim_provisioned_usd") or p["cloud_usd"] for p in confirmed], mode="markers",
            name="simulated", marker={"symbol": "x", "size": 12, "color": "#222"},
            hovertext=[_hover(p) for p in confirmed], hoverinfo="text"))
    rec = plan.get("recommendation")
    if rec:
        fig.add_trace(go.Scatter(x=[_hours(rec["time_s"])], y=[rec["cloud_usd"]], mode="markers",
                                 name="recommended", hovertext=[_hover(rec)], hoverinfo="text",
                                 marker={"symbol": "star", "size": 18, "color": "gold",
                                         "line": {"color": "#222", "width": 1}}))
    fig.add_vline(x=plan["deadline_s"] / 3600.0, line_dash="dash", annotation_text="deadline")
    if plan["constraints"].get("max_usd"):
        fig.add_hline(y=plan["constraints"]["max_usd"], line_dash="dot", annotation_text="max $")
    fig.update_xaxes(title="completion, hours (log)", type="log")
    fig.update_yaxes(title="provisioned cloud cost, $ (log)", type="log")
    return finish(fig, "The Pareto front: cloud cost against completion")


def energy_figure(plan: Mapping[str, Any]) -> go.Figure:
    """Device energy against traffic per device for the front."""
    fig = go.Figure()
    front = plan["front"]
    for strategy in dict.fromkeys(p["strategy"] for p in front):
        pts = [p for p in front if p["strategy"] == strategy]
        fig.add_trace(go.Scatter(
            x=[p["bytes_per_device"] / 1e9 for p in pts], y=[p["device_energy_j"] / 1e3 for p in pts],
            mode="markers", name=plain(strategy), marker={"color": strategy_colour(strategy), "size": 9},
            hovertext=[_hover(p) for p in pts], hoverinfo="text"))
    fig.update_xaxes(title="traffic per device, GB (log)", type="log")
    fig.update_yaxes(title="device energy per device (compute + radio), kJ (log)", type="log")
    return finish(fig, "What the front costs the devices")


def accuracy_figure(plan: Mapping[str, Any]) -> go.Figure:
    """Matched accuracy against cloud cost, where a comparable profile gives one."""
    fig = go.Figure()
    front = [p for p in plan["front"] if p.get("accuracy") is not None]
    if not front:
        return empty_figure("Accuracy from comparable profiles", "no configuration of the front has a comparable profile")
    for strategy in dict.fromkeys(p["strategy"] for p in front):
        pts = [p for p in front if p["strategy"] == strategy]
        fig.add_trace(go.Scatter(
            x=[p["cloud_usd"] for p in pts], y=[100 * p["accuracy"] for p in pts], mode="markers",
            name=plain(strategy), marker={"color": strategy_colour(strategy), "size": 9},
            hovertext=[_hover(p) for p in pts], hoverinfo="text"))
    if plan["constraints"].get("min_accuracy"):
        fig.add_hline(y=100 * plan["constraints"]["min_accuracy"], line_dash="dot", annotation_text="min accuracy")
    fig.update_xaxes(title="provisioned cloud cost, $ (log)", type="log")
    fig.update_yaxes(title="matched test accuracy, %")
    return finish(fig, "Accuracy from comparable profiles")


def write_plan_page(plan: Mapping[str, Any], path: str | Path) -> Path:
    """Write the plan's dashboard page (plotly.js inline: works offline)."""
    c = plan["constraints"]
    facts = [("verdict", plan["message"]),
             ("deadline", f"{human_seconds(plan['deadline_s'])} for {c['percentile']:g}% of the devices"),
             ("max $", "—" if c.get("max_usd") is None else f"${c['max_usd']:,.0f}"),
             ("min accuracy", "—" if c.get("min_accuracy") is None else f"{100 * c['min_accuracy']:.1f}%"),
             ("searched", ", ".join(f"{k}: {', '.join(map(str, v))}" for k, v in plan["space"].items())),
             ("points", f"{plan['points']:,} estimated ({plan['valid_points']:,} valid), "
                        f"{len(plan['front'])} on the front, {len(plan['confirmed'])} simulated"),
             *(("note", n) for n in plan.get("notes", []))]
    sections = [
        Section("Front", "Each marker is a configuration no other one beats on completion, device energy, "
                "traffic, cloud cost and accuracy at once (estimates). Crosses are what the simulator "
                "measured for the confirmed candidates; the star is the recommendation.", front_figure(plan)),
        Section("Devices", "The same configurations: what each device sends and receives, and the energy "
                "it spends on compute and radio.", energy_figure(plan)),
        Section("Accuracy", "Accuracy is matched from profiles of the same task and PEFT trained at a "
                "comparable budget fraction (docs/sweeps.md); configurations without one are left off.",
                accuracy_figure(plan)),
    ]
    return write_page(path, f"Plan: {plan['scenario']}", plan["message"], sections, facts)
