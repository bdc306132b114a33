"""Every number in README.md and docs/cost.md, computed: the cost model, a simulated fleet, the profiles.

The documents hold the output between markers, ``<!-- figures:NAME -->`` and
``<!-- /figures:NAME -->``; nothing between them is typed by hand, and the prose around them
cites no number of its own.

    python scripts/doc_figures.py --write     # recompute and write every block
    python scripts/doc_figures.py --check     # exit 1, naming each block, if a document drifted

``tests/test_doc_figures.py`` runs ``--check``, so a change to a formula, a catalogue, the KR
schedule or a profile that moves a published number fails the suite until the documents are
rewritten.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dlora_sim.cli.profiles import group_profiles, load_folder
from dlora_sim.cost import STRATEGIES, CostModel, JobSpec, PeftSpec, get_strategy, job_totals, step_cost
from dlora_sim.io import atomic_write_text
from dlora_sim.scenario import load_scenario
from dlora_sim.sim import simulate

REPO = Path(__file__).resolve().parents[1]
# the paper's set-up: LLaMA-7B, LoRA r = 8 on q, k, v, o (128 modules), B = 16, the JobSpec defaults
PAPER = JobSpec(model="llama-7b", peft=PeftSpec("lora", rank=8, targets=("q", "k", "v", "o")), budget=16)
FLEET_SCENARIO = REPO / "scenarios" / "paper-default.toml"
ACCURACY_TASKS = ("noun-supersense", "verb-supersense", "definition-mc")
ACCURACY_ARMS = ("all", "kr", "kill-only", "random")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _joules(x: float) -> str:
    return f"{x / 1e6:,.2f} MJ" if x >= 1e5 else f"{x:,.0f} J"


def _bytes(x: float) -> str:
    for scale, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if x >= scale:
            return f"{x / scale:,.1f} {unit}"
    return f"{x:,.0f} B"


def _headline() -> str:
    """The paper's two claims for its set-up, per step and per job, with and without shared inputs."""
    shared = {k: float(v) for k, v in CostModel(PAPER).evaluate().headline.items()}
    unshared = {k: float(v) for k, v in CostModel(dataclasses.replace(PAPER, share_inputs=False)).evaluate().headline.items()}
    rows = [
        ("per-module exchange bytes, one steady-state step", "comm_bytes_reduction"),
        ("all bytes of that step, incl. embeddings up and hidden states down", "step_total_bytes_reduction"),
        ("all bytes of the whole job, incl. warm-up, probe batches, kill uploads", "job_comm_bytes_reduction"),
        ("edge FLOPs, one steady-state step", "step_edge_flops_reduction"),
        ("edge FLOPs, whole job, KR's own work included", "edge_flops_reduction"),
    ]
    lines = [
        f"LLaMA-7B, LoRA r={PAPER.peft.rank} on q,k,v,o ({PAPER.table.n_modules} modules), B={PAPER.budget}, "
        f"b·T = {PAPER.batch}×{PAPER.seq_len} = {PAPER.tokens} tokens, {PAPER.steps} steps, a KR round every "
        f"{PAPER.kr_interval_steps} steps after {PAPER.kr_warmup_rounds} warm-up round, killed modules offloaded:",
        "",
        "| DLoRA+KR against DLoRA with all modules | each module its own input (the paper's count) "
        "| q, k, v share their input (`share_inputs`, default) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {label} (`{key}`) | {_pct(unshared[key])} | {_pct(shared[key])} |" for label, key in rows]
    return "\n".join(lines)


def _edge_flops() -> str:
    """Why the job's edge saving is below the step's: head, warm-up, probes, each priced."""
    step_all, step_kr = step_cost(PAPER, "dlora-all"), step_cost(PAPER, "dlora-kr")
    head = PAPER.loss_tokens * 4.0 * PAPER.shape.d_model * PAPER.shape.vocab
    kr = job_totals(PAPER, "dlora-kr")
    all_modules = job_totals(PAPER, "dlora-all")

    def job_saving(**change: object) -> float:
        job = dataclasses.replace(PAPER, **change)
        return 1 - job_totals(job, "dlora-kr")["edge_flops"] / job_totals(job, "dlora-all")["edge_flops"]

    warm_steps = (PAPER.kr_warmup_rounds + 1) * PAPER.kr_interval_steps
    rows = [
        ("head + loss on the device, per step (both arms)", f"{head / 1e9:.1f} GFLOP"),
        ("PEFT work + optimizer per step, all 128 modules", f"{(step_all.edge_flops - head) / 1e9:.1f} GFLOP"),
        (f"PEFT work + optimizer per step, B = {PAPER.budget}", f"{(step_kr.edge_flops - head) / 1e9:.1f} GFLOP"),
        ("edge FLOPs saved, one steady step", _pct(1 - step_kr.edge_flops / step_all.edge_flops)),
        (f"steps with every module before the first cut ({PAPER.kr_warmup_rounds} warm-up round + the deciding window)",
         f"{warm_steps} of {PAPER.steps}"),
        ("edge FLOPs of the warm-up beyond B, share of KR's job", _pct(kr["warmup_extra_edge_flops"] / kr["edge_flops"])),
        ("edge FLOPs of probes and norms, share of KR's job", _pct(kr["kr_edge_flops"] / kr["edge_flops"])),
        ("edge FLOPs saved, whole job", _pct(1 - kr["edge_flops"] / all_modules["edge_flops"])),
        ("… without warm-up rounds (the first window still trains every module)", _pct(job_saving(kr_warmup_rounds=0))),
        ("… with the head in the cloud", _pct(job_saving(head_placement="cloud"))),
    ]
    return "\n".join(["| quantity | value |", "|---|---:|", *(f"| {a} | {b} |" for a, b in rows)])


def _fleet() -> str:
    """The shipped default scenario, simulated: what `make demo` prints, per strategy."""
    scenario = load_scenario(FLEET_SCENARIO)
    result = simulate(scenario)
    devices = scenario.fleet.device_count
    lines = [
        f"`{FLEET_SCENARIO.relative_to(REPO)}`: {devices} devices, {scenario.job.total_steps} steps, seed "
        f"{scenario.run.seed}, {scenario.run.granularity} granularity; per device, whole job:",
        "",
        "| strategy | finished | median completion | GB moved | bytes saved, steady step | bytes saved, job "
        "| edge FLOPs saved | KR rounds | probes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in scenario.run.strategies:
        block = result.strategy(name)
        savings = block.get("savings_vs_baseline") or {}
        median = block["completion_p50_s"]
        per_device = block["per_finished_device"]  # means over finished devices only
        cells = [
            name, f"{block['finished_devices']} of {devices}",
            "> horizon" if median is None else f"{median / 3600:.1f} h",
            "–" if per_device["bytes_total"] is None else f"{per_device['bytes_total'] / 1e9:,.1f}",
            _pct(savings["steady_step_bytes"]) if savings.get("steady_step_bytes") is not None else "–",
            _pct(savings["bytes_total"]) if savings.get("bytes_total") is not None else "–",
            _pct(savings["edge_flops"]) if savings.get("edge_flops") is not None else "–",
            f"{block['kr_rounds'] // devices}", f"{block['kr_probes'] // devices}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The bills of the same run (whole job; per device = per finished device): the cloud's GPU time used "
              "and the pool rented until the last device finished, the devices' compute and radio energy, and the "
              "mobile data their users pay for at each link's price (`data_usd_per_gb`):", "",
              "| strategy | GPU busy $ | GPUs rented $ | GPU utilisation | compute energy per device | radio energy "
              "per device | mobile data $ per device |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in scenario.run.strategies:
        block = result.strategy(name)
        per_device = block["per_finished_device"]
        lines.append(f"| {name} | {block['money_usd']:,.2f} | {block['provisioned_usd']:,.2f} | "
                     f"{_pct(block['gpu_utilisation'])} | {per_device['energy_j']:,.0f} J | "
                     f"{_joules(per_device['radio_energy_j'])} | {per_device['data_usd']:,.2f} |")
    return "\n".join(lines)


def _accuracy_groups() -> list:
    return group_profiles(load_folder(REPO / "profiles"))


def _kr_accuracy() -> str:
    """Test accuracy of the committed MiniLM-L6 runs at B = 3 of 24, by task and arm."""
    rows = [r for r in _accuracy_groups() if r.peft == "lora" and r.budget in (3, r.n_modules)]
    cell: dict[tuple[str, str], str] = {}
    for r in rows:
        acc = 100 * np.array(r.test_accuracy)
        if (r.task, r.arm) not in cell:
            cell[(r.task, r.arm)] = f"{acc.mean():.1f} [{acc.min():.1f}–{acc.max():.1f}] ({len(acc)})"
    lines = ["| task | " + " | ".join("all 24 modules" if a == "all" else f"{a}, B=3" for a in ACCURACY_ARMS) + " |",
             "|---|" + "---:|" * len(ACCURACY_ARMS)]
    for task in ACCURACY_TASKS:
        lines.append(f"| {task} | " + " | ".join(cell.get((task, arm), "–") for arm in ACCURACY_ARMS) + " |")
    lines += ["", "Test accuracy %, mean [min–max] over the seeds (their count in brackets); "
              "150 steps, window 15, one warm-up round, lr 1e-3 (`profiles/README.md` has every run)."]
    return "\n".join(lines)


def _sensitivity() -> str:
    """How the headline ratios move with one change from the paper's set-up."""
    changes: list[tuple[str, dict[str, object]]] = [
        ("default", {}),
        ("`--head cloud`", {"head_placement": "cloud"}),
        ("`--kr-warmup-rounds 0`", {"kr_warmup_rounds": 0}),
        ("`--probe-batch 1`", {"probe_batch": 1}),
        ("`--seq-len 128`", {"seq_len": 128}),
        ("`--seq-len 1024`", {"seq_len": 1024}),
        ("`--kr-interval 100`", {"kr_interval_steps": 100}),
        ("`--kr-interval 10`", {"kr_interval_steps": 10}),
        ("`--loss-tokens 256` (head on every token)", {"loss_tokens_per_sample": 256}),
        ("`--killed-policy edge-forward`", {"killed_policy": "edge-forward"}),
        ("`--no-share-inputs`", {"share_inputs": False}),
        ("`--peft adapter --budget 8`", {"peft": PeftSpec("adapter"), "budget": 8}),
    ]
    keys = ("comm_bytes_reduction", "step_edge_flops_reduction", "edge_flops_reduction", "job_comm_bytes_reduction")
    lines = ["| change from the default | step module bytes ↓ | step edge FLOPs ↓ | job edge FLOPs ↓ | job bytes ↓ |",
             "|---|---:|---:|---:|---:|"]
    for label, change in changes:
        h = CostModel(dataclasses.replace(PAPER, **change)).evaluate().headline
        lines.append(f"| {label} | " + " | ".join(f"{float(h[k]):.3f}" for k in keys) + " |")
    return "\n".join(lines)


def _phone_lte() -> str:
    """The paper's job on a mid phone over LTE against an A100: time, traffic and energy per strategy."""
    table = CostModel(PAPER, device="phone-mid", link="lte", gpu="a100").evaluate()
    weights = CostModel(dataclasses.replace(PAPER, exchange="weights"), device="phone-mid", link="lte").evaluate()
    lines = ["| strategy | traffic | link time | edge compute | compute energy | radio energy | fits the phone |",
             "|---|---:|---:|---:|---:|---:|---|"]
    rows = [(s, table.values[s]) for s in ("dlora-all", "dlora-kr", "dlora-random", "edge-only", "cloud-only")]
    rows.append(("dlora-kr, `--exchange weights`", weights.values["dlora-kr"]))
    for name, v in rows:
        lines.append(f"| {name} | {_bytes(float(v['job_bytes_total']))} | {float(v['job_link_s']) / 3600:,.1f} h "
                     f"| {float(v['job_edge_s']):,.0f} s | {float(v['job_energy_j']) / 1e3:,.2f} kJ "
                     f"| {float(v['job_radio_energy_j']) / 1e6:,.3f} MJ | {'yes' if bool(v['fits_on_device']) else 'no'} |")
    return "\n".join(lines)


def _strategies() -> str:
    """Every strategy on the paper's job, on a mid phone over LTE and a laptop on Wi-Fi (A100 cloud)."""
    lines = ["| set-up | strategy | traffic | device FLOPs | device memory | time (no overlap) | cloud $ "
             "| the cloud sees |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for device, link in (("phone-mid", "lte"), ("laptop", "wifi")):
        table = CostModel(PAPER, device=device, link=link, gpu="a100").evaluate()
        for name in STRATEGIES:
            v = table.values[name]
            fits = bool(v["fits_on_device"])
            seen = ", ".join(get_strategy(name).cloud_sees(PAPER)) or "nothing"
            time = f"{float(v['job_time_s']) / 3600:,.1f} h" if fits else "does not fit"
            lines.append(f"| {device} / {link} | {name} | {_bytes(float(v['job_bytes_total']))} "
                         f"| {float(v['job_edge_flops']):.2e} | {_bytes(float(v['edge_weight_bytes']))} "
                         f"| {time} | {float(v['job_usd']):,.2f} | {seen} |")
    return "\n".join(lines)


PRIVACY_RECORD = REPO / "profiles" / "privacy" / "privacy.json"
FEDERATED = REPO / "profiles" / "federated"
KR_STUDY = REPO / "profiles" / "kr-study"
#: the study's finished phases (scripts/kr_study.sh), as (task, PEFT, steps, budgets, seeds); the
#: budget-free arms (all, head-only) join each at its seeds. Only finished phases are listed, so
#: runs still landing in the folder do not move these numbers until a phase is added here.
KR_STUDY_PHASES = (
    ("noun-supersense", "lora", 150, (3,), range(10)),        # main
    ("definition-mc", "lora", 150, (3,), range(5)),           # mc
    ("noun-supersense", "lora", 150, (1, 6, 12), range(3)),   # budget
    ("noun-supersense", "adapter", 150, (2,), range(3)),      # peft: Adapter, B = 2 of 12
    ("noun-supersense", "ia3", 150, (3,), range(3)),          # peft: IA3, B = 3 of 18
    ("noun-supersense", "lora", 1000, (3,), range(5)),        # long: near the all-modules plateau
    ("definition-mc", "lora", 1000, (3,), range(5)),          # mc-long: its deciding arms' 5 seeds
)


@functools.lru_cache(maxsize=1)
def _kr_study_all() -> list:
    """Every run in profiles/kr-study with per-example predictions (read once)."""
    from dlora_sim.study.paired import load_runs

    return load_runs(KR_STUDY)[0]


@functools.lru_cache(maxsize=1)
def _kr_study_runs() -> tuple:
    """The finished phases' runs, with every arm's summary and its paired differences to
    random, static-random and kr (at each budget, within each setting)."""
    from dlora_sim.study.paired import BUDGET_FREE, compare_arms, summarise_arms

    runs = _kr_study_all()
    keep = [r for r in runs if any(
        r.setting.task == task and r.setting.peft == peft and r.setting.steps == steps and r.seed in seeds
        and (r.budget in budgets or r.variant in BUDGET_FREE) for task, peft, steps, budgets, seeds in KR_STUDY_PHASES)]
    present = {r.variant for r in keep}
    rows = [row for b in ("random", "static-random", "kr") if b in present for row in compare_arms(keep, b)]
    return keep, summarise_arms(keep), rows


def _kr_study() -> str:
    """The KR study: per task at B = 3 (and per PEFT method), each arm's accuracy with its 95 %
    interval and its paired difference to random and static-random; then, for every task and
    budget, each score-driven arm against the two random arms, with the verdict in words."""
    from dlora_sim.study.paired import BUDGET_FREE
    from dlora_sim.study.tables import answer_markdown, summary_markdown, verdict_markdown

    _, arms, rows = _kr_study_runs()
    # one budget per setting here: B = 3 for LoRA (the budget curve is the kr-budget block), the
    # phase's own B for Adapter and IA3
    main = {(a.setting, a.budget) for a in arms if a.variant not in BUDGET_FREE
            and (a.setting.peft != "lora" or a.budget == 3)}
    settings = {s for s, _ in main}
    shown = [a for a in arms if (a.setting, a.budget) in main or (a.setting in settings and a.variant in BUDGET_FREE)]
    # the budget-free arms' Δ are shown at B = 3 only (the other budgets are in the kr-budget block)
    table_rows = [c for c in rows if c.baseline != "kr" and (c.setting, c.budget) in main]
    verdict_rows = [c for c in rows if c.baseline != "kr"]
    return "\n".join(["Where KR (today's score) beats random selection, and by how much (Δ: paired difference "
                      "in points, two-way 95% interval; * excludes 0):", "", answer_markdown(rows),
                      summary_markdown(shown, table_rows),
                      "Every score-driven arm against random selection, per task and budget "
                      "(`dlora-sim profiles compare profiles/kr-study --baseline random --baseline static-random`):",
                      "", verdict_markdown(verdict_rows)])


#: the study's finished plateau runs: (task, PEFT, steps, seeds) of all-modules runs with a test curve
KR_PLATEAU = (("noun-supersense", "lora", 600, (0, 1)), ("noun-supersense", "lora", 1500, (0,)))


def _kr_plateau() -> str:
    """All-modules LoRA on noun supersense, test accuracy against steps: where it stops improving,
    and the paired gain of the long runs over shorter runs of the same seeds."""
    from dlora_sim.study.curve import curve_markdown, gain_over_shorter, load_curves

    runs = _kr_study_all()
    parts = []
    for task, peft, steps, seeds in KR_PLATEAU:
        curve = next(c for c in load_curves(KR_STUDY, seeds) if (c.task, c.peft, c.arm, c.steps) == (task, peft, "all", steps))
        shorter = [r for r in runs if r.seed in seeds and r.setting.steps < steps]
        parts.append(curve_markdown(curve, 0.01, gain_over_shorter(curve, shorter + [r for r in runs if r.setting.steps == steps])))
    return "\n".join(parts) + ("\n`dlora-sim profiles curve profiles/kr-study` (the runs: `scripts/kr_study.sh plateau`; "
                               "the plateau step: the first evaluation within 1 point of the curve's best).")


def _kr_budget() -> str:
    """Noun supersense: test accuracy against the budget B for kr, random and static-random, with
    95 % intervals, and KR's paired difference to each random arm at every B."""
    from dlora_sim.study.tables import budget_markdown

    _, arms, rows = _kr_study_runs()
    setting = next(a.setting for a in arms if a.setting.task == "noun-supersense" and a.setting.peft == "lora"
                   and a.setting.steps == 150)
    return budget_markdown(arms, [c for c in rows if c.baseline != "kr"], setting)


def _federated() -> str:
    """Federated LoRA's accuracy (real FedAvg runs) next to one user's all-modules LoRA."""
    from dlora_sim.cli.fed import group_records, load_records

    rows = group_records(load_records(FEDERATED))
    single = [r for r in _accuracy_groups() if r.task == "noun-supersense" and r.peft == "lora" and r.arm == "all"]
    lines = ["| noun supersense, LoRA r=8 | users | label skew (0 = IID) | test acc % | seeds |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        acc = 100 * np.array(r.test_accuracy)
        lines.append(f"| FedAvg, Dirichlet α = {r.alpha:g}, {r.rounds} rounds × {r.local_steps} local steps "
                     f"| {r.users} | {np.mean(r.label_skew):.2f} | {acc.mean():.1f} [{acc.min():.1f}–{acc.max():.1f}] "
                     f"| {len(acc)} |")
    for r in single:
        acc = 100 * np.array(r.test_accuracy)
        lines.append(f"| one user, all {r.n_modules} modules (the DLoRA baseline's accuracy) | 1 | – "
                     f"| {acc.mean():.1f} [{acc.min():.1f}–{acc.max():.1f}] | {len(acc)} |")
    lines += ["", "`dlora-sim fed table profiles/federated` has every run (`scripts/reproduce_federated.sh`)."]
    return "\n".join(lines)


def _privacy() -> str:
    """The committed privacy audit (``dlora-sim privacy``): recovery per noise scale with the
    accuracy real training keeps at it, the defences beyond noise, the split-learning cut, labels."""
    record = json.loads(PRIVACY_RECORD.read_text(encoding="utf-8"))
    rms = record["embedding_rms"]
    accuracy = {row["sigma"]: row for row in record["noise_accuracy"]}
    seeds = len(next(iter(accuracy.values()))["seeds"])
    lines = [f"`dlora-sim privacy -o profiles/privacy --examples {record['examples']} --profiles profiles/privacy` "
             f"({record['model']}, {record['examples']} test examples of {record['task']}, "
             f"{record['token_recovery'][0]['tokens']:,} tokens, at most {record['max_len']} each; the uploaded "
             f"values have an RMS of {rms:.2f}); the accuracy is the test accuracy of real training with the "
             f"noise on in training and at test, mean [min–max] of {seeds} seeds (`scripts/privacy_profiles.sh`).",
             "", "| noise σ on the uploaded embeddings | σ / RMS | tokens the cloud recovers | test accuracy |",
             "|---:|---:|---:|---:|"]
    for row in record["token_recovery"]:
        acc = accuracy.get(row["sigma"])
        cell = "–" if acc is None else (f"{100 * acc['mean']:.1f} [{100 * min(acc['test_accuracy']):.1f}–"
                                        f"{100 * max(acc['test_accuracy']):.1f}]")
        lines.append(f"| {row['sigma']:g} | {row['sigma'] / rms:.2f} | {_pct(row['rate'])} | {cell} |")
    rotation, table = record["rotation"]["rate"], record["trained_table"]
    lines += ["", "| defence | the cloud's attack | tokens recovered |", "|---|---|---:|",
              f"| private rotation | nearest row of the public table | {_pct(rotation['nearest_row'])} |",
              f"| private rotation | distances to the {record['rotation']['anchors']} [CLS]/[SEP]/[PAD] uploads "
              f"it can place | {_pct(rotation['anchor_distances'])} |",
              f"| private rotation | orthogonal Procrustes fit on those, then nearest row "
              f"| {_pct(rotation['procrustes_refit'])} |",
              f"| private rotation | R solved from the rotated first-layer weights it needs to run the blocks "
              f"| {_pct(rotation['public_weights'])} |",
              f"| embedding table trained on the device ({table['steps']} steps; test accuracy "
              f"{100 * table['test_accuracy']:.1f}%) | nearest row of the public table | {_pct(table['rate'])} |"]
    inversion = record["inversion"]
    lines += ["", f"Split learning, hidden state after block k, inverted by a {inversion['model']} fitted on "
                  f"{inversion['public_tokens']:,} tokens of public text ({inversion['public_text']}): "
              + ", ".join(f"k = {b['block']}: {_pct(b['rate'])}" for b in inversion["blocks"]) + "."]
    labels = record["label_recovery"]
    lines += ["", f"Labels recovered from the gradient through a {labels['head']} head: "
                  f"{_pct(labels['rate'])} of {labels['examples']}."]
    return "\n".join(lines)


#: block name -> (the document it lives in, the function that computes it)
SCALE_RECORD = REPO / "benchmarks" / "results" / "scale.json"


def _scale_speed() -> str:
    """The scale benchmark's last recorded run (``bench_scale.py --record``): the three engines
    side by side on 1,000 devices, then the segment engine alone up to 10^6 devices."""
    record = json.loads(SCALE_RECORD.read_text(encoding="utf-8"))
    m, side = record["machine"], record["side_by_side"]
    lines = [f"`{record['command']} --record benchmarks/results/scale.json`, on {m['cpus']} cores (load average "
             f"{m['load_1min']:.1f} when it began; Python {m['python']}):", "",
             f"| {side['devices']:,} devices × {side['steps']:,} steps × {side['strategies']} strategies, one process "
             "| wall s | CPU s | device-steps/s | × naive (wall) | × naive (CPU) |", "|---|---:|---:|---:|---:|---:|"]
    for name, run in side["engines"].items():
        lines.append(f"| {name} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | {run['device_steps_per_s']:,.0f} "
                     f"| {run['vs_naive']:.1f} | {run['vs_naive_by_cpu']:.1f} |")
    planner, every = side["largest_difference"]["planner"], side["largest_difference"]["any"]
    lines += ["", f"`step` against `segment` ({side['steps']:,}-step job), largest relative difference: {100 * planner[0]:.2f}% over "
                  f"the figures a planner reads ({planner[1]}), {100 * every[0]:.2f}% over every summary figure ({every[1]})."]
    if side["apart"]:
        lines += ["", "Figures further apart than 1% (step, segment): " + "; ".join(
            f"{name} {100 * rel:.2f}% ({x:.4g}, {y:.4g})" for rel, name, x, y in side["apart"]) + "."]
    lines += ["", "| segment, 1,000-step job × 4 strategies | workers | wall s | CPU s | device-steps/s | peak RSS MB |",
              "|---:|---:|---:|---:|---:|---:|"]
    for run in record["segment"]:
        lines.append(f"| {run['devices']:,} devices | {run['workers']} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} "
                     f"| {run['device_steps_per_s']:,.0f} | {run['rss_mb']:,.0f} |")
    lines += ["", "Device-steps count every strategy's steps, redone ones included (the naive model's too); peak RSS "
                  "is the largest process's (a worker's, with two).", ""]
    lines += [f"- goal: {line}" for line in record["goals"]]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[str, Callable[[], str]]] = {
    "headline": ("README.md", _headline),
    "edge-flops": ("README.md", _edge_flops),
    "fleet": ("README.md", _fleet),
    "kr-accuracy": ("README.md", _kr_accuracy),
    "kr-budget": ("README.md", _kr_budget),
    "strategies": ("README.md", _strategies),
    "privacy": ("README.md", _privacy),
    "privacy-audit": ("docs/privacy.md", _privacy),
    "federated": ("README.md", _federated),
    "kr-study": ("README.md", _kr_study),
    "kr-plateau": ("README.md", _kr_plateau),
    "cost-sensitivity": ("docs/cost.md", _sensitivity),
    "cost-phone-lte": ("docs/cost.md", _phone_lte),
    "scale-speed": ("docs/simulator.md", _scale_speed),
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- figures:{re.escape(name)} -->\n)(.*?)(<!-- /figures:{re.escape(name)} -->)", re.S)


def render(document: str, names: list[str], where: str) -> tuple[str, list[str]]:
    """``document`` with the named blocks recomputed, and the names of those that changed.

    Raises:
        ValueError: a block's markers are missing from the document.
    """
    changed = []
    for name in names:
        match = _pattern(name).search(document)
        if match is None:
            raise ValueError(f"{where}: no '<!-- figures:{name} -->' ... '<!-- /figures:{name} -->' markers")
        body = BLOCKS[name][1]().rstrip("\n") + "\n"
        if match.group(2) != body:
            changed.append(name)
            document = document[:match.start(2)] + body + document[match.end(2):]
    return document, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the blocks in their documents")
    mode.add_argument("--check", action="store_true", help="exit 1 if a block differs from what the code computes")
    parser.add_argument("--root", type=Path, default=REPO, help="the folder the documents are in (default: the repo)")
    parser.add_argument("--only", choices=sorted(BLOCKS), action="append", help="only these blocks (repeatable)")
    args = parser.parse_args(argv)
    names = args.only or list(BLOCKS)
    drifted = []
    for document_name in dict.fromkeys(BLOCKS[n][0] for n in names):
        path = args.root / document_name
        mine = [n for n in names if BLOCKS[n][0] == document_name]
        try:
            document, changed = render(path.read_text(encoding="utf-8"), mine, str(path))
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        drifted += [(path, n) for n in changed]
        if args.write and changed:
            atomic_write_text(path, document)
    if args.check:
        for path, name in drifted:
            print(f"{path}: block '{name}' differs from the code; run scripts/doc_figures.py --write", file=sys.stderr)
        return 1 if drifted else 0
    print(f"{len(drifted)} of {len(names)} blocks rewritten ({', '.join(n for _, n in drifted) or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
