"""``dlora-sim cost``: price one DLoRA configuration against every strategy (issue 2).

Prints a table of cloud-only, edge-only, DLoRA all-modules, DLoRA+KR and DLoRA+random-B, or with
``--json`` one JSON object whose headline keys compare DLoRA+KR against DLoRA all-modules.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlora_sim.cli.app import app
from dlora_sim.cli.narrow import print_table
from dlora_sim.cost import (
    BASELINE,
    DEVICES,
    GPUS,
    LINKS,
    MODELS,
    STRATEGIES,
    CloudGPU,
    CostModel,
    JobSpec,
    PeftSpec,
    cloud_session_bytes,
    cloud_weight_bytes,
    get_gpu,
    get_model,
    get_strategy,
    sessions_per_gpu,
)
from dlora_sim.cost.model import COUNT_METRICS, PRICED_METRICS, REDUCTION_METRICS
from dlora_sim.errors import InputError
from dlora_sim.kr import profile_churn
from dlora_sim.profile import load_profile

HEADLINE_NOTES = {
    "comm_bytes_reduction": "one steady-state step, per-module (PEFT) exchange bytes: the traffic KR controls",
    "unshared_comm_bytes_reduction": "the same against an all-modules step that sends each module its own "
                                     "input (no --share-inputs): the paper's count",
    "step_total_bytes_reduction": "one steady-state step, all bytes incl. fixed embeddings/hidden-state traffic",
    "job_comm_bytes_reduction": "whole job, all bytes incl. warm-up, probes, kill uploads and set-up downloads",
    "step_edge_flops_reduction": "one steady-state step, edge FLOPs (head on the device stays)",
    "edge_flops_reduction": "whole job, edge FLOPs incl. warm-up, probe batches and norm computation",
}


def _targets(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _num(x: Any) -> float | bool | None:
    """A JSON-safe scalar: NaN/inf become null."""
    if hasattr(x, "dtype") and x.dtype == bool:
        return bool(x)
    value = float(x)
    return value if math.isfinite(value) else None


def _human(value: float, unit: str) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _hours(seconds: float) -> str:
    """A duration in the unit that reads best (s, min, h, d)."""
    for limit, size, unit in ((120, 1, "s"), (7200, 60, "min"), (172800, 3600, "h")):
        if seconds < limit:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds / 86400:.3g} d"


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "—"
    return f"{100 * x:.1f}%" if abs(x) < 10 else f"{100 * x:.3g}%"


_DEVICE_HELP = (f"Edge device: {', '.join(DEVICES)}, or an inline TOML table as in a scenario, e.g. "
                "'{ flops_per_s = 2e12, memory_bytes = 8e9, joules_per_flop = 1e-11 }'.")
_LINK_HELP = (f"Access link: {', '.join(LINKS)}, or an inline TOML table as in a scenario, e.g. "
              "'{ up_bps = 2e7, down_bps = 1e8, rtt_s = 0.04 }' or '{ name = \"lte\", data_usd_per_gb = 2.5 }' "
              "(a table naming a catalogue link changes only the fields it gives).")

#: options that describe the job or its hardware: a SCENARIO states them instead
_SCENARIO_STATES = ("model", "peft", "rank", "adapter_size", "targets", "budget", "device", "link", "gpu", "batch",
                    "seq_len", "steps", "samples_per_epoch", "killed_policy", "head", "exchange", "share_inputs",
                    "kr_interval", "kr_warmup_rounds", "kr_churn", "profile", "probe_batch", "loss_tokens",
                    "dtype_bytes", "upload_noise", "upload_rotation")


@app.command()
def cost(
    ctx: typer.Context,
    scenario: Annotated[Path | None, typer.Argument(
        metavar="[SCENARIO]", show_default=False,
        help="A scenario TOML file: price its job on one fleet group's device and link (--group) and its "
             "cloud GPU, as `run` simulates them; the job and hardware options below then come from the "
             "file (change them with --set).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", metavar="FIELD=VALUE",
        help="With SCENARIO: override a scenario field, as `run --set` does (e.g. --set job.budget=8). Repeatable.")] = None,
    group: Annotated[str | None, typer.Option(
        help="With SCENARIO: the fleet group whose device and link are priced (default: the first).")] = None,
    model: Annotated[str, typer.Option(help=f"Model shape: {', '.join(MODELS)}.")] = "llama-7b",
    peft: Annotated[str, typer.Option(help="PEFT method: lora, adapter or ia3.")] = "lora",
    rank: Annotated[int, typer.Option(help="LoRA rank r.")] = 8,
    adapter_size: Annotated[int, typer.Option(help="Bottleneck width of the Adapter method.")] = 64,
    targets: Annotated[str | None, typer.Option(
        help="Comma-separated generic targets: q,k,v,o,gate,up,down (lora/ia3) or attn,ffn (adapter). "
             "Default: lora q,k,v,o; adapter attn,ffn; ia3 k,v,down.")] = None,
    budget: Annotated[int, typer.Option(help="KR budget B: PEFT modules active after warm-up.")] = 16,
    device: Annotated[str, typer.Option(help=_DEVICE_HELP)] = "phone-mid",
    link: Annotated[str, typer.Option(help=_LINK_HELP)] = "lte",
    gpu: Annotated[str, typer.Option(help=f"Cloud GPU: {', '.join(GPUS)}.")] = "a100",
    batch: Annotated[int, typer.Option(help="Samples per step.")] = 4,
    seq_len: Annotated[int, typer.Option(help="Tokens per sample.")] = 256,
    steps: Annotated[int, typer.Option(help="Optimizer steps in the whole job.")] = 1000,
    samples_per_epoch: Annotated[int | None, typer.Option(
        help="Training samples per epoch (default: the job is one epoch).")] = None,
    killed_policy: Annotated[str, typer.Option(
        help="offload: killed modules' weights go to the cloud once; edge-forward: they keep running "
             "forward on the device.")] = "offload",
    head: Annotated[str, typer.Option(help="Where the head and loss run: edge or cloud.")] = "edge",
    exchange: Annotated[str, typer.Option(
        help="activations: per-module round trips; weights: active modules' weights up, gradients down.")
    ] = "activations",
    share_inputs: Annotated[bool, typer.Option(
        help="Send an input that several active modules read (q, k, v; gate, up) once, and sum their "
             "input gradients.")] = True,
    kr_interval: Annotated[int, typer.Option(help="Steps between KR rounds.")] = 50,
    kr_warmup_rounds: Annotated[int, typer.Option(help="KR windows with every module active first.")] = 1,
    kr_churn: Annotated[float | None, typer.Option(
        help="Modules swapped after the first KR cut over the whole job, in units of B (default 1.0, "
             "or measured in --profile).")] = None,
    profile: Annotated[Path | None, typer.Option(
        help="A profile whose recorded KR history gives the churn (instead of --kr-churn).")] = None,
    probe_batch: Annotated[int | None, typer.Option(help="Samples in KR's probe batch (default: --batch).")] = None,
    loss_tokens: Annotated[int, typer.Option(
        help="Tokens per sample that go through the head and loss (1: classification/multiple choice).")] = 1,
    dtype_bytes: Annotated[int, typer.Option(help="Bytes per exchanged value and weight (2 = fp16).")] = 2,
    upload_noise: Annotated[float, typer.Option(
        help="DLoRA: Gaussian noise σ the device adds to its uploaded embeddings (docs/privacy.md).")] = 0.0,
    upload_rotation: Annotated[bool, typer.Option(
        help="DLoRA: the device rotates its uploaded embeddings with a private rotation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Price a DLoRA fine-tuning job under every strategy and compare against DLoRA all-modules.

    The job comes from the options, or from a SCENARIO file (its job, one fleet group's device and
    link, its cloud GPU), as `run` reads it.
    """
    from dlora_sim.scenario.pricing import inline_hardware, scenario_inputs

    if scenario is not None:
        typed = [f"--{name.replace('_', '-')}" for name in _SCENARIO_STATES
                 if (source := ctx.get_parameter_source(name)) is not None and source.name == "COMMANDLINE"]
        if typed:
            raise InputError(f"{scenario}: the scenario states the job and its hardware; instead of "
                             f"{', '.join(typed)} use --set FIELD=VALUE (e.g. --set job.budget=8)")
        from dlora_sim.scenario import load_scenario, parse_override

        loaded = load_scenario(scenario, dict(parse_override(item) for item in set_ or []))
        job, edge, access, cloud, group = scenario_inputs(loaded, group)
        place = f"{scenario} (group {group})"
    else:
        if set_ or group is not None:
            raise InputError("--set and --group need a SCENARIO file (dlora-sim cost SCENARIO --set ...)")
        get_model(model), get_gpu(gpu)  # name checks first
        edge, access = inline_hardware(device, link)
        cloud = get_gpu(gpu)
        spec = PeftSpec(method=peft, rank=rank, targets=_targets(targets), adapter_size=adapter_size)
        job = JobSpec(model=model, peft=spec, batch=batch, seq_len=seq_len, steps=steps, budget=budget,
                      dtype_bytes=dtype_bytes, killed_policy=killed_policy, head_placement=head,
                      exchange=exchange, share_inputs=share_inputs, kr_interval_steps=kr_interval, kr_warmup_rounds=kr_warmup_rounds,
                      kr_churn=_churn(kr_churn, profile), probe_batch=probe_batch, loss_tokens_per_sample=loss_tokens,
                      samples_per_epoch=samples_per_epoch, upload_noise=upload_noise, upload_rotation=upload_rotation)
        place = None
    table = CostModel(job, device=edge, link=access, gpu=cloud).evaluate()
    report = _report(job, table, edge.name, access.name, cloud)
    if place is not None:
        report["config"]["scenario"] = place
    if as_json:
        typer.echo(json.dumps(report, indent=2, sort_keys=True, allow_nan=False))
    else:
        _print_table(report)


def _churn(kr_churn: float | None, profile: Path | None) -> float:
    """KR's churn over the job: given, measured in a profile, or the default of one budget."""
    if profile is None:
        return 1.0 if kr_churn is None else kr_churn
    if kr_churn is not None:
        raise InputError("--kr-churn and --profile both set the churn; give one")
    try:
        recorded = load_profile(profile)
    except ValueError as error:
        raise InputError(f"{profile}: {error}") from None
    return profile_churn([list(row) for row in recorded.traces.active], recorded.setup.budget)


def _report(job: JobSpec, table, device: str, link: str, gpu: CloudGPU) -> dict[str, Any]:
    strategies = {}
    for s in STRATEGIES:
        v, r = table.values[s], table.reductions[s]
        entry: dict[str, Any] = {}
        for level in ("step", "epoch", "job"):
            entry[level] = {m: _num(v[f"{level}_{m}"]) for m in (*COUNT_METRICS, *PRICED_METRICS)}
        entry["job"].update({k: _num(v[f"job_{k}"]) for k in (
            "kr_bytes", "kr_edge_flops", "warmup_extra_bytes", "warmup_extra_edge_flops", "setup_bytes_down")})
        entry["edge_weight_bytes"] = _num(v["edge_weight_bytes"])
        entry["cloud_session_bytes"] = cloud_session_bytes(job, s)
        entry["cloud_weight_bytes"] = cloud_weight_bytes(job, s)
        entry["sessions_per_gpu"] = sessions_per_gpu(job, s, gpu) if entry["cloud_session_bytes"] else None
        entry["cloud_sees"] = list(get_strategy(s).cloud_sees(job))
        entry["fits_on_device"] = bool(v["fits_on_device"])
        entry[f"reduction_vs_{BASELINE}"] = {f"{lvl}_{m}": _num(r[f"{lvl}_{m}"])
                                              for lvl in ("step", "job") for m in REDUCTION_METRICS}
        strategies[s] = entry
    out: dict[str, Any] = {k: _num(v) for k, v in table.headline.items()}
    out["notes"] = HEADLINE_NOTES
    out["config"] = {
        "model": job.shape.name, "peft": job.peft.method, "rank": job.peft.rank, "targets": list(job.peft.targets),
        "adapter_size": job.peft.adapter_size, "modules": job.table.n_modules, "budget": job.budget,
        "batch": job.batch, "seq_len": job.seq_len, "steps": job.steps, "steps_per_epoch": job.steps_per_epoch,
        "killed_policy": job.killed_policy, "head_placement": job.head_placement, "exchange": job.exchange,
        "share_inputs": job.share_inputs,
        "kr_interval_steps": job.kr_interval_steps, "kr_warmup_rounds": job.kr_warmup_rounds,
        "kr_churn": job.kr_churn, "probe_batch": job.probe_samples,
        "loss_tokens_per_sample": job.loss_tokens_per_sample, "dtype_bytes": job.dtype_bytes,
        "upload_noise": job.upload_noise, "upload_rotation": job.upload_rotation,
        "device": device, "link": link, "gpu": gpu.name, "baseline": BASELINE,
    }
    out["strategies"] = strategies
    return out


def _print_table(report: dict[str, Any]) -> None:
    console = Console()
    cfg = report["config"]
    if "scenario" in cfg:
        console.print(f"scenario {escape(cfg['scenario'])}")
    console.print(f"[bold]{cfg['model']}[/bold] · {cfg['peft']} ({cfg['modules']} modules) · B={cfg['budget']} · "
                  f"{cfg['device']} on {cfg['link']} · {cfg['gpu']} · {cfg['steps']} steps of "
                  f"{cfg['batch']}×{cfg['seq_len']} tokens · killed: {cfg['killed_policy']} · "
                  f"head: {cfg['head_placement']} · exchange: {cfg['exchange']}")
    step = Table(title="One steady-state step", title_justify="left")
    for header in ("strategy", "edge FLOPs", "up", "down", "round trips", "time (no overlap)"):
        step.add_column(header, justify="left" if header == "strategy" else "right",
                         no_wrap=header == "strategy")
    memory = Table(title=f"Cloud GPU memory ({cfg['gpu']}): a session keeps its step's activations", title_justify="left")
    for header in ("strategy", "weights / GPU", "per session", "sessions / GPU"):
        memory.add_column(header, justify="left" if header == "strategy" else "right", no_wrap=header == "strategy")
    job = Table(title=f"Whole job (edge = edge compute time; data $ = the user's mobile data at the link's "
                      f"price per GB; GPU $ = busy GPU time; saved = vs {BASELINE})", title_justify="left")
    for header in ("strategy", "edge", "compute energy", "radio energy", "link", "traffic", "data $", "GPU-h",
                   "GPU $", "bytes saved", "FLOPs saved", "fits"):
        job.add_column(header, justify="left" if header == "strategy" else "right",
                         no_wrap=header == "strategy")
    for name, e in report["strategies"].items():
        st, jb, red = e["step"], e["job"], e[f"reduction_vs_{BASELINE}"]
        step.add_row(name, _human(st["edge_flops"], "FLOP"), _human(st["bytes_up"], "B"),
                     _human(st["bytes_down"], "B"), f"{st['round_trips']:.0f}", _hours(st["time_s"]))
        memory.add_row(name, _human(e["cloud_weight_bytes"], "B"), _human(e["cloud_session_bytes"], "B"),
                       "–" if e["sessions_per_gpu"] is None else f"{e['sessions_per_gpu']:,}")
        job.add_row(name, _hours(jb["edge_s"]), _human(jb["energy_j"], "J"), _human(jb["radio_energy_j"], "J"),
                    _hours(jb["link_s"]),
                    _human(jb["bytes_total"], "B"), f"{jb['data_usd']:,.2f}", f"{jb['cloud_gpu_s'] / 3600:.2g}",
                    f"{jb['usd']:.2f}",
                    _pct(_nan(red["job_bytes_total"])), _pct(_nan(red["job_edge_flops"])),
                    "yes" if e["fits_on_device"] else "no")
    for table in (step, memory, job):
        print_table(console, table)  # stacked per strategy when the terminal is too narrow
    console.print("DLoRA+KR against DLoRA all-modules:")
    for key, note in report["notes"].items():
        console.print(f"  [bold]{key}[/bold] = {_pct(_nan(report.get(key)))}  [dim]({note})[/dim]")


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)
