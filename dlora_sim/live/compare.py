"""The simulator held against a live run: calibrate, write the matching scenario, simulate, compare.

1. **Calibrate compute** on unshaped loopback, once per exchange mode, KR off: the edge's and
   the cloud's speed are the cost model's FLOPs of the run divided by the seconds each process
   spent working (its time not spent waiting on the other).
2. **Fit the link**: before its first step every run measures its own link through the live
   tunnel: empty round trips (the round-trip time, the transport's own included), 1 MiB down
   only, 1 MiB up only (each direction's goodput, after Ethernet, IP and TCP took their share).
3. **Scenario**: one device with the edge's FLOP/s, a one-GPU cloud with the cloud's FLOP/s
   (``gpu = "live-cpu"``, put in the GPU catalog while the comparison simulates; no batching
   window), the live job (the scenario's job is checked to be :meth:`LiveJob.spec
   <dlora_sim.live.job.LiveJob.spec>`), and the link twice: as *nominal* (the catalog's rates,
   its RTT plus the transport's loopback round trip) and as *fitted* (step 2).
4. **Simulate** both with :func:`dlora_sim.sim.simulate`: per-step time (the job's time after its
   session opened, over its steps), bytes each way and round trips; put them beside the run's.

Bytes are the arrays the protocol moves; the wire's own label (header and array descriptors),
the batch's lengths and the KR mask, ZeroMQ's framing and TCP/IP are reported apart, as overhead.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dlora_sim import cost
from dlora_sim.cost.hardware import GPUS, CloudGPU
from dlora_sim.errors import InputError
from dlora_sim.live.job import LiveJob, job_plan
from dlora_sim.live.runner import LiveRun, run_live
from dlora_sim.live.shaping import LOOPBACK, LinkShape

#: the GPU catalog entry the comparison registers for the cloud process while it simulates
LIVE_GPU = "live-cpu"
#: any committed profile serves: the comparison's KR jobs cut once and have no later round, so the
#: profile's churn, the only thing the simulator reads from it, does not enter
PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "noun-supersense-lora-all-b3-s0.json"
#: link ping-pongs: empty ones, then 1 MiB ones down only and up only
PINGS = (30, 5, 1 << 20)


@dataclass(frozen=True)
class Compute:
    """This machine's compute speeds, as the simulator takes them."""

    edge_flops_per_s: float
    cloud_flops_per_s: float


@dataclass(frozen=True)
class LinkFit:
    """A link as the simulator takes it: goodput each way and round-trip time."""

    up_bps: float
    down_bps: float
    rtt_s: float


@dataclass(frozen=True)
class Side:
    """Per-step time, bytes each way and round trips of a whole job (predicted or measured)."""

    step_s: float
    bytes_up: float
    bytes_down: float
    round_trips: int


@dataclass(frozen=True)
class Row:
    """One line of the fidelity table."""

    link: str
    exchange: str
    kr: bool
    link_note: str
    link_fit: LinkFit
    nominal: Side  # predicted on the catalog link
    fitted: Side  # predicted on the link the run measured
    measured: Side
    framing: float  # what the wire labels (and lengths, masks) add to the arrays, as a fraction of them
    veth_overhead: float | None  # what the veth carried beyond the arrays (both ways, TCP/IP too), when shaped

    @property
    def nominal_error(self) -> float:
        return self.nominal.step_s / self.measured.step_s - 1.0

    @property
    def fitted_error(self) -> float:
        return self.fitted.step_s / self.measured.step_s - 1.0


def _flops(job: LiveJob, run: LiveRun) -> tuple[float, float]:
    """The cost model's edge and cloud FLOPs of everything the run did (its own KR decisions)."""
    plan = [e for _, _, e in job_plan(job, run.edge["rounds"])]
    return sum(e.edge_flops for e in plan), sum(e.cloud_flops for e in plan)


def compute_speeds(run: LiveRun) -> Compute:
    """Both processes' FLOP/s over a run's steps (the cost model's FLOPs over their working seconds;
    the pings before the first step and the closing ``NEXT`` after the last are not steps)."""
    edge_flops, cloud_flops = _flops(run.job, run)
    edge_s = sum(b[3] for b in run.edge["busy"] if b[1] != "none" and b[0] < run.job.steps)
    cloud_s = sum(p["busy_s"] for p in run.cloud["passes"])
    return Compute(edge_flops / edge_s, cloud_flops / cloud_s)


def link_fit(run: LiveRun) -> LinkFit:
    """The link a run measured with its pings (``pings=PINGS``)."""
    pings = run.cloud["pings"]
    rtt, size = statistics.median(pings["small"]), pings["bytes"][0]
    return LinkFit(8 * size / max(statistics.median(pings["up"]) - rtt, 1e-9),
                   8 * size / max(statistics.median(pings["down"]) - rtt, 1e-9), rtt)


def nominal_link(shape: LinkShape, loopback: LinkFit) -> LinkFit:
    """The link as the catalog states it, plus the transport's own round trip (loopback: as measured)."""
    if shape.up_bps is None:
        return loopback
    return LinkFit(shape.up_bps, shape.down_bps, shape.rtt_s + loopback.rtt_s)


def measured(run: LiveRun) -> Side:
    """What the run did: time from the first step's start to the last's end, over the steps."""
    steps = run.cloud["steps"]
    transcript = run.cloud["transcript"]
    return Side(step_s=(steps[-1]["t_end"] - steps[0]["t_begin"]) / len(steps),
                bytes_up=sum(t["bytes_up"] for t in transcript), bytes_down=sum(t["bytes_down"] for t in transcript),
                round_trips=sum(1 for t in transcript if t["exchange"] != "close"))


def scenario(job: LiveJob, link_name: str, compute: Compute, link: LinkFit) -> dict[str, Any]:
    """The scenario that matches ``job`` with this machine's speeds on ``link``."""
    if not PROFILE.exists():
        raise InputError(f"profile: {PROFILE} is missing (the comparison runs from a checkout)")
    spec = job.spec
    return {
        "name": f"live-{link_name}-{job.exchange}-{'kr' if job.kr else 'all'}",
        "description": (f"a live run's twin: edge {compute.edge_flops_per_s:.3g} FLOP/s, cloud "
                        f"{compute.cloud_flops_per_s:.3g} FLOP/s (the live-cpu GPU)"),
        "job": {
            "model": "minilm-l6", "peft": "lora", "rank": job.rank, "targets": list(spec.peft.targets),
            "batch": job.batch, "seq_len": job.seq_len, "dtype_bytes": spec.dtype_bytes, "steps": job.steps,
            "budget": job.budget, "kr_interval_steps": job.kr_window, "kr_warmup_rounds": job.kr_warmup,
            "loss_tokens_per_sample": spec.loss_tokens_per_sample, "head_out_dim": spec.head_out_dim,
            "killed_policy": spec.killed_policy, "head_placement": spec.head_placement, "exchange": job.exchange,
            "share_inputs": job.share_inputs, "profile": str(PROFILE),
        },
        "fleet": {"groups": [{
            "name": "edge", "count": 1,
            "device": {"name": "live-edge", "flops_per_s": compute.edge_flops_per_s, "memory_bytes": 16 * 2**30,
                       "joules_per_flop": 1e-11},
            "link": {"name": link_name, "up_bps": link.up_bps, "down_bps": link.down_bps, "rtt_s": link.rtt_s},
        }]},
        "cloud": {"gpu": LIVE_GPU, "count": 1, "batch_max_users": 1, "batch_window_s": 0.0},
        "run": {"seed": 0, "horizon_s": 1e7, "strategies": [job.strategy], "granularity": "module",
                "timeline_sample_devices": 1},
    }


@contextmanager
def live_gpu(compute: Compute) -> Iterator[None]:
    """The cloud process as a catalog GPU (compute-bound: memory bandwidth never binds), for a while."""
    GPUS[LIVE_GPU] = CloudGPU(LIVE_GPU, compute.cloud_flops_per_s, 1.0, 1.0, 1e18, 64 * 2**30,
                              "this machine's cloud process, calibrated by dlora-sim live --compare")
    try:
        yield
    finally:
        GPUS.pop(LIVE_GPU, None)


def predicted(job: LiveJob, raw: dict[str, Any], compute: Compute) -> Side:
    """Simulate the scenario; the job's time after its session opened, over its steps."""
    from dlora_sim.scenario import scenario_from_dict
    from dlora_sim.sim import simulate

    with live_gpu(compute):
        loaded = scenario_from_dict(raw, source=raw["name"])
        spec = loaded.job.to_job_spec()
        if dataclasses.replace(job.spec, model=spec.model, kr_churn=spec.kr_churn) != spec:
            raise RuntimeError("the written scenario's job is not the live job")
        result = simulate(loaded)
    row = next(r for r in result.devices if r["strategy"] == job.strategy)
    opened = min(t["t_end"] for t in result.timeline if t["strategy"] == job.strategy and t["kind"] == "session")
    setup = cost.setup_bytes_down(job.spec, job.strategy)
    return Side(step_s=(row["completion_s"] - opened) / job.steps, bytes_up=row["bytes_up"],
                bytes_down=row["bytes_down"] - setup, round_trips=int(row["round_trips"]) - 1)


def write_scenario(raw: dict[str, Any], path: Path) -> None:
    """The scenario as TOML (flat tables, one array of tables with inline tables: all it needs)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"

    lines = [f"# written by dlora-sim live --compare; gpu {LIVE_GPU!r} exists only while it runs",
             f"name = {value(raw['name'])}", f"description = {value(raw['description'])}"]
    for table in ("job", "cloud", "run"):
        lines += ["", f"[{table}]", *(f"{k} = {value(v)}" for k, v in raw[table].items())]
    for group in raw["fleet"]["groups"]:
        lines += ["", "[[fleet.groups]]", *(f"{k} = {value(v)}" for k, v in group.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def row(job: LiveJob, shape: LinkShape, compute: Compute, loopback: LinkFit, workdir: Path,
        timeout_s: float = 900.0) -> Row:
    """Measure ``job`` live on ``shape`` and simulate its two twins: *nominal* (the calibration
    run's compute, the catalog link) and *fitted* (this run's own compute speeds and link)."""
    run = run_live(job, workdir / "run", shape, timeout_s=timeout_s, pings=PINGS)
    fit = link_fit(run)
    sides = {}
    for kind, speeds, link in (("nominal", compute, nominal_link(shape, loopback)), ("fitted", compute_speeds(run), fit)):
        raw = scenario(job, f"{shape.name}-{kind}", speeds, link)
        write_scenario(raw, workdir / f"scenario-{kind}.toml")
        sides[kind] = predicted(job, raw, speeds)
    live = measured(run)
    arrays = live.bytes_up + live.bytes_down
    end, start = run.cloud["traffic"], run.cloud["baseline"]["traffic"]
    framing = (end["wire_bytes_received"] + end["wire_bytes_sent"]
               - start["wire_bytes_received"] - start["wire_bytes_sent"]) / arrays - 1.0
    veth = None
    if run.cloud["interface"] is not None:
        now, then = run.cloud["interface"], run.cloud["baseline"]["interface"]
        veth = (now["rx"] + now["tx"] - then["rx"] - then["tx"]) / arrays - 1.0
    out = Row(shape.name, job.exchange, job.kr, run.link_note, fit, sides["nominal"], sides["fitted"], live,
              framing, veth)
    (workdir / "row.json").write_text(json.dumps(asdict(out), indent=2, sort_keys=True), encoding="utf-8")
    return out


def calibration_run(job: LiveJob, workdir: Path, timeout_s: float = 900.0) -> tuple[Compute, LinkFit]:
    """Calibrate on loopback with ``job`` (KR off): compute speeds and the loopback link."""
    run = run_live(job, workdir, LOOPBACK, timeout_s=timeout_s, pings=PINGS)
    compute, link = compute_speeds(run), link_fit(run)
    (workdir / "calibration.json").write_text(json.dumps({"compute": asdict(compute), "loopback": asdict(link)}, indent=2),
                                              encoding="utf-8")
    return compute, link


COLUMNS = ("link", "exchange", "KR", "s/step nominal", "s/step fitted", "s/step live", "err nominal", "err fitted",
           "up MB pred", "up MB live", "down MB pred", "down MB live", "trips pred", "trips live", "framing",
           "on the veth")


def table_rows(rows: list[Row]) -> list[tuple[str, ...]]:
    """The fidelity table's cells, one tuple per row (the CLI and the benchmark print them)."""
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:+.1f}%"

    return [(r.link, r.exchange, "on" if r.kr else "off", f"{r.nominal.step_s:.3f}", f"{r.fitted.step_s:.3f}",
             f"{r.measured.step_s:.3f}", pct(r.nominal_error), pct(r.fitted_error),
             f"{r.fitted.bytes_up / 1e6:.4f}", f"{r.measured.bytes_up / 1e6:.4f}",
             f"{r.fitted.bytes_down / 1e6:.4f}", f"{r.measured.bytes_down / 1e6:.4f}",
             str(r.fitted.round_trips), str(r.measured.round_trips),
             f"{100 * r.framing:.2f}%", pct(r.veth_overhead)) for r in rows]


def format_table(rows: list[Row]) -> str:
    """The fidelity table as aligned plain text, with the median step-time errors under it."""
    cells = [COLUMNS, *table_rows(rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].rjust(widths[i]) for i in range(len(COLUMNS))) for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if rows:
        for kind in ("nominal", "fitted"):
            errors = [abs(getattr(r, f"{kind}_error")) for r in rows]
            lines.append(f"median |step-time error|, {kind} link: {100 * statistics.median(errors):.1f}% over "
                         f"{len(rows)} rows (max {100 * max(errors):.1f}%)")
    return "\n".join(lines)
