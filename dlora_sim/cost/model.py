"""Vectorised cost model: a whole grid of configurations in one pass of numpy arithmetic.

For cloud-only, edge-only (and its 4-bit variant), fed-lora, split-lora and the DLoRA family,
the closed forms below are the sums of their strategies' exchanges
(:mod:`dlora_sim.cost.strategies`) and of :func:`~dlora_sim.cost.totals.job_totals`, rewritten
over arrays (the tests hold them equal to the plain per-point code, and
``benchmarks/bench_cost.py`` times them against the same closed form in a plain Python loop).
Any other strategy is priced by its own exchanges once per distinct job of the grid.
Categorical choices (model, PEFT method and targets, policies) are fixed per :class:`CostModel`;
numeric fields and the device/link/GPU names may be arrays of any broadcastable shape.

How a grid is evaluated, so that time and memory stay linear in the points with a small constant:

1. every field is factorised once into a few distinct values and small integer codes (an integer
   lookup, no sort, where the values are whole numbers; names are matched against the catalog);
2. the hardware-independent counts (FLOPs, bytes, round trips, KR schedule sums) depend only on
   the numeric fields, so they are computed once per *distinct combination* of them;
3. pricing is separable: seconds and energy on the device depend on (combination, device), the
   link's on (combination, link), the GPU's on (combination, GPU), so each is a small table;
4. a point's outputs are gathers from those tables (and the sums the closed form states, in its
   order, so the numbers are the ones a point-by-point evaluation gives), written chunk by chunk
   into preallocated arrays. ``metrics=`` restricts the outputs to those a caller reads.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from dlora_sim.cost.hardware import DEVICES, GPUS, LINKS, CloudGPU, EdgeDevice, Link, data_usd, gpu_usd, radio_energy_j
from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.models import base_backward_flops_per_token, base_forward_flops_per_token
from dlora_sim.cost.peft import module_table
from dlora_sim.cost.strategies import (
    BASELINE,
    DLORA_STRATEGIES,
    STRATEGIES,
    check_strategy,
    get_strategy,
    kr_schedule,
)
from dlora_sim.cost.strategies.base import OPTIMIZER_STATE_BYTES_PER_PARAM, upload_defence_flops
from dlora_sim.cost.strategies.edge_int4 import INT4_BYTES_PER_WEIGHT
from dlora_sim.cost.totals import job_totals
from dlora_sim.errors import InputError
from dlora_sim.kr import KRConfig, KRSchedule, job_schedule

NUMERIC_FIELDS = ("budget", "batch", "seq_len", "steps", "size", "kr_interval_steps", "kr_warmup_rounds",
                  "kr_churn", "loss_tokens_per_sample", "dtype_bytes", "probe_batch")
NAME_FIELDS = {"device": DEVICES, "link": LINKS, "gpu": GPUS}
LEVELS = ("step", "epoch", "job")
# the fields a job's KR schedule depends on
_SCHEDULE_FIELDS = ("budget", "steps", "kr_interval_steps", "kr_warmup_rounds", "kr_churn")
COUNT_METRICS = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "bytes_total", "round_trips",
                 "module_bytes")
PRICED_METRICS = ("edge_s", "energy_j", "radio_energy_j", "device_energy_j", "link_s", "cloud_gpu_s", "usd",
                  "time_s", "data_usd")
# ratios against the baseline: 1 - x / x_baseline
REDUCTION_METRICS = ("edge_flops", "bytes_total", "module_bytes", "round_trips", "edge_s", "energy_j",
                     "radio_energy_j", "device_energy_j", "link_s", "cloud_gpu_s", "usd", "time_s")
# job-level numbers with no step or epoch counterpart
JOB_EXTRAS = ("kr_bytes", "kr_edge_flops", "warmup_extra_bytes", "warmup_extra_edge_flops", "setup_bytes_down")
#: every key of ``CostTable.values[strategy]``, in order
VALUE_KEYS: tuple[str, ...] = (
    *(f"{level}_{m}" for level in ("step", "job") for m in (*COUNT_METRICS, *PRICED_METRICS)),
    *(f"epoch_{m}" for m in (*COUNT_METRICS, *PRICED_METRICS)),
    *(f"job_{m}" for m in JOB_EXTRAS), "edge_weight_bytes", "fits_on_device")
#: every key of ``CostTable.reductions[strategy]``
REDUCTION_KEYS: tuple[str, ...] = tuple(f"{level}_{m}" for level in LEVELS for m in REDUCTION_METRICS)
# strategies priced by the closed forms below (any other: its own exchanges, once per distinct job)
_EDGE_FAMILY = ("edge-only", "edge-only-int4", "fed-lora")
_CLOSED_FORMS = ("cloud-only", *_EDGE_FAMILY, "split-lora", *DLORA_STRATEGIES)
# points per chunk of the per-point stage (gathers and sums stay in cache)
CHUNK = 1 << 16
# hardware-dependent metric -> (the hardware factor it depends on)
_FACTOR = {"edge_s": "device", "energy_j": "device", "link_s": "link", "radio_energy_j": "link",
           "data_usd": "link", "cloud_gpu_s": "gpu", "usd": "gpu"}
# sums of factor tables, in the closed form's order
_SUMS = {"device_energy_j": ("energy_j", "radio_energy_j"), "time_s": ("edge_s", "link_s", "cloud_gpu_s")}


def grid(**axes) -> dict[str, np.ndarray]:
    """Cartesian product of the given axes, flattened: ``grid(budget=[8, 16], link=["lte", "5g"])``.

    The last axis varies fastest (``itertools.product`` order).
    """
    keys = list(axes)
    values = [np.asarray(np.atleast_1d(axes[k]).tolist()) for k in keys]
    sizes = [len(v) for v in values]
    if any(v.ndim != 1 for v in values) or 0 in sizes:  # nested or empty axes: the plain product
        points = list(itertools.product(*(np.atleast_1d(axes[k]).tolist() for k in keys)))
        return {k: np.asarray([p[i] for p in points]) for i, k in enumerate(keys)}
    out = {}
    for i, k in enumerate(keys):
        inner = int(np.prod(sizes[i + 1:], dtype=np.int64))
        outer = int(np.prod(sizes[:i], dtype=np.int64))
        out[k] = np.tile(np.repeat(values[i], inner), outer)
    return out


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
        device, link, gpu: the defaults: catalog names, or hardware of one's own (an
            ``EdgeDevice``, ``Link`` or ``CloudGPU``, e.g. a scenario's inline device), which joins
            this model's catalog under its name (replacing a catalog entry of that name).
    """

    def __init__(self, job: JobSpec, device: str | EdgeDevice = "phone-mid", link: str | Link = "lte",
                 gpu: str | CloudGPU = "a100"):
        self.job = job
        self.catalogs = {key: dict(catalog) for key, catalog in NAME_FIELDS.items()}
        self.defaults = {}
        for key, given in (("device", device), ("link", link), ("gpu", gpu)):
            if not isinstance(given, str):
                self.catalogs[key][given.name] = given
                given = given.name
            if given not in self.catalogs[key]:
                raise InputError(f"unknown {key} {given!r}; allowed: {', '.join(self.catalogs[key])}")
            self.defaults[key] = given
        self._size_cache: dict[int, dict[str, float]] = {}
        self._schedule_cache: dict[tuple, dict[str, int]] = {}

    def evaluate(self, strategies: tuple[str, ...] = STRATEGIES, metrics: tuple[str, ...] | None = None,
                 reductions: tuple[str, ...] | None = None, **params) -> CostTable:
        """Evaluate ``strategies`` over broadcast arrays of ``params`` (see ``NUMERIC_FIELDS``,
        ``device``, ``link``, ``gpu``; ``rank``/``adapter_size`` are aliases of ``size``).

        Args:
            metrics: the ``values`` keys to compute (:data:`VALUE_KEYS`, e.g. ``"job_time_s"``);
                None: all of them. A large grid should name the few it reads: each is one
                float64 array of the grid's shape per strategy.
            reductions: the ``reductions`` keys (:data:`REDUCTION_KEYS`); None: those of
                ``metrics`` that have one (all, when ``metrics`` is None).

        Raises:
            InputError: an unknown field, catalog name, metric, or an out-of-range value.
        """
        for s in strategies:
            check_strategy(s)
        keys = VALUE_KEYS if metrics is None else tuple(dict.fromkeys(metrics))
        red_keys = (tuple(k for k in REDUCTION_KEYS if k in keys) if reductions is None
                    else tuple(dict.fromkeys(reductions)))
        for k in keys:
            if k not in VALUE_KEYS:
                raise InputError(f"unknown metric {k!r}; allowed: {', '.join(VALUE_KEYS)}")
        for k in red_keys:
            if k not in REDUCTION_KEYS:
                raise InputError(f"unknown reduction {k!r}; allowed: {', '.join(REDUCTION_KEYS)}")
        g = self._factorised(params)
        c = g.ctx
        # hardware-independent numbers, once per distinct combination of the numeric fields
        counts: dict[str, dict[str, np.ndarray]] = {}
        for s in dict.fromkeys((*strategies, *((BASELINE,) if red_keys or "dlora-kr" in strategies else ()))):
            step, job = self._strategy(c, s)
            epoch_frac = c.steps_per_epoch / c.steps
            per = {}
            for level, cnt in (("step", step), ("job", job)):
                cnt["bytes_total"] = cnt["bytes_up"] + cnt["bytes_down"]
                for m in COUNT_METRICS:
                    per[f"{level}_{m}"] = cnt[m]
            for m in COUNT_METRICS:
                per[f"epoch_{m}"] = per[f"job_{m}"] * epoch_frac
            for m in JOB_EXTRAS:
                per[f"job_{m}"] = job[m]
            per["edge_weight_bytes"] = job["edge_weight_bytes"]
            per["_epoch_frac"] = epoch_frac
            counts[s] = per
        hw = g.hw
        tables: dict[str, dict[str, tuple]] = {}

        def recipe(s: str, key: str) -> tuple:
            """How ``values[s][key]`` is read per point: (terms, scale), a term (table, index)."""
            cache = tables.setdefault(s, {})
            if key in cache:
                return cache[key]
            per = counts[s]
            if key in per:
                out = (((per[key], "k"),), None)
            elif key == "fits_on_device":
                out = (((per["edge_weight_bytes"][:, None] <= hw["memory_bytes"][None, :], "device"),), None)
            else:
                level, m = key.split("_", 1)
                base = "job" if level == "epoch" else level
                scale = per["_epoch_frac"] if level == "epoch" else None
                parts = _SUMS.get(m, (m,))
                terms = tuple(self._factor_table(per, base, p, hw, cache) for p in parts)
                if scale is not None and len(terms) == 1:  # a factor table scales as a table
                    (table, factor), = terms
                    out = (((table * scale[:, None], factor),), None)
                else:
                    out = (terms, scale)
            cache[key] = out
            return out

        n = g.size
        values = {s: {k: np.empty(n, dtype=bool if k == "fits_on_device" else np.float64) for k in keys}
                  for s in strategies}
        reds = {s: {k: np.empty(n) for k in red_keys} for s in strategies}
        head_keys = ("comm_bytes_reduction", "unshared_comm_bytes_reduction", "step_total_bytes_reduction",
                     "job_comm_bytes_reduction", "step_edge_flops_reduction", "edge_flops_reduction")
        headline_k = {}
        if "dlora-kr" in strategies:
            kr, base = counts["dlora-kr"], counts[BASELINE]
            headline_k = {
                "comm_bytes_reduction": 1 - kr["step_module_bytes"] / base["step_module_bytes"],
                # the paper's count: against an all-modules step that sends every module its own input
                "unshared_comm_bytes_reduction": 1 - kr["step_module_bytes"] / self._dlora_step(
                    c, c.n, c.batch, True, share_inputs=False)["module_bytes"],
                "step_total_bytes_reduction": 1 - kr["step_bytes_total"] / base["step_bytes_total"],
                "job_comm_bytes_reduction": 1 - kr["job_bytes_total"] / base["job_bytes_total"],
                "step_edge_flops_reduction": 1 - kr["step_edge_flops"] / base["step_edge_flops"],
                "edge_flops_reduction": 1 - kr["job_edge_flops"] / base["job_edge_flops"],
            }
        headline = {k: np.empty(n) for k in head_keys if k in headline_k}
        for start in range(0, max(n, 1), CHUNK):
            sl = slice(start, min(n, start + CHUNK))
            index = _ChunkIndex(g, sl)
            for s in strategies:
                for k in keys:
                    index.read(recipe(s, k), values[s][k][sl])
            for s in strategies:  # the baseline's values of this chunk are in by now
                for k in red_keys:
                    x = values[s][k][sl] if k in keys else index.read(recipe(s, k))
                    b = values[BASELINE][k][sl] if k in keys and BASELINE in values else index.read(
                        recipe(BASELINE, k))
                    with np.errstate(divide="ignore", invalid="ignore"):
                        reds[s][k][sl] = np.where(b != 0, 1.0 - x / np.where(b != 0, b, 1.0), np.nan)
            for k, table in headline_k.items():
                np.take(table, index.k, out=headline[k][sl], mode="clip")
        shape = g.shape
        return CostTable(shape, {s: {k: v.reshape(shape) for k, v in values[s].items()} for s in strategies},
                         {s: {k: v.reshape(shape) for k, v in reds[s].items()} for s in strategies},
                         {k: v.reshape(shape) for k, v in headline.items()})

    @staticmethod
    def _factor_table(per: dict, level: str, m: str, hw: dict, cache: dict) -> tuple[np.ndarray, str]:
        """A single-factor priced metric as a (combination x hardware) table (``totals.priced``)."""
        key = f"_{level}_{m}"
        if key in cache:
            return cache[key]
        e, up, down = per[f"{level}_edge_flops"][:, None], per[f"{level}_bytes_up"][:, None], \
            per[f"{level}_bytes_down"][:, None]
        if m == "edge_s":
            t = e / hw["flops_per_s"][None, :]
        elif m == "energy_j":
            t = e * hw["joules_per_flop"][None, :]
        elif m in ("link_s", "radio_energy_j"):
            link_s = cache.get(f"_{level}_link_s")
            if link_s is None:
                link_s = (8 * up / hw["up_bps"][None, :] + 8 * down / hw["down_bps"][None, :]
                          + per[f"{level}_round_trips"][:, None] * hw["rtt_s"][None, :], "link")
                cache[f"_{level}_link_s"] = link_s
            if m == "link_s":
                return link_s
            t = radio_energy_j(up, down, link_s[0], hw["up_w_per_mbps"][None, :], hw["down_w_per_mbps"][None, :],
                               hw["active_w"][None, :])
        elif m == "data_usd":
            t = data_usd(up + down, hw["data_usd_per_gb"][None, :])
        else:
            gpu_s = per[f"{level}_cloud_flops"][:, None] / hw["gpu_flops"][None, :]
            t = gpu_s if m == "cloud_gpu_s" else gpu_usd(gpu_s, hw["usd_per_hour"][None, :])
        cache[key] = (t, _FACTOR[m])
        return cache[key]

    # --- inputs ---------------------------------------------------------------------------

    def _factorised(self, params: dict) -> SimpleNamespace:
        """The grid as codes: per point, the index of its numeric combination and of its device,
        link and GPU; ``ctx``, the numeric fields at each distinct combination."""
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
        arrays = {f: np.asarray(params.get(f, defaults[f])) for f in NUMERIC_FIELDS if f != "probe_batch"}
        # an unset probe batch follows the batch, point by point, as in JobSpec.probe_samples
        arrays["probe_batch"] = np.asarray(params["probe_batch"] if "probe_batch" in params else
                                           (arrays["batch"] if job.probe_batch is None else job.probe_batch))
        names = {key: np.asarray(params.get(key, self.defaults[key])) for key in NAME_FIELDS}
        name_codes = {key: _name_codes(key, names[key], catalog) for key, catalog in self.catalogs.items()}
        shape = np.broadcast_shapes(*(a.shape for a in (*arrays.values(), *names.values())))
        size = int(np.prod(shape, dtype=np.int64))
        # numeric fields: distinct values and codes; the combination of the varying ones
        factors: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        fields: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for f in NUMERIC_FIELDS:
            a = arrays[f]
            if id(a) not in factors:
                factors[id(a)] = _factorise(a)
            fields[f] = factors[id(a)]
        follows_batch = fields["probe_batch"] is fields["batch"]  # one array: not a field of its own
        varying = [f for f in NUMERIC_FIELDS
                   if len(fields[f][0]) > 1 and not (f == "probe_batch" and follows_batch)]
        combo, combo_codes = _combine([fields[f][1] for f in varying], [len(fields[f][0]) for f in varying],
                                      shape)
        k = len(combo_codes[0]) if varying else 1
        ctx = SimpleNamespace(shape=(k,))
        for f in NUMERIC_FIELDS:
            uniq = fields[f][0]
            if f in varying:
                setattr(ctx, f, uniq[combo_codes[varying.index(f)]])
            elif f == "probe_batch" and follows_batch:
                setattr(ctx, f, ctx.batch)
            else:
                setattr(ctx, f, np.full(k, uniq[0]))
        self._check(ctx, arrays, shape)
        ctx.tokens = ctx.batch * ctx.seq_len
        ctx.loss_tokens = ctx.batch * ctx.loss_tokens_per_sample
        ctx.steps_per_epoch = (np.ceil(job.samples_per_epoch / ctx.batch) if job.samples_per_epoch
                               else ctx.steps)
        self._module_means(ctx)
        hw = {}
        for key, attrs in (("device", ("flops_per_s", "joules_per_flop", "memory_bytes")),
                           ("link", ("up_bps", "down_bps", "rtt_s", "up_w_per_mbps", "down_w_per_mbps",
                                     "active_w", "data_usd_per_gb")),
                           ("gpu", ("flops_per_s", "usd_per_hour"))):
            for attr in attrs:
                name = {"gpu": {"flops_per_s": "gpu_flops"}}.get(key, {}).get(attr, attr)
                hw[name] = np.asarray([float(getattr(x, attr)) for x in self.catalogs[key].values()],
                                      dtype=np.float64)
        return SimpleNamespace(shape=shape, size=size, ctx=ctx, combo=combo, hw=hw,
                               names={key: np.broadcast_to(name_codes[key], shape).reshape(-1)
                                      if size else np.zeros(0, np.int32) for key in NAME_FIELDS},
                               widths={key: len(self.catalogs[key]) for key in NAME_FIELDS})

    def _check(self, ctx: SimpleNamespace, arrays: dict | None = None, shape: tuple = ()) -> None:
        """Range checks over the distinct combinations (the same set of values as the points)."""
        n = self.job.table.n_modules
        positive = ("batch", "seq_len", "steps", "size", "kr_interval_steps", "dtype_bytes", "probe_batch")
        for f in positive:
            if np.any(getattr(ctx, f) <= 0):
                raise InputError(f"{f} must be positive; got {getattr(ctx, f).min():g}")
        if np.any(ctx.kr_warmup_rounds < 0):
            raise InputError("kr_warmup_rounds must be >= 0")
        if np.any((ctx.budget < 1) | (ctx.budget > n)):
            budget = ctx.budget if arrays is None else np.broadcast_to(
                np.asarray(arrays["budget"], dtype=np.float64), shape)
            bad = budget[(budget < 1) | (budget > n)].flat[0]  # the first bad point's
            raise InputError(f"budget {bad:g} is out of range; allowed: 1..{n}")
        if np.any((ctx.loss_tokens_per_sample < 1) | (ctx.loss_tokens_per_sample > ctx.seq_len)):
            raise InputError("loss_tokens_per_sample must be in 1..seq_len")
        if np.any(~np.isfinite(ctx.kr_churn) | (ctx.kr_churn < 0)):
            raise InputError("kr_churn must be a finite number >= 0")

    def _module_means(self, ctx: SimpleNamespace) -> None:
        """Per-combination mean module numbers; one module table per distinct PEFT size."""
        sizes, inverse = np.unique(ctx.size, return_inverse=True)
        rows = [self._size_stats(int(s)) for s in sizes]
        for key in rows[0]:
            setattr(ctx, key, np.asarray([r[key] for r in rows])[inverse.reshape(-1)].reshape(ctx.shape))

    def _size_stats(self, size: int) -> dict[str, float]:
        if size not in self._size_cache:
            peft = self.job.peft
            peft = dataclasses.replace(peft, rank=size) if peft.method == "lora" else (
                dataclasses.replace(peft, adapter_size=size) if peft.method == "adapter" else peft)
            t = module_table(self.job.shape, peft)
            m = t.means()
            k = self.job.split_blocks
            edge = t.layer < k
            cloud = t.layer >= k if self.job.split_lora == "both" else np.zeros(t.layer.shape, dtype=bool)
            self._size_cache[size] = {
                "n": float(t.n_modules), "m_in": m["d_in"], "m_out": m["d_out"], "m_params": m["params"],
                "m_fwd": m["fwd_flops_per_token"], "m_bwd": m["bwd_flops_per_token"],
                "m_bwd_in": m["bwd_input_flops_per_token"], "sum_params": float(t.params.sum()),
                "sum_train_flops": float(np.sum(t.fwd_flops_per_token + t.bwd_flops_per_token)),
                # every module at once, inputs shared per input group (share_inputs)
                "groups": float(len(np.unique(t.input_group))),
                "group_in": float(np.sum(t.d_in[np.unique(t.input_group, return_index=True)[1]])),
                # split-lora: the modules of each side (strategies.split_lora._Side)
                **{f"split_{side}_{q}": float(getattr(t, col)[sel].sum())
                   for side, sel in (("edge", edge), ("cloud", cloud))
                   for q, col in (("params", "params"), ("fwd", "fwd_flops_per_token"),
                                  ("bwd", "bwd_flops_per_token"))},
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
        opt = opt + upload_defence_flops(job, tokens)  # as in the start exchange
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
        """One whole training step on one machine (``strategies.base.whole_step_flops``)."""
        s = self.job.shape
        head_dim = s.vocab if self.job.head_out_dim is None else self.job.head_out_dim
        flops = (c.tokens * (base_forward_flops_per_token(s, c.seq_len) + base_backward_flops_per_token(s, c.seq_len)
                             + c.sum_train_flops)
                 + c.loss_tokens * 4.0 * s.d_model * head_dim
                 + self.job.optimizer_flops_per_param * c.sum_params)
        zero = np.zeros(c.shape)
        if strategy in _EDGE_FAMILY:
            return {"edge_flops": flops, "cloud_flops": zero, "bytes_up": zero, "bytes_down": zero,
                    "round_trips": zero, "module_bytes": zero}
        return {"edge_flops": zero, "cloud_flops": flops,
                "bytes_up": (c.tokens + c.loss_tokens) * self.job.token_id_bytes, "bytes_down": zero,
                "round_trips": zero + 1.0, "module_bytes": zero}

    def _split_step(self, c: SimpleNamespace) -> dict[str, np.ndarray]:
        """Closed form of ``SplitLoRA.step_exchanges``: the device's k blocks, the cut, the head."""
        job, s = self.job, self.job.shape
        k, layers = job.split_blocks, s.n_layers
        per_block_fwd = base_forward_flops_per_token(s, c.seq_len) / layers
        per_block_bwd = base_backward_flops_per_token(s, c.seq_len) / layers
        opt = job.optimizer_flops_per_param
        e_fwd = c.tokens * (k * per_block_fwd + c.split_edge_fwd)
        e_bwd = c.tokens * (k * per_block_bwd + c.split_edge_bwd)
        c_fwd = c.tokens * ((layers - k) * per_block_fwd + c.split_cloud_fwd)
        c_train = c.tokens * ((layers - k) * per_block_bwd + c.split_cloud_bwd) + opt * c.split_cloud_params
        cut = c.tokens * s.d_model * c.dtype_bytes
        hidden = c.loss_tokens * s.d_model * c.dtype_bytes
        head_dim = s.vocab if job.head_out_dim is None else job.head_out_dim
        head = c.loss_tokens * (2 * s.d_model * head_dim + 2 * s.d_model * head_dim)
        zero = np.zeros(c.shape)
        if job.head_placement == "edge":  # U-shaped
            return {"edge_flops": (e_fwd + opt * c.split_edge_params) + head + e_bwd,
                    "cloud_flops": c_fwd + c_train, "bytes_up": cut + hidden, "bytes_down": hidden + cut,
                    "round_trips": zero + 2.0, "module_bytes": zero}
        labels = c.loss_tokens * job.token_id_bytes
        return {"edge_flops": (e_fwd + opt * c.split_edge_params) + e_bwd, "cloud_flops": c_fwd + head + c_train,
                "bytes_up": cut + labels, "bytes_down": cut, "round_trips": zero + 1.0, "module_bytes": zero}

    # --- per job ---------------------------------------------------------------------------

    def _strategy(self, c: SimpleNamespace, strategy: str):
        """(steady step, job totals) of one strategy, mirroring ``totals.job_totals``."""
        job, s = self.job, self.job.shape
        metrics = ("edge_flops", "cloud_flops", "bytes_up", "bytes_down", "round_trips", "module_bytes")
        zero = np.zeros(c.shape)
        trainable = c.sum_params * (c.dtype_bytes + OPTIMIZER_STATE_BYTES_PER_PARAM)
        head_dim = s.vocab if job.head_out_dim is None else job.head_out_dim
        if strategy not in _CLOSED_FORMS:
            return self._per_job(c, strategy)
        wbytes = c.dtype_bytes if job.weight_dtype_bytes is None else job.weight_dtype_bytes + zero
        kr_bytes = kr_edge = warm_bytes = warm_edge = zero
        if strategy in ("cloud-only", *_EDGE_FAMILY):
            step = self._full_step(c, strategy)
            total = {m: c.steps * step[m] for m in metrics}
            if strategy == "fed-lora":  # FedAvg after every fed_round_steps-th step (FedLoRA.sync_exchanges)
                rounds = np.floor_divide(c.steps, job.fed_round_steps)
                weights = c.sum_params * c.dtype_bytes
                sync = {"edge_flops": 0.0, "cloud_flops": 2.0 * c.sum_params, "bytes_up": weights,
                        "bytes_down": weights, "round_trips": 1.0, "module_bytes": 2 * weights}
                total = {m: total[m] + rounds * sync[m] for m in metrics}
            if strategy in _EDGE_FAMILY:
                if strategy == "edge-only-int4":
                    wbytes = INT4_BYTES_PER_WEIGHT + zero
                setup = float(s.base_params()) * wbytes
                weights = setup + trainable
            else:
                setup, weights = c.sum_params * c.dtype_bytes, zero
        elif strategy == "split-lora":
            step = self._split_step(c)
            total = {m: c.steps * step[m] for m in metrics}
            blocks = job.split_blocks * s.block_linear_macs()
            setup = (s.vocab * s.d_model + blocks + (head_dim * s.d_model if job.head_placement == "edge" else 0)) \
                * wbytes
            weights = setup + c.split_edge_params * (c.dtype_bytes + OPTIMIZER_STATE_BYTES_PER_PARAM)
        else:
            full = self._dlora_step(c, c.n, c.batch, True)
            if strategy == "dlora-all":
                step = full
                total = {m: c.steps * full[m] for m in metrics}
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
        ``job_totals``, once per distinct job (``c`` holds one row per distinct combination)."""
        steps, totals = [], []
        for i in range(c.shape[0]):
            job = self._point_job({f: float(getattr(c, f)[i]) for f in NUMERIC_FIELDS})
            steps.append(dataclasses.asdict(get_strategy(strategy).step_cost(job)))
            totals.append({**job_totals(job, strategy),
                           "edge_weight_bytes": get_strategy(strategy).edge_weight_bytes(job)})

        def stack(rows: list[dict[str, float]]) -> dict[str, np.ndarray]:
            return {k: np.asarray([r[k] for r in rows], dtype=np.float64) for k in rows[0]}

        return stack(steps), stack(totals)

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
        """The sums of each combination's KR schedule (``strategies.kr_schedule``), one schedule
        per distinct (budget, steps, interval, warm-up, churn), kept for the model's later grids."""
        arm = get_strategy(strategy).kr_arm
        n_modules = self.job.table.n_modules
        columns = [np.ravel(getattr(c, f)) for f in _SCHEDULE_FIELDS]
        if arm != "kr":  # only arm kr reads the churn
            columns[_SCHEDULE_FIELDS.index("kr_churn")] = np.zeros(1)
        factors = [_factorise(col) for col in columns]
        inverse, codes = _combine([f[1] for f in factors], [len(f[0]) for f in factors], c.shape)
        rows = []
        for point in zip(*(f[0][code].tolist() for f, code in zip(factors, codes))):
            key = (arm, *point)
            if key not in self._schedule_cache:
                budget, steps, interval, warmup, churn = point
                if all(float(v).is_integer() for v in (budget, steps, interval, warmup)):
                    # strategies.kr_schedule, without building a job per schedule
                    sched = (KRSchedule(n_modules, int(budget), int(steps), ()) if arm is None else job_schedule(
                        KRConfig(budget=int(budget), arm=arm, window_steps=int(interval),  # type: ignore[arg-type]
                                 warmup_rounds=int(warmup)), n_modules, int(steps), churn=churn))
                else:  # fractional fields: the job itself says what they mean (or that they are wrong)
                    sched = kr_schedule(dataclasses.replace(
                        self.job, budget=int(budget), steps=int(steps), kr_interval_steps=int(interval),
                        kr_warmup_rounds=int(warmup), kr_churn=float(churn)), strategy)
                self._schedule_cache[key] = dataclasses.asdict(sched.counts())
            rows.append(self._schedule_cache[key])
        return {k: np.asarray([r[k] for r in rows], dtype=np.float64)[inverse.reshape(-1)].reshape(c.shape)
                for k in rows[0]}


class _ChunkIndex:
    """One chunk of points: the index of each point into every kind of table, made on first use.

    Indices are ``np.intp``: ``np.take`` converts any other integer index to it on every call,
    which costs about as much as the gather itself. Terms after a sum's first are gathered into
    one scratch array per chunk rather than a fresh temporary each.
    """

    def __init__(self, g: SimpleNamespace, sl: slice):
        self.g, self.sl = g, sl
        self.k = g.combo[sl].astype(np.intp)
        self._index: dict[str, np.ndarray] = {"k": self.k}
        self._scratch = np.empty(len(self.k))

    def index(self, factor: str) -> np.ndarray:
        if factor not in self._index:
            idx = self.k * self.g.widths[factor]
            idx += self.g.names[factor][self.sl]
            self._index[factor] = idx
        return self._index[factor]

    def read(self, recipe: tuple, out: np.ndarray | None = None) -> np.ndarray:
        """A recipe's values at this chunk's points: its terms' sum, in order, times its scale."""
        terms, scale = recipe
        for i, (table, factor) in enumerate(terms):
            flat, idx = table.reshape(-1), self.index(factor)
            if i == 0:
                if out is None:
                    out = np.empty(len(idx), dtype=flat.dtype)
                np.take(flat, idx, out=out, mode="clip")
            else:
                out += np.take(flat, idx, out=self._scratch, mode="clip")
        if scale is not None:
            out *= np.take(scale, self.k, out=self._scratch, mode="clip")
        return out


def _factorise(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values as float64, ascending; each element's code into them, int32, ``a``'s shape).

    Whole numbers in a compact range take a lookup table (no sort); anything else ``np.unique``.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        a = a.astype(np.float64)
    if a.size <= 1:
        return a.astype(np.float64).reshape(-1), np.zeros(a.shape, dtype=np.int32)
    x = a
    if a.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            x = a.astype(np.int64)
        if not np.array_equal(x, a):
            x = None
    if x is not None:
        lo, hi = int(x.min()), int(x.max())
        span = hi - lo + 1
        if span <= max(1 << 16, 4 * x.size):
            off = x - lo if lo else x
            present = np.zeros(span, dtype=bool)
            present[off] = True
            lut = np.cumsum(present, dtype=np.int32) - 1
            codes = np.take(lut, off, mode="clip")
            return (np.flatnonzero(present) + lo).astype(np.float64), codes.reshape(a.shape)
    uniq, inverse = np.unique(a, return_inverse=True)
    return uniq.astype(np.float64), inverse.reshape(a.shape).astype(np.int32)


def _combine(codes: list[np.ndarray], cards: list[int], shape: tuple) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per point, the index of its combination of codes (flat, int32), and each field's code at
    every distinct combination present."""
    size = int(np.prod(shape, dtype=np.int64))
    if not codes:
        return np.zeros(size, dtype=np.int32), []
    if len(codes) == 1:
        flat = np.broadcast_to(codes[0], shape).reshape(-1)
        return np.ascontiguousarray(flat, dtype=np.int32), [np.arange(cards[0])]
    space = int(np.prod(cards, dtype=np.float64))
    key = np.empty(shape, dtype=np.int64)
    key[...] = codes[0]
    for code, card in zip(codes[1:], cards[1:]):
        key *= card
        key += code
    key = key.reshape(-1)
    if space <= max(1 << 22, 4 * size):
        present = np.zeros(space, dtype=bool)
        present[key] = True
        uniq = np.flatnonzero(present)
        lut = np.cumsum(present, dtype=np.int32) - 1
        combo = np.take(lut, key, mode="clip")
    else:
        uniq, inverse = np.unique(key, return_inverse=True)
        combo = inverse.reshape(-1).astype(np.int32)
    per_field = []
    for card in reversed(cards):
        uniq, code = np.divmod(uniq, card)
        per_field.append(code)
    return combo, per_field[::-1]


def _name_codes(key: str, names: np.ndarray, catalog: dict) -> np.ndarray:
    """Each name's position in ``catalog`` (int32, ``names``' shape).

    Raises:
        InputError: a name not in the catalog (the first, in sorted order).
    """
    allowed = list(catalog)
    if names.dtype.kind != "U" or names.size <= 256:
        flat = names.reshape(-1).tolist()
        bad = [n for n in np.unique(names).tolist() if n not in catalog] if any(
            n not in catalog for n in flat) else []
        if bad:
            raise InputError(f"unknown {key} {bad[0]!r}; allowed: {', '.join(allowed)}")
        return np.asarray([allowed.index(n) for n in flat], dtype=np.int32).reshape(names.shape)
    codes = np.full(names.shape, -1, dtype=np.int32)
    for i, name in enumerate(allowed):
        np.copyto(codes, i, where=names == name)
    if np.any(codes < 0):
        bad = np.unique(names[codes < 0]).tolist()
        raise InputError(f"unknown {key} {bad[0]!r}; allowed: {', '.join(allowed)}")
    return codes

