"""Configuration points per second: the vectorised CostModel against a fair plain-Python loop.

What is timed. Both sides price the same grid points, and each point yields the same 36 numbers:
``job_time_s``, ``job_usd``, ``job_device_energy_j`` and ``job_bytes_total`` of every strategy
(9 strategies; a whole job, the KR schedule, warm-up, probes, set-up download included).

- Vectorised: ``CostModel(job).evaluate(metrics=..., reductions=(), **grid)`` on the whole grid
  (1,024,000 points by default, :func:`full_grid`), on a fresh ``CostModel`` each call, so its
  per-size module tables and per-schedule KR counts are computed inside the clock. The first call
  of the process is printed on its own: it also pays for the fresh memory its outputs land in
  (page faults, costly on some virtual machines); then the best of ``--repeat`` further calls.
  Each is timed by the wall clock and by the process's CPU time (``time.process_time``: user and
  system, all threads), since on a shared machine the wall clock also measures the others' load.
  The peak RSS printed is the process's after the vectorised calls (the grid arrays included),
  before the loop runs; the line after it says what merely filling that much fresh memory costs
  on the machine.
- Loop (the baseline): an independent scalar implementation of the *same closed form* in plain
  Python floats, one point at a time, written out below (``scalar_point``). Everything that does
  not change from point to point is hoisted out of the loop, as a fair hand-written loop would:
  the module-table sums per PEFT size, the KR schedule counts per distinct (arm, budget, steps,
  window, warm-up, churn), the hardware catalog's numbers; they are computed before the clock
  starts (the vectorised side pays for its own). Nothing per point builds a ``JobSpec``, a module
  table or an exchange list. The loop runs on every k-th point of the same grid (about
  ``--loop-points`` of them); its rate is points per second over those, by wall and CPU time.
  Reading the points into Python numbers is done before its clock starts too, which only
  flatters the loop.

The loop's numbers are checked equal (rtol 1e-9) to the vectorised ones at the points it priced
before any rate is printed, so the two compute the same thing (``tests/test_cost_bench.py`` checks
the same on random points). Speeds vary by machine and load; the goals (issue 10) are >= 1M
points/s and <= 1 GB peak RSS at 10^6 points.

    .venv/bin/python benchmarks/bench_cost.py            # the 1,024,000-point grid
    .venv/bin/python benchmarks/bench_cost.py --quick    # 12,800 points, seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time

import numpy as np

from dlora_sim.cost import STRATEGIES, CostModel, CostTable, JobSpec, PeftSpec, grid
from dlora_sim.cost.hardware import DEVICES, GPUS, LINKS
from dlora_sim.cost.models import base_backward_flops_per_token, base_forward_flops_per_token
from dlora_sim.cost.peft import module_table
from dlora_sim.cost.strategies import get_strategy
from dlora_sim.cost.strategies.base import OPTIMIZER_STATE_BYTES_PER_PARAM
from dlora_sim.cost.strategies.edge_int4 import INT4_BYTES_PER_WEIGHT
from dlora_sim.kr import KRConfig, job_schedule

METRICS = ("job_time_s", "job_usd", "job_device_energy_j", "job_bytes_total")
JOB = JobSpec(model="llama-7b", peft=PeftSpec("lora", rank=8, targets=("q", "k", "v", "o")), budget=16)
HARDWARE = dict(device=list(DEVICES), link=list(LINKS), gpu=["a100", "h100"])  # 5 x 5 x 2


def full_grid() -> dict[str, np.ndarray]:
    """32 budgets x 5 ranks x 8 sequence lengths x 4 batches x 2 loss widths x 2 dtypes x 5
    devices x 5 links x 2 GPUs = 1,024,000 points."""
    return grid(budget=np.arange(4, 129, 4), size=[4, 8, 16, 32, 64],
                seq_len=[64, 128, 192, 256, 384, 512, 768, 1024], batch=[1, 2, 4, 8],
                loss_tokens_per_sample=[1, 32], dtype_bytes=[2, 4], **HARDWARE)


def quick_grid() -> dict[str, np.ndarray]:
    """32 budgets x 2 ranks x 2 sequence lengths x 2 batches x 50 hardware = 12,800 points."""
    return grid(budget=np.arange(4, 129, 4), size=[8, 16], seq_len=[128, 256], batch=[1, 4], **HARDWARE)


# --- the scalar loop ---------------------------------------------------------------------------

def size_stats(job: JobSpec, size: int) -> dict[str, float]:
    """Module-table sums of one PEFT size (hoisted: one per size)."""
    t = module_table(job.shape, dataclasses.replace(job.peft, rank=size))
    m = t.means()
    first = np.unique(t.input_group, return_index=True)[1]
    edge = t.layer < job.split_blocks
    cloud = t.layer >= job.split_blocks if job.split_lora == "both" else np.zeros(t.layer.shape, dtype=bool)
    return {"n": float(t.n_modules), "m_in": m["d_in"], "m_out": m["d_out"], "m_params": m["params"],
            "m_fwd": m["fwd_flops_per_token"], "m_bwd": m["bwd_flops_per_token"],
            "m_bwd_in": m["bwd_input_flops_per_token"], "sum_params": float(t.params.sum()),
            "sum_train": float(np.sum(t.fwd_flops_per_token + t.bwd_flops_per_token)),
            "groups": float(len(first)), "group_in": float(np.sum(t.d_in[first])),
            "e_params": float(t.params[edge].sum()), "e_fwd": float(t.fwd_flops_per_token[edge].sum()),
            "e_bwd": float(t.bwd_flops_per_token[edge].sum()), "c_params": float(t.params[cloud].sum()),
            "c_fwd": float(t.fwd_flops_per_token[cloud].sum()), "c_bwd": float(t.bwd_flops_per_token[cloud].sum())}


def schedule_counts(job: JobSpec, arm: str, budget: int, n_modules: int) -> dict[str, int]:
    """A KR schedule's sums (hoisted: one per distinct schedule)."""
    config = KRConfig(budget=budget, arm=arm, window_steps=job.kr_interval_steps,  # type: ignore[arg-type]
                      warmup_rounds=job.kr_warmup_rounds)
    churn = job.kr_churn if arm == "kr" else 0.0
    return dataclasses.asdict(job_schedule(config, n_modules, job.steps, churn=churn).counts())


def scalar_point(job: JobSpec, p: dict, st: dict, sched: dict, dev, lnk, gpu) -> dict[str, dict[str, float]]:
    """One point, every strategy: the closed form of ``CostModel`` in plain Python floats, for the
    benchmark's job (offload, head on the device, activations exchange, shared inputs, split-lora
    training on both sides); ``st`` and ``sched`` are the hoisted per-size and per-schedule sums."""
    s = job.shape
    d, ds, n = s.d_model, p["dtype_bytes"], st["n"]
    batch, seq, budget, steps = p["batch"], p["seq_len"], p["budget"], p["steps"]
    tokens, loss = batch * seq, batch * p["loss_tokens_per_sample"]
    head_dim = s.vocab
    base_tok = base_forward_flops_per_token(s, seq) + base_backward_flops_per_token(s, seq)
    opt_pp = job.optimizer_flops_per_param

    def dlora_step(n_a: float, samples: float, optimizer: bool) -> tuple[float, ...]:
        # edge head, offload, activations exchange, shared inputs: CostModel._dlora_step
        tok, lt = samples * seq, samples * p["loss_tokens_per_sample"]
        head = lt * 4.0 * d * head_dim
        hidden = lt * d * ds
        opt = opt_pp * n_a * st["m_params"] if optimizer else 0.0
        every = n_a == n
        msgs, inputs = (st["groups"], st["group_in"]) if every else (n_a, n_a * st["m_in"])
        edge = opt + tok * (n_a * st["m_fwd"] + n_a * st["m_bwd"]) + head
        cloud = tok * base_tok + (n - n_a) * tok * (st["m_fwd"] + st["m_bwd_in"]) + 0.0
        up = tok * d * ds + 0.0 + tok * ds * (n_a * st["m_out"] + inputs) + hidden
        down = tok * ds * (inputs + n_a * st["m_out"]) + hidden
        rt = 1.0 + msgs + msgs + 1.0
        return edge, cloud, up, down, rt

    out = {}
    trainable = st["sum_params"] * (ds + OPTIMIZER_STATE_BYTES_PER_PARAM)
    whole = tokens * (base_tok + st["sum_train"]) + loss * 4.0 * d * head_dim + opt_pp * st["sum_params"]
    embed_head = (s.vocab * d + head_dim * d) * ds
    for name in STRATEGIES:
        if name == "cloud-only":
            e, c, u, dn, rt = 0.0, steps * whole, steps * ((tokens + loss) * job.token_id_bytes), 0.0, steps * 1.0
            setup = st["sum_params"] * ds
        elif name in ("edge-only", "edge-only-int4", "fed-lora"):
            e, c, u, dn, rt = steps * whole, 0.0, 0.0, 0.0, 0.0
            if name == "fed-lora":
                rounds = steps // job.fed_round_steps
                w = st["sum_params"] * ds
                c, u, dn, rt = c + rounds * (2.0 * st["sum_params"]), u + rounds * w, dn + rounds * w, rt + rounds
            setup = float(s.base_params()) * (INT4_BYTES_PER_WEIGHT if name == "edge-only-int4" else ds)
        elif name == "split-lora":  # edge head (U-shaped), LoRA on both sides
            k, layers = job.split_blocks, s.n_layers
            pbf = base_forward_flops_per_token(s, seq) / layers
            pbb = base_backward_flops_per_token(s, seq) / layers
            cut, hidden = tokens * d * ds, loss * d * ds
            e = steps * ((tokens * (k * pbf + st["e_fwd"]) + opt_pp * st["e_params"])
                         + loss * (4 * d * head_dim) + tokens * (k * pbb + st["e_bwd"]))
            c = steps * (tokens * ((layers - k) * pbf + st["c_fwd"])
                         + (tokens * ((layers - k) * pbb + st["c_bwd"]) + opt_pp * st["c_params"]))
            u, dn, rt = steps * (cut + hidden), steps * (hidden + cut), steps * 2.0
            setup = (s.vocab * d + k * s.block_linear_macs() + head_dim * d) * ds
        else:
            full = dlora_step(n, batch, True)
            if name == "dlora-all":
                e, c, u, dn, rt = (steps * x for x in full)
            else:
                cnt = sched[name]
                at_b = dlora_step(budget, batch, True)
                rest_steps = steps - cnt["steps_all_active"] - cnt["steps_at_budget"]
                rest_active = cnt["active_steps"] - n * cnt["steps_all_active"] - budget * cnt["steps_at_budget"]
                rest = dlora_step(rest_active / max(rest_steps, 1) if rest_steps > 0 else budget, batch, True)
                e, c, u, dn, rt = (cnt["steps_all_active"] * f + cnt["steps_at_budget"] * b + rest_steps * r
                                   for f, b, r in zip(full, at_b, rest))
                probe = dlora_step(n, p["probe_batch"], False)
                e += cnt["probes"] * probe[0] + cnt["norm_evals"] * 2.0 * st["m_params"]
                c += cnt["probes"] * probe[1]
                u += cnt["kills"] * (st["m_params"] * ds) + cnt["probes"] * probe[2]
                dn += cnt["probes"] * probe[3]
                rt = rt + cnt["commands"] + cnt["probes"] * probe[4]
            setup = embed_head
        dn += setup
        rt += 1.0 if setup > 0 else 0.0
        # totals.priced
        edge_s = e / dev.flops_per_s
        link_s = 8 * u / lnk.up_bps + 8 * dn / lnk.down_bps + rt * lnk.rtt_s
        gpu_s = c / gpu.flops_per_s
        radio = lnk.up_w_per_mbps * 8e-6 * u + lnk.down_w_per_mbps * 8e-6 * dn + lnk.active_w * link_s
        out[name] = {"job_time_s": edge_s + link_s + gpu_s, "job_usd": gpu_s / 3600.0 * gpu.usd_per_hour,
                     "job_device_energy_j": e * dev.joules_per_flop + radio, "job_bytes_total": u + dn}
    return out


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of one timed run, by the wall clock and by the process's CPU time."""

    wall_s: float
    cpu_s: float

    def rates(self, points: int) -> str:
        """``points`` per second by both clocks, for a line of the report."""
        return (f"{self.wall_s:7.3f} s wall {points / self.wall_s:12,.0f} points/s | "
                f"{self.cpu_s:7.3f} s CPU {points / self.cpu_s:12,.0f} points/s")


def run_loop(job: JobSpec, g: dict[str, np.ndarray], indices: np.ndarray) -> tuple[Timing, list[dict]]:
    """The scalar loop over ``indices``: (timing, results); the hoisted parts are made first."""
    n_modules = job.table.n_modules
    columns = {f: g[f] if f in g else np.full(len(g["device"]), getattr(job, f))
               for f in ("budget", "batch", "seq_len", "steps", "loss_tokens_per_sample", "dtype_bytes")}
    columns["size"] = g["size"] if "size" in g else np.full(len(g["device"]), job.peft.size)
    rows = [{f: int(columns[f][i]) for f in columns} for i in indices.tolist()]
    for row in rows:
        row["probe_batch"] = row["batch"]
    stats = {size: size_stats(job, size) for size in {r["size"] for r in rows}}
    arms = {name: get_strategy(name).kr_arm for name in STRATEGIES if get_strategy(name).kr_arm}
    scheds = {b: {name: schedule_counts(job, arm, b, n_modules) for name, arm in arms.items()}
              for b in {r["budget"] for r in rows}}
    hw = [(DEVICES[str(g["device"][i])], LINKS[str(g["link"][i])], GPUS[str(g["gpu"][i])]) for i in indices.tolist()]
    wall, cpu = time.perf_counter(), time.process_time()
    results = [scalar_point(job, row, stats[row["size"]], scheds[row["budget"]], *h) for row, h in zip(rows, hw)]
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), results


def time_vectorised(g: dict[str, np.ndarray]) -> tuple[Timing, CostTable]:
    """One ``evaluate`` of the grid on a fresh ``CostModel``: (timing, table)."""
    wall, cpu = time.perf_counter(), time.process_time()
    table = CostModel(JOB).evaluate(metrics=METRICS, reductions=(), **g)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 12,800-point grid instead of 1,024,000")
    parser.add_argument("--repeat", type=int, default=3, help="vectorised calls after the first (the best is kept)")
    parser.add_argument("--loop-points", type=int, default=20_000, help="points the scalar loop prices")
    args = parser.parse_args()

    g = quick_grid() if args.quick else full_grid()
    n = len(g["budget"])
    first, table = time_vectorised(g)
    runs = []
    for _ in range(args.repeat):
        table = None  # the previous outputs are freed first, as a caller's would be
        timing, table = time_vectorised(g)
        runs.append(timing)
    best = Timing(min(r.wall_s for r in runs), min(r.cpu_s for r in runs))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # what writing that many fresh output bytes costs on this machine alone (page faults)
    out_bytes = sum(v.nbytes for per in table.values.values() for v in per.values())
    start = time.perf_counter()
    np.ones(out_bytes // 8)
    touch_s = time.perf_counter() - start

    stride = max(1, n // args.loop_points)
    indices = np.arange(0, n, stride)
    loop, results = run_loop(JOB, g, indices)
    for s in STRATEGIES:  # same numbers, or the rates mean nothing
        for m in METRICS:
            want = np.asarray([r[s][m] for r in results])
            got = table.values[s][m][indices]
            assert np.allclose(got, want, rtol=1e-9, atol=0), (s, m)

    print(f"grid: {n:,} points x {len(STRATEGIES)} strategies x {len(METRICS)} job metrics "
          f"({', '.join(METRICS)})")
    print(f"vectorised, first call         : {first.rates(n)}")
    print(f"vectorised, best of {args.repeat:<2d} more    : {best.rates(n)}")
    print(f"peak RSS (grid + evaluation)   : {peak_mb:7.0f} MB")
    print(f"  filling {out_bytes / 2**20:,.0f} MB of fresh memory alone takes {touch_s:.3f} s wall here")
    print(f"scalar closed-form loop        : {loop.rates(len(indices))}")
    print(f"  ({len(indices):,} points, every {stride}th; results equal to the vectorised ones)")
    wall_ratio = (n / best.wall_s) / (len(indices) / loop.wall_s)
    cpu_ratio = (n / best.cpu_s) / (len(indices) / loop.cpu_s)
    print(f"speed-up (vectorised best/loop): {wall_ratio:7.1f}x by wall, {cpu_ratio:.1f}x by CPU")
    first_rate, rate = n / first.cpu_s, n / best.cpu_s
    verdict = ("not measured (a grid under 10^6 points)" if n < 10**6 else
               "met" if min(first_rate, rate) >= 1e6 and peak_mb <= 1024 else "not met")
    print(f"goals (issue 10, at 10^6 points): >= 1,000,000 points/s, first call and best, <= 1024 MB peak RSS: "
          f"{verdict} ({first_rate:,.0f} points/s first call, {rate:,.0f} best, by CPU; {peak_mb:.0f} MB)")


if __name__ == "__main__":
    main()
