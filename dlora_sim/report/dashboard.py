"""Build the dashboard page of a run folder or of a sweep folder (the ``dashboard`` command).

Reading order follows a planner's questions: what did KR do (from the real training profile),
what does each strategy save, when do devices finish, where does the money go, why are some
devices slow, and over which network. A sweep page answers the budget question instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pyarrow as pa

from dlora_sim.errors import InputError
from dlora_sim.io import dig
from dlora_sim.report import costs, exposure, fleet, kr, savings, sweep, topology
from dlora_sim.report.data import (
    RunData, read_json, completion_times, load_run, strategy_totals, timeline_segments,
    topology_records,
)
from dlora_sim.report.page import Section, write_page
from dlora_sim.report.timeline import thin_timeline
from dlora_sim.report.style import empty_figure, human_seconds, plain, strategy_label

RUN_METRICS = (
    savings.Metric("steady_step_bytes", "bytes per steady-state step", "bytes"),
    *savings.DEFAULT_METRICS,
    savings.Metric("provisioned_usd", "rented GPUs", "usd"),
    savings.Metric("energy_j", "device compute energy", "j"),
    savings.Metric("radio_energy_j", "device radio energy", "j"),
)


def build_dashboard(results: str | Path, out: str | Path, profile: str | Path | None = None,
                    timeline_devices: int = 12) -> Path:
    """Write the dashboard of ``results`` (a run folder or a sweep folder) to ``out``.

    Raises:
        InputError: ``results`` is neither a run folder nor a sweep folder, or is unreadable.
    """
    results = Path(results)
    if (results / "sweep.parquet").is_file():
        return build_sweep_dashboard(results, out)
    if not results.is_dir():
        raise InputError(f"{results}: results folder not found")
    if not (results / "summary.json").is_file():
        raise InputError(f"{results}: neither a run results folder (summary.json) nor a sweep "
                         "folder (sweep.parquet)")
    return build_run_dashboard(load_run(results), out, profile, timeline_devices)


# ------------------------------------------------------------------------------------ run


def _kr_sections(profile_path: Path | None, chosen: bool = False,
                 job: dict[str, Any] | None = None) -> tuple[list[Section], list[tuple[str, str]]]:
    """The two KR figures from a profile, or explanatory placeholders when it cannot be read.

    A profile the user ``chosen`` on the command line must be readable (InputError otherwise);
    the one the scenario names may have stayed behind when the results were copied, so its
    absence is explained on the page instead. The profile is a real training run, usually of a
    small model: when its modules are not the simulated ``job``'s, the titles say so, so that a
    24-module heatmap is not read as the schedule of the 128-module job planned.
    """
    from dlora_sim.profile import load_profile

    heading_heat = "Kill-and-Revive: weight-norm change per module"
    heading_active = "Active modules over training"
    reason = None
    if profile_path is None:
        reason = "The scenario names no profile (job.profile)."
    elif chosen:
        prof = load_profile(profile_path)
    else:
        try:
            prof = load_profile(profile_path)
        except InputError as error:
            reason = f"Profile not readable: {error}"
    if reason is not None:
        return ([Section(heading_heat, reason, empty_figure(heading_heat, reason)),
                 Section(heading_active, reason, empty_figure(heading_active, reason))], [])
    short = [f"layer {m.layer} · {m.kind}" for m in prof.modules]
    # short labels fit the heatmap's rows; fall back to full names if they would collide
    names = [plain(name) for name in (short if len(set(short)) == len(short) else [m.name for m in prof.modules])]
    tr = prof.traces
    job_modules = (job or {}).get("module_count")
    which = f"training profile: {plain(prof.model.name)}, {len(names)} modules"
    if job_modules is not None and job_modules != len(names):
        which += f" (not the simulated {job_modules}-module job)"
    heat = kr.norm_heatmap(names, tr.round_steps, tr.norms, tr.active, score=prof.setup.kr.score,
                           title=f"Kill-and-Revive: weight-norm change per module — {which}")
    active = kr.active_over_time(names, tr.round_steps, tr.active,
                                 title=f"Active modules over training — {which}")
    source = (f"From the real training run in {profile_path.name}: {prof.model.name}, "
              f"{prof.peft.method} on {len(names)} modules, task {prof.setup.task}, arm "
              f"{prof.setup.arm}, budget B = {prof.setup.budget}, KR window "
              f"{prof.setup.kr.window_steps} steps. ")
    if job_modules is not None and job_modules != len(names):
        source += (f"The simulated job has {job_modules} modules and its own budget B = "
                   f"{(job or {}).get('budget')}: it replays this run's churn (the share of its budget "
                   "swapped after the cut) on its own KR schedule, not these modules. ")
    facts = [("profile", f"{profile_path.name} ({prof.setup.task}, arm {prof.setup.arm}, "
                         f"test accuracy {100 * prof.result.test_accuracy:.1f}%)")]
    return ([
        Section(heading_heat, source + "Each cell is how much a module's weights moved in one KR "
                "window; dark cells are frozen (killed) modules. Red crosses mark kills, green "
                "triangles revivals. The simulator replays this schedule's timing and churn.", heat),
        Section(heading_active, source + "How many modules per layer were trainable after each KR "
                "round (stacked), and how many were killed or revived in that round.", active),
    ], facts)


def _run_facts(run: RunData) -> list[tuple[str, str]]:
    sc = run.scenario
    groups = dig(sc, "fleet.groups", []) or []
    return [
        ("scenario", f"{sc.get('name', '?')} — {sc.get('description', '')}".rstrip(" —")),
        ("job", f"{dig(sc, 'job.model')}, {dig(sc, 'job.peft')} r={dig(sc, 'job.rank')} on "
                f"{','.join(dig(sc, 'job.targets', []) or [])}: {dig(sc, 'job.module_count')} PEFT "
                f"modules, budget B = {dig(sc, 'job.budget')}, {dig(sc, 'job.total_steps')} steps, "
                f"batch {dig(sc, 'job.batch')} × {dig(sc, 'job.seq_len')} tokens"),
        ("fleet", ", ".join(f"{g.get('count')} × {dig(g, 'device.name')} on {dig(g, 'link.name')}"
                            + (" (bandwidth over time from a trace)" if g.get("bandwidth_trace") else "")
                            for g in groups)),
        ("cloud", f"{dig(sc, 'cloud.count')} × {dig(sc, 'cloud.gpu')}"),
        ("run", f"seed {dig(sc, 'run.seed')}, {dig(sc, 'run.granularity')} granularity, paired "
                f"baseline {strategy_label(run.baseline)}"),
    ]


def _finished_note(run: RunData) -> str:
    """The finished fraction of every strategy, said beside the per-device figures."""
    parts = []
    for name, block in run.strategies.items():
        done, feasible = block.get("finished_devices"), block.get("feasible_devices")
        if done is None or feasible is None:
            continue
        parts.append(f"{strategy_label(name)} {done}/{feasible}")
    if not parts:
        return ""
    horizon = next((b.get("horizon_s") for b in run.strategies.values() if b.get("horizon_s")), None)
    within = f" within the {human_seconds(float(horizon))} horizon" if horizon else ""
    return f"Devices finished{within}: {', '.join(parts)}."


def build_run_dashboard(run: RunData, out: str | Path, profile: str | Path | None = None,
                        timeline_devices: int = 12) -> Path:
    """The dashboard of one paired run; returns the path written."""
    profile_path = Path(profile) if profile else (
        Path(dig(run.scenario, "job.profile")) if dig(run.scenario, "job.profile") else None)
    kr_sections, kr_facts = _kr_sections(profile_path, chosen=profile is not None, job=run.scenario.get("job"))
    totals = strategy_totals(run)
    try:
        topo_fig = topology.topology_figure(*topology_records(run.scenario))
    except InputError as error:  # e.g. the run's GraphML file was not copied with the results
        topo_fig = empty_figure("Network topology", f"Topology not readable: {error}")
    n_sampled = len({r["device"] for r in run.timeline})
    sections = [
        *kr_sections,
        Section("Savings against the paired baseline",
                f"Every strategy ran on the same fleet, availability draws and seed as the "
                f"baseline ({strategy_label(run.baseline)}), so differences are due to the strategy "
                "alone. Bars show how much less of each quantity it used; 'bytes per steady-state "
                "step' is the paper's per-step figure, the others are whole-job totals including "
                "KR's own probes and uploads. A median completion time that falls among unfinished "
                "devices is undefined (censored), so it has no bar. " + _finished_note(run),
                savings.savings_figure(totals, run.baseline, RUN_METRICS)),
        Section("Completion time across the fleet",
                "For each strategy, the share of devices that finished their fine-tuning job by a "
                "given time. Further left is faster; a curve ending below 1 left devices "
                "unfinished within the horizon (their number is in the legend). The time axis turns "
                "logarithmic when strategies differ more than tenfold. " + _finished_note(run),
                fleet.completion_cdf(completion_times(run))),
        Section("Cost breakdown",
                "The bills of each strategy in their own units, whole run, all devices: the energy "
                "the devices spend computing and on the radio (usually far larger), bytes and time "
                "on their links, the mobile data the users pay for at each link's price per GB, the "
                "GPU time the cloud used and how busy it kept the GPUs rented for the run, how long "
                "a step queued for a GPU, and the two cloud bills: GPU time used and the GPUs rented "
                "for the whole run (until the last device finished, or the horizon). "
                + _finished_note(run), costs.cost_breakdown(totals)),
        Section("What the cloud sees",
                "What crosses to the cloud under each strategy, as the strategy states it: raw text "
                "and labels (cloud-only), token embeddings and hidden states (DLoRA, split learning), "
                "the personal module weights (offloaded killed modules, the weights exchange, "
                "federated rounds) and their updates. `dlora-sim privacy` measures how much of the "
                "text and the labels the cloud recovers from them.",
                exposure.exposure_figure(run.strategies, run.summary.get("exposures"))),
        Section("Cloud GPU memory",
                "A session keeps its step's activations on a GPU until its backward is done, so "
                "GPU memory bounds the sessions in flight: the peak per GPU (weights included), "
                "one session's activations, the time sessions waited for room, and the steps the "
                "cloud recomputed instead (cloud.memory_full).",
                costs.cost_breakdown(totals, costs.MEMORY_COMPONENTS,
                                     title="Cloud GPU memory per strategy")),
        Section("Device timeline (sample)",
                f"What {min(n_sampled, timeline_devices)} sampled devices did over time: compute, "
                "uploads and downloads, waiting on the cloud, KR rounds, disconnections and work "
                "lost to them. Switch strategy with the menu at the top right. Long runs are "
                "drawn in time bins showing each bin's main activity (hover for its mix).",
                fleet.device_timeline(thin_timeline(timeline_segments(run, timeline_devices)))),
        Section("Network topology",
                "Device groups reach the cloud through shared access and regional links; hover a "
                "diamond for a link's bandwidth and latency. Shared links are split fairly among "
                "the flows crossing them.", topo_fig),
    ]
    name = run.scenario.get("name", run.folder.name)
    return write_page(out, f"dlora-sim — {name}", f"Results folder: {run.folder}",
                      sections, facts=[*_run_facts(run), *kr_facts])


# ---------------------------------------------------------------------------------- sweep


def load_sweep_rows(folder: Path) -> list[dict[str, Any]]:
    """Rows of ``sweep.parquet``; InputError naming the file when it cannot be read."""
    path = folder / "sweep.parquet"
    try:
        return pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as error:
        raise InputError(f"{path}: not a readable sweep table ({error})") from None


def build_sweep_dashboard(folder: str | Path, out: str | Path) -> Path:
    """The dashboard of a sweep folder: Pareto fronts per budget and the table of all points."""
    folder = Path(folder)
    rows = load_sweep_rows(folder)
    dlora = [r for r in rows if str(r.get("strategy", "")).startswith("dlora-")]
    matched = sum(1 for r in dlora if r.get("accuracy") is not None
                  and not math.isnan(float(r["accuracy"])))
    manifest = folder / "sweep.json"
    varied = list(read_json(manifest).get("varied", [])) if manifest.is_file() else []
    columns = [c for c in ("point_id", *varied, "strategy", "accuracy", "finished_fraction",
                           "per_finished_device.provisioned_usd", "completion_p50_s",
                           "per_finished_device.bytes_total", "per_finished_device.radio_energy_j",
                           "per_finished_device.data_usd", "provisioned_usd", "money_usd", "gpu_utilisation")
               if any(c in r for r in rows)]
    partial = sum(1 for r in rows if (r.get("finished_fraction") or 0.0) < 1.0)
    sections = [
        Section("Accuracy against cost and time, per budget B",
                "Each marker is one sweep point run with one DLoRA strategy (circle: Kill-and-Revive, "
                "diamond: random-B, square: all modules); colour is the budget B. Accuracy comes "
                "from the real training profiles trained like the scenario's (same task, PEFT method, "
                "steps, batch, KR window, learning rate) with the same KR arm and "
                f"budget fraction B/N ({matched} of {len(dlora)} rows matched a profile; unmatched "
                "rows are not drawn). Cost is the bill of the GPUs rented for the run divided by the "
                "devices that finished, so a run the horizon cut short pays for what it left undone. "
                "Open markers: the horizon cut some devices off (hover for how many finished); a "
                "median among unfinished devices is undefined and drawn at the horizon. The line of "
                "each budget is its Pareto front: nothing else at that budget is both cheaper (or "
                "faster) and more accurate. Cloud-only and edge-only runs are in the table below: "
                "they trade privacy or device memory, not accuracy.", sweep.pareto_figure(dlora)),
        Section("What the budget B buys",
                "Traffic per finished device, median completion time and the share of devices "
                "finished against the budget B, one line per DLoRA strategy (solid: Kill-and-Revive, "
                "dotted: random-B, dashed: all modules) and setting of the sweep's other fields "
                "(colour). Includes KR's own probes and uploads. An open triangle at the horizon "
                "marks a median that is undefined because too few devices finished.",
                sweep.budget_trend_figure(
                    dlora, [k for k in varied if k not in ("job.budget", "run.seed")])),
        Section("All sweep points", "Every row of sweep.parquet (one per point and strategy), in "
                "hours, GB, dollars and MJ; per-device figures are over the devices that finished "
                f"({partial} of {len(rows)} rows had devices cut off by the horizon).",
                sweep.sweep_table_figure(rows, columns)),
    ]
    points = len({r.get("point_id") for r in rows})
    return write_page(out, f"dlora-sim sweep — {folder.name}",
                      f"Sweep folder: {folder} — {points} finished points", sections, _pooled_facts(rows))


def _pooled_facts(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Which profile files the accuracy came from, and which were left out as trained otherwise."""
    def names(column: str) -> str:
        found = sorted({n.strip() for r in rows for n in str(r.get(column) or "").split(",") if n.strip()})
        return ", ".join(found) or "none"

    if not any("accuracy_used" in r for r in rows):
        return []
    return [("accuracy pooled from", names("accuracy_used")),
            ("left out (trained otherwise)", names("accuracy_excluded"))]
