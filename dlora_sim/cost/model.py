"""Vectorised cost model: a whole grid of configurations in one pass of numpy arithmetic.

For cloud-only, edge-only and the DLoRA family, the closed forms below are the sums of their
strategies' exchanges (:mod:`dlora_sim.cost.strategies`) and of
:func:`~dlora_sim.cost.totals.job_totals`, rewritten over arrays (the tests hold them equal to
the plain per-point code, and ``benchmarks/bench_cost.py`` times the two). Any other strategy is
priced by its own exchanges once per distinct job of the grid (the counts do not depend on the
hardware, so only the pricing runs per point). Categorical choices
(model, PEFT method and targets, policies) are fixed per :class:`CostModel`; numeric fields and
the device/link/GPU names may be arrays of any broadcastable shape.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from dlora_sim.cost.hardware import DEVICES, GPUS, LINKS
from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.models import base_backward_flops_per_token, base_forward_flops_per_token
from dlora_sim.cost.peft import module_table
from dlora_sim.cost.strategies import BASELINE, DLORA_STRATEGIES, STRATEGIES, check_strategy, get_strategy, kr_schedule
from dlora_sim.cost.strategies.base import OPTIMIZER_STATE_BYTES_PER_PARAM
from dlora_sim.cost.totals import job_totals
from dlora_sim.errors import InputError

NUMERIC_FIELDS = ("budget", "batch", "seq_len", "steps", "size", "kr_interval_steps", "kr_warmup_rounds",
                  "kr_churn", "loss_tokens_per_sample", "dtype_bytes", "probe_batch")
NAME_FIELDS = {"device": DEVICES, "link": LINKS, "gpu": GPUS}
LEVELS = ("step", "epoch", "job")
# the fields a job's KR schedule depends on
_SCHEDULE_FIELDS = ("budget", "steps", "kr_interval_steps", "kr_warmup_rounds", "kr_churn")
COUNT_METRICS = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "bytes_total", "round_trips",
                 "module_bytes")
PRICED_METRICS = ("edge_s", "energy_j", "radio_energy_j", "device_energy_j", "link_s", "cloud_gpu_s", "usd",
                  "time_s")
# ratios against the baseline: 1 - x / x_baseline
REDUCTION_METRICS = ("edge_flops", "bytes_total", "module_bytes", "round_trips", "edge_s", "energy_j",
                     "radio_energy_j", "device_energy_j", "link_s", "cloud_gpu_s", "usd", "time_s")


def grid(**axes) -> dict[str, np.ndarray]:
    """Cartesian product of the given axes, flattened: ``grid(budget=[8, 16], link=["lte", "5g"])``."""
    keys = list(axes)
    points = list(itertools.product(*(np.atleast_1d(axes[k]).tolist() for k in keys)))
    return {k: np.asarray([p[i] for p in points]) for i, k in enumerate(keys)}


@dataclass(frozen=True)
class CostTable:
    """Evaluated grid: ``values[strategy][f"{level}_{metric}"]`` and ``reductions[strategy][...]``.

    Levels: ``step`` (one steady-state step), ``epoch`` (job totals scaled to one epoch),
    ``job``. ``reductions`` are ``1 - x / x_baseline`` against ``baseline`` (dlora-all).
    ``headline`` holds the acceptance ratios (DLoRA+KR vs DLoRA all-modules).
    """

    shape: tuple[int, ...]
    values: dict[str, dict[str, np.ndarray]]
    reductions: dict[str, dict[str, np.ndarray]]
    headline: dict[str, np.ndarray]
    baseline: str = BASELINE


class CostModel:
    """Evaluate every strategy of a job on one or many hardware/job configurations.

    Args:
        job: the template job (categorical choices and defaults for numeric fields).
        device, link, gpu: default catalog names.
    """

    def __init__(self, job: JobSpec, device: str = "phone-mid", link: str = "lte", gpu: str = "a100"):
        self.job = job
        self.defaults = {"device": device, "link": link, "gpu": gpu}
        for key, name in self.defaults.items():
            if name not in NAME_FIELDS[key]:
                raise InputError(f"unknown {key} {name!r}; allowed: {', '.join(NAME_FIELDS[key])}")
        self._size_cache: dict[int, dict[str, float]] = {}

    def evaluate(self, strategies: tuple[str, ...] = STRATEGIES, **params) -> CostTable:
        """Evaluate ``strategies`` over broadcast arrays of ``params`` (see ``NUMERIC_FIELDS``,
        ``device``, ``link``, ``gpu``; ``rank``/``adapter_size`` are aliases of ``size``).

        Raises:
            InputError: an unknown field, catalog name, or an out-of-range value.
        """
        for s in strategies:
            check_strategy(s)
        ctx = self._context(params)
        per_step: dict[str, dict[str, np.ndarray]] = {}
        values: dict[str, dict[str, np.ndarray]] = {}
        strategies_needed = tuple(dict.fromkeys((*strategies, BASELINE)))
        for s in strategies_needed:
            step, job = self._strategy(ctx, s)
            per_step[s] = step
            epoch_frac = ctx.steps_per_epoch / ctx.steps
            out = {}
            for level, counts in (("step", step), ("job", job)):
                counts["bytes_total"] = counts["bytes_up"] + counts["bytes_down"]
                for m in COUNT_METRICS:
                    out[f"{level}_{m}"] = counts[m]
                for m, v in self._priced(ctx, counts).items():
                    out[f"{level}_{m}"] = v
            for key in [k for k in out if k.startswith("job_")]:
                out["epoch_" + key[4:]] = out[key] * epoch_frac
            out["job_kr_bytes"] = job["kr_bytes"]
            out["job_kr_edge_flops"] = job["kr_edge_flops"]
            out["job_warmup_extra_bytes"] = job["warmup_extra_bytes"]
            out["job_warmup_extra_edge_flops"] = job["warmup_extra_edge_flops"]
            out["job_setup_bytes_down"] = job["setup_bytes_down"]
            out["edge_weight_bytes"] = job["edge_weight_bytes"]
            out["fits_on_device"] = job["edge_weight_bytes"] <= ctx.memory_bytes
            values[s] = out
        reductions = {s: self._reductions(values[s], values[BASELINE]) for s in strategies}
        kr, base = values.get("dlora-kr"), values[BASELINE]
        headline = {}
        if kr is not None:
            headline = {
                "comm_bytes_reduction": 1 - kr["step_module_bytes"] / base["step_module_bytes"],
                # the paper's count: against an all-modules step that sends every module its own input
                "unshared_comm_bytes_reduction": 1 - kr["step_module_bytes"] / self._dlora_step(
                    ctx, ctx.n, ctx.batch, True, share_inputs=False)["module_bytes"],
                "step_total_bytes_reduction": 1 - kr["step_bytes_total"] / base["step_bytes_total"],
                "job_comm_bytes_reduction": 1 - kr["job_bytes_total"] / base["job_bytes_total"],
                "step_edge_flops_reduction": 1 - kr["step_edge_flops"] / base["step_edge_flops"],
                "edge_flops_reduction": 1 - kr["job_edge_flops"] / base["job_edge_flops"],
            }
        return CostTable(ctx.shape, {s: values[s] for s in strategies}, reductions, headline)

    # --- inputs ---------------------------------------------------------------------------

    def _context(self, params: dict) -> SimpleNamespace:
        job = self.job
        params = dict(params)
        for alias in ("rank", "adapter_size"):
            if alias in params:
                params["size"] = params.pop(alias)
        unknown = set(params) - set(NUMERIC_FIELDS) - set(NAME_FIELDS)
        if unknown:
            allowed = ", ".join((*NUMERIC_FIELDS, *NAME_FIELDS, "rank", "adapter_size"))
            raise InputError(f"unknown grid field {sorted(unknown)[0]!r}; allowed: {allowed}")
        defaults = {f: getattr(job, f, None) for f in NUMERIC_FIELDS}
        defaults["size"] = job.peft.size
        # an unset probe batch follows the batch, point by point, as in JobSpec.probe_samples
        defaults["probe_batch"] = job.probe_batch
        arrays = {f: np.asarray(params.get(f, defaults[f])) for f in NUMERIC_FIELDS if f != "probe_batch"}
        arrays["probe_batch"] = np.asarray(params["probe_batch"] if "probe_batch" in params else
                                           (arrays["batch"] if job.probe_batch is None else job.probe_batch))
        for key, catalog in NAME_FIELDS.items():
            names = np.asarray(params.get(key, self.defaults[key]))
            bad = [n for n in np.unique(names).tolist() if n not in catalog]
            if bad:
                raise InputError(f"unknown {key} {bad[0]!r}; allowed: {', '.join(catalog)}")
            arrays[key] = names
        keys = list(arrays)
        b = dict(zip(keys, np.broadcast_arrays(*(arrays[k] for k in keys))))
        ctx = SimpleNamespace(shape=b["budget"].shape)
        for f in NUMERIC_FIELDS:
            setattr(ctx, f, b[f].astype(np.float64))
        self._check(ctx)
        ctx.tokens = ctx.batch * ctx.seq_len
        ctx.loss_tokens = ctx.batch * ctx.loss_tokens_per_sample
        ctx.steps_per_epoch = (np.ceil(job.samples_per_epoch / ctx.batch) if job.samples_per_epoch
                               else ctx.steps)
        self._module_means(ctx)
        dev = {n: DEVICES[n] for n in np.unique(b["device"]).tolist()}
        lnk = {n: LINKS[n] for n in np.unique(b["link"]).tolist()}
        gpu = {n: GPUS[n] for n in np.unique(b["gpu"]).tolist()}
        ctx.flops_per_s = _gather(b["device"], {n: d.flops_per_s for n, d in dev.items()})
        ctx.joules_per_flop = _gather(b["device"], {n: d.joules_per_flop for n, d in dev.items()})
        ctx.memory_bytes = _gather(b["device"], {n: d.memory_bytes for n, d in dev.items()})
        ctx.up_bps = _gather(b["link"], {n: x.up_bps for n, x in lnk.items()})
        ctx.down_bps = _gather(b["link"], {n: x.down_bps for n, x in lnk.items()})
        ctx.rtt_s = _gather(b["link"], {n: x.rtt_s for n, x in lnk.items()})
        ctx.up_w_per_mbps = _gather(b["link"], {n: x.up_w_per_mbps for n, x in lnk.items()})
        ctx.down_w_per_mbps = _gather(b["link"], {n: x.down_w_per_mbps for n, x in lnk.items()})
        ctx.active_w = _gather(b["link"], {n: x.active_w for n, x in lnk.items()})
        ctx.gpu_flops = _gather(b["gpu"], {n: g.flops_per_s for n, g in gpu.items()})
        ctx.usd_per_hour = _gather(b["gpu"], {n: g.usd_per_hour for n, g in gpu.items()})
        return ctx

    def _check(self, ctx: SimpleNamespace) -> None:
        n = self.job.table.n_modules
        positive = ("batch", "seq_len", "steps", "size", "kr_interval_steps", "dtype_bytes", "probe_batch")
        for f in positive:
            if np.any(getattr(ctx, f) <= 0):
                raise InputError(f"{f} must be positive; got {getattr(ctx, f).min():g}")
        if np.any(ctx.kr_warmup_rounds < 0):
            raise InputError("kr_warmup_rounds must be >= 0")
        if np.any((ctx.budget < 1) | (ctx.budget > n)):
            bad = ctx.budget[(ctx.budget < 1) | (ctx.budget > n)].flat[0]
            raise InputError(f"budget {bad:g} is out of range; allowed: 1..{n}")
        if np.any((ctx.loss_tokens_per_sample < 1) | (ctx.loss_tokens_per_sample > ctx.seq_len)):
            raise InputError("loss_tokens_per_sample must be in 1..seq_len")
        if np.any(~np.isfinite(ctx.kr_churn) | (ctx.kr_churn < 0)):
            raise InputError("kr_churn must be a finite number >= 0")

    def _module_means(self, ctx: SimpleNamespace) -> None:
        """Per-point mean module numbers; one module table per distinct PEFT size, not per point."""
        sizes, inverse = np.unique(ctx.size, return_inverse=True)
        rows = [self._size_stats(int(s)) for s in sizes]
        for key in rows[0]:
            setattr(ctx, key, np.asarray([r[key] for r in rows])[inverse].reshape(ctx.shape))

    def _size_stats(self, size: int) -> dict[str, float]:
        if size not in self._size_cache:
            peft = self.job.peft
            peft = dataclasses.replace(peft, rank=size) if peft.method == "lora" else (
                dataclasses.replace(peft, adapter_size=size) if peft.method == "adapter" else peft)
            t = module_table(self.job.shape, peft)
            m = t.means()
            self._size_cache[size] = {
                "n": float(t.n_modules), "m_in": m["d_in"], "m_out": m["d_out"], "m_params": m["params"],
                "m_fwd": m["fwd_flops_per_token"], "m_bwd": m["bwd_flops_per_token"],
                "m_bwd_in": m["bwd_input_flops_per_token"], "sum_params": float(t.params.sum()),
                "sum_train_flops": float(np.sum(t.fwd_flops_per_token + t.bwd_flops_per_token)),
                # every module at once, inputs shared per input group (share_inputs)
                "groups": float(len(np.unique(t.input_group))),
                "group_in": float(np.sum(t.d_in[np.unique(t.input_group, return_index=True)[1]])),
            }
        return self._size_cache[size]

    # --- per step --------------------------------------------------------------------------

    def _dlora_step(self, c: SimpleNamespace, n_a, samples, optimizer: bool,
                    share_inputs: bool | None = None) -> dict[str, np.ndarray]:
        """Closed form of ``protocol._dlora_exchanges`` with ``n_a`` mean modules active.

        Under ``share_inputs`` a pass over *every* module sends one input (and gets one summed
        input gradient) per input group; a partial set shares nothing (``JobSpec.share_inputs``).
        """
        job, s = self.job, self.job.shape
        ds, d = c.dtype_bytes, s.d_model
        n_k = c.n - n_a
        tokens, loss = samples * c.seq_len, samples * c.loss_tokens_per_sample
        head_dim = s.vocab if job.head_out_dim is None else job.head_out_dim
        head = loss * 4.0 * d * head_dim
        on_edge = job.head_placement == "edge"
        labels_up = 0.0 if on_edge else loss * job.token_id_bytes
        hidden = loss * d * ds if on_edge else 0.0 * loss
        opt = job.optimizer_flops_per_param * n_a * c.m_params if optimizer else 0.0 * n_a
        base = tokens * (base_forward_flops_per_token(s, c.seq_len) + base_backward_flops_per_token(s, c.seq_len))
        embed = tokens * d * ds
        edge_fwd = job.killed_policy == "edge-forward"
        if job.exchange == "weights":
            w_up = ds * c.m_params * (n_a + (n_k if edge_fwd else 0.0))
            g_down = ds * c.m_params * n_a
            return {
                "edge_flops": opt + (head if on_edge else 0.0),
                "cloud_flops": base + tokens * ((n_a + n_k) * c.m_fwd + n_a * c.m_bwd + n_k * c.m_bwd_in)
                + (0.0 if on_edge else head),
                "bytes_up": embed + labels_up + w_up + hidden,
                "bytes_down": g_down + hidden,
                "round_trips": np.full(c.shape, 2.0 if on_edge else 1.0),
                "module_bytes": w_up + g_down,
            }
        n_fwd = n_a + (n_k if edge_fwd else 0.0)
        n_off = 0.0 if edge_fwd else n_k
        share = job.share_inputs if share_inputs is None else share_inputs
        # messages and input values (per token) of the forward and the backward pass
        fwd_msgs, fwd_in = self._inputs(c, n_fwd, share)
        bwd_msgs, bwd_in = self._inputs(c, n_a, share)
        return {
            "edge_flops": opt + tokens * (n_fwd * c.m_fwd + n_a * c.m_bwd) + (head if on_edge else 0.0),
            "cloud_flops": base + n_off * tokens * (c.m_fwd + c.m_bwd_in) + (0.0 if on_edge else head),
            "bytes_up": embed + labels_up + tokens * ds * (n_fwd * c.m_out + bwd_in) + hidden,
            "bytes_down": tokens * ds * (fwd_in + n_a * c.m_out) + hidden,
            "round_trips": 1.0 + fwd_msgs + bwd_msgs + (1.0 if on_edge else 0.0),
            "module_bytes": tokens * ds * (fwd_in + bwd_in + (n_fwd + n_a) * c.m_out),
        }

    @staticmethod
    def _inputs(c: SimpleNamespace, n_mods, share: bool) -> tuple[np.ndarray, np.ndarray]:
        """(messages, input values per token) of a pass over ``n_mods`` modules."""
        if not share:
            return n_mods + 0.0 * c.n, n_mods * c.m_in
        every = n_mods == c.n
        return np.where(every, c.groups, n_mods), np.where(every, c.group_in, n_mods * c.m_in)

    def _full_step(self, c: SimpleNamespace, strategy: str) -> dict[str, np.ndarray]:
        s = self.job.shape
        head_dim = s.vocab if self.job.head_out_dim is None else self.job.head_out_dim
        flops = (c.tokens * (base_forward_flops_per_token(s, c.seq_len) + base_backward_flops_per_token(s, c.seq_len)
                             + c.sum_train_flops)
                 + c.loss_tokens * 4.0 * s.d_model * head_dim
                 + self.job.optimizer_flops_per_param * c.sum_params)
        zero = np.zeros(c.shape)
        if strategy == "edge-only":
            return {"edge_flops": flops, "cloud_flops": zero, "bytes_up": zero, "bytes_down": zero,
                    "round_trips": zero, "module_bytes": zero}
        return {"edge_flops": zero, "cloud_flops": flops,
                "bytes_up": (c.tokens + c.loss_tokens) * self.job.token_id_bytes, "bytes_down": zero,
                "round_trips": zero + 1.0, "module_bytes": zero}

    # --- per job ---------------------------------------------------------------------------

    def _strategy(self, c: SimpleNamespace, strategy: str):
        """(steady step, job totals) of one strategy, mirroring ``totals.job_totals``."""
        job, s = self.job, self.job.shape
        metrics = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "module_bytes")
        zero = np.zeros(c.shape)
        trainable = c.sum_params * (c.dtype_bytes + OPTIMIZER_STATE_BYTES_PER_PARAM)
        head_dim = s.vocab if job.head_out_dim is None else job.head_out_dim
        if strategy not in ("cloud-only", "edge-only", *DLORA_STRATEGIES):
            return self._per_job(c, strategy)
        wbytes = c.dtype_bytes if job.weight_dtype_bytes is None else job.weight_dtype_bytes + zero
        if strategy in ("cloud-only", "edge-only"):
            step = self._full_step(c, strategy)
            total = {m: c.steps * step[m] for m in metrics}
            kr_bytes = kr_edge = warm_bytes = warm_edge = zero
            if strategy == "edge-only":
                setup = float(s.base_params()) * wbytes
                weights = setup + trainable
            else:
                setup, weights = c.sum_params * c.dtype_bytes, zero
        else:
            full = self._dlora_step(c, c.n, c.batch, True)
            if strategy == "dlora-all":
                step = full
                total = {m: c.steps * full[m] for m in metrics}
                kr_bytes = kr_edge = warm_bytes = warm_edge = zero
            else:
                step = self._dlora_step(c, c.budget, c.batch, True)
                counts = self._schedule_counts(c, strategy)
                total = self._training_steps(c, counts, full, step)
                # what the steps beyond B active (warm-up) cost, before KR's own work is added
                warm_bytes = (total["bytes_up"] + total["bytes_down"]
                              - c.steps * (step["bytes_up"] + step["bytes_down"]))
                warm_edge = total["edge_flops"] - c.steps * step["edge_flops"]
                probe = self._dlora_step(c, c.n, c.probe_batch, False)
                upload = c.m_params * c.dtype_bytes if job.killed_policy == "offload" else zero
                kr_up = counts["kills"] * upload + counts["probes"] * probe["bytes_up"]
                kr_down = counts["probes"] * probe["bytes_down"]
                kr_edge = counts["probes"] * probe["edge_flops"] + counts["norm_evals"] * 2.0 * c.m_params
                total["edge_flops"] = total["edge_flops"] + kr_edge
                total["cloud_flops"] = total["cloud_flops"] + counts["probes"] * probe["cloud_flops"]
                total["bytes_up"] = total["bytes_up"] + kr_up
                total["bytes_down"] = total["bytes_down"] + kr_down
                total["module_bytes"] = total["module_bytes"] + counts["probes"] * probe["module_bytes"]
                total["round_trips"] = (total["round_trips"] + counts["commands"]
                                        + counts["probes"] * probe["round_trips"])
                kr_bytes = kr_up + kr_down
            setup = (s.vocab * s.d_model + (head_dim * s.d_model if job.head_placement == "edge" else 0)) * wbytes
            weights = setup + trainable
        total["bytes_down"] = total["bytes_down"] + setup
        total["round_trips"] = total["round_trips"] + np.where(np.asarray(setup) > 0, 1.0, 0.0)
        total["kr_bytes"] = kr_bytes + zero
        total["kr_edge_flops"] = kr_edge + zero
        total["warmup_extra_bytes"] = warm_bytes + zero
        total["warmup_extra_edge_flops"] = warm_edge + zero
        total["setup_bytes_down"] = setup + zero
        total["edge_weight_bytes"] = weights + zero
        return {m: step[m] + zero for m in metrics}, total

    def _per_job(self, c: SimpleNamespace, strategy: str):
        """(steady step, job totals) of a strategy without a closed form: its own exchanges and
        ``job_totals``, once per distinct job of the grid, gathered back onto the points."""
        keys = np.stack([np.ravel(getattr(c, f)) for f in NUMERIC_FIELDS], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        steps, totals = [], []
        for point in uniq:
            job = self._point_job(dict(zip(NUMERIC_FIELDS, point.tolist())))
            steps.append(dataclasses.asdict(get_strategy(strategy).step_cost(job)))
            totals.append({**job_totals(job, strategy),
                           "edge_weight_bytes": get_strategy(strategy).edge_weight_bytes(job)})

        def gather(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
            return {k: np.asarray([r[k] for r in rows], dtype=np.float64)[inverse.ravel()].reshape(c.shape)
                    for k in rows[0]}

        return gather(steps), gather(totals)

    def _point_job(self, fields: dict[str, float]) -> JobSpec:
        """The template job with one grid point's numeric fields."""
        peft = self.job.peft
        size = int(fields.pop("size"))
        if peft.method == "lora":
            peft = dataclasses.replace(peft, rank=size)
        elif peft.method == "adapter":
            peft = dataclasses.replace(peft, adapter_size=size)
        ints = {k: int(v) for k, v in fields.items() if k != "kr_churn"}
        return dataclasses.replace(self.job, peft=peft, **ints, kr_churn=float(fields["kr_churn"]))

    def _training_steps(self, c: SimpleNamespace, counts: dict[str, np.ndarray], full: dict[str, np.ndarray],
                        at_budget: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The job's training steps: those with every module, those at B, and any others (a
        partial set, where a step is affine in its active count, so their mean count prices them)."""
        rest_steps = c.steps - counts["steps_all_active"] - counts["steps_at_budget"]
        rest_active = counts["active_steps"] - c.n * counts["steps_all_active"] - c.budget * counts["steps_at_budget"]
        rest = self._dlora_step(c, np.where(rest_steps > 0, rest_active / np.maximum(rest_steps, 1), c.budget),
                                c.batch, True)
        return {m: counts["steps_all_active"] * full[m] + counts["steps_at_budget"] * at_budget[m]
                + rest_steps * rest[m] for m in full}

    def _schedule_counts(self, c: SimpleNamespace, strategy: str) -> dict[str, np.ndarray]:
        """The sums of each point's KR schedule (``cost.kr_schedule``), one schedule per distinct
        (budget, steps, interval, warm-up, churn), gathered back onto the grid."""
        keys = np.stack([np.ravel(getattr(c, f)) for f in _SCHEDULE_FIELDS], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        rows = []
        for point in uniq:
            fields = dict(zip(_SCHEDULE_FIELDS, point.tolist()))
            job = dataclasses.replace(self.job, budget=int(fields["budget"]), steps=int(fields["steps"]),
                                      kr_interval_steps=int(fields["kr_interval_steps"]),
                                      kr_warmup_rounds=int(fields["kr_warmup_rounds"]),
                                      kr_churn=float(fields["kr_churn"]))
            rows.append(dataclasses.asdict(kr_schedule(job, strategy).counts()))
        return {k: np.asarray([r[k] for r in rows], dtype=np.float64)[inverse.ravel()].reshape(c.shape)
                for k in rows[0]}

    @staticmethod
    def _priced(c: SimpleNamespace, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        edge_s = t["edge_flops"] / c.flops_per_s
        link_s = 8 * t["bytes_up"] / c.up_bps + 8 * t["bytes_down"] / c.down_bps + t["round_trips"] * c.rtt_s
        gpu_s = t["cloud_flops"] / c.gpu_flops
        energy = t["edge_flops"] * c.joules_per_flop
        radio = (c.up_w_per_mbps * 8e-6 * t["bytes_up"] + c.down_w_per_mbps * 8e-6 * t["bytes_down"]
                 + c.active_w * link_s)
        return {"edge_s": edge_s, "energy_j": energy, "radio_energy_j": radio, "device_energy_j": energy + radio,
                "link_s": link_s, "cloud_gpu_s": gpu_s, "usd": gpu_s / 3600.0 * c.usd_per_hour,
                "time_s": edge_s + link_s + gpu_s}

    @staticmethod
    def _reductions(values: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for level in LEVELS:
            for m in REDUCTION_METRICS:
                x, b = values[f"{level}_{m}"], base[f"{level}_{m}"]
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[f"{level}_{m}"] = np.where(b != 0, 1.0 - x / np.where(b != 0, b, 1.0), np.nan)
        return out


def _gather(names: np.ndarray, mapping: dict[str, float]) -> np.ndarray:
    """Map an array of catalog names to an array of numbers without a per-point loop."""
    uniq, inverse = np.unique(names, return_inverse=True)
    lookup = np.asarray([mapping[k] for k in uniq.tolist()], dtype=np.float64)
    return lookup[inverse].reshape(names.shape)
