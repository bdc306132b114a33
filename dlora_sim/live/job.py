"""The live job: what both processes train, and the cost model's exchange lists they follow.

The edge and the cloud are started with the same :class:`LiveJob` (a small JSON file). Each
derives from it, independently, the cost model's :class:`~dlora_sim.cost.JobSpec` and asks the
cost model for the exchange list of every pass (:func:`train_plan`, :func:`probe_plan`): the
runtime sends exactly those messages, in that order, so the protocol has one definition (the
cost model's), not two. No torch here: the runner and ``--compare`` read jobs without it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from dlora_sim import cost
from dlora_sim.errors import InputError
from dlora_sim.kr import KRConfig, KRRound

MODEL = "minilm-l6"
#: the cost model's names of the LoRA targets that profiling's ``targets="attention"`` covers
TARGETS = ("q", "k", "v", "o")
#: fp32 on the wire: the exchanged values are the training's own, so the live weights can equal a
#: single-process run's
DTYPE_BYTES = 4
EXCHANGE_KINDS = ("start", "fwd", "head", "bwd", "kr")


@dataclass(frozen=True)
class LiveJob:
    """One live fine-tuning job of MiniLM-L6 with LoRA on q, k, v, o (24 modules).

    Args:
        task: a committed WordNet classification task.
        train_limit: training examples used (the first ones of the split).
        batch: samples per step (b).
        seq_len: tokens per sample (T); every batch is padded to exactly T, as the cost model counts.
        steps: optimizer steps.
        rank, alpha: LoRA rank and scaling.
        lr: AdamW learning rate (weight decay 0, as profiling).
        seed: seeds LoRA A, the head and the batch order.
        kr: Kill-and-Revive on (strategy ``dlora-kr``) or off (``dlora-all``).
        budget: KR's B.
        kr_window: steps between KR rounds.
        kr_warmup: KR rounds with every module active before the first kill.
        exchange: ``activations`` (per-module round trips) or ``weights``.
        share_inputs: q, k, v of a layer get their one input in one message (cost model default).
        checkpoint_every: the edge checkpoints every this many steps (and at the end).
    """

    task: str = "noun-supersense"
    train_limit: int = 256
    batch: int = 2
    seq_len: int = 32
    steps: int = 6
    rank: int = 8
    alpha: float = 16.0
    lr: float = 1e-3
    seed: int = 0
    kr: bool = False
    budget: int = 3
    kr_window: int = 3
    kr_warmup: int = 0
    exchange: str = "activations"
    share_inputs: bool = True
    checkpoint_every: int = 2

    def __post_init__(self) -> None:
        from dlora_sim.profiling.tasks import task_index

        tasks = {name: meta for name, meta in task_index().items() if meta["kind"] == "classification"}
        if self.task not in tasks:
            raise InputError(f"task: {self.task!r} is not a classification task; allowed: {', '.join(sorted(tasks))}")
        for name in ("train_limit", "batch", "seq_len", "steps", "rank", "budget", "kr_window", "checkpoint_every"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise InputError(f"{name}: must be a positive integer, got {value!r}")
        if type(self.kr_warmup) is not int or self.kr_warmup < 0:
            raise InputError(f"kr_warmup: must be an integer >= 0, got {self.kr_warmup!r}")
        if type(self.seed) is not int or self.seed < 0:
            raise InputError(f"seed: must be an integer >= 0, got {self.seed!r}")
        for name in ("lr", "alpha"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise InputError(f"{name}: must be a positive number, got {value!r}")
        if self.exchange not in cost.EXCHANGES:
            raise InputError(f"exchange: {self.exchange!r}; allowed: {', '.join(cost.EXCHANGES)}")
        if self.batch > self.train_limit:
            raise InputError(f"batch: {self.batch} is above train_limit {self.train_limit}")
        if self.seq_len > 512:
            raise InputError(f"seq_len: {self.seq_len} is above MiniLM-L6's 512 positions")
        self.spec  # the cost model refuses what it cannot price (rank, budget), naming the field

    @property
    def strategy(self) -> str:
        """The cost model's strategy this job runs."""
        return "dlora-kr" if self.kr else "dlora-all"

    @cached_property
    def n_classes(self) -> int:
        from dlora_sim.profiling.tasks import task_index

        return len(task_index()[self.task]["labels"])

    @cached_property
    def spec(self) -> cost.JobSpec:
        """The job as the cost model sees it (offload policy, head on the edge, one loss token)."""
        return cost.JobSpec(
            model=MODEL, peft=cost.PeftSpec("lora", self.rank, TARGETS), batch=self.batch, seq_len=self.seq_len,
            steps=self.steps, budget=self.budget, dtype_bytes=DTYPE_BYTES, killed_policy="offload",
            head_placement="edge", exchange=self.exchange, share_inputs=self.share_inputs,
            kr_interval_steps=self.kr_window, kr_warmup_rounds=self.kr_warmup, head_out_dim=self.n_classes,
            loss_tokens_per_sample=1)

    @property
    def scaling(self) -> float:
        """peft's LoRA scaling α/r (no rsLoRA): what the cloud multiplies a module it applies by."""
        return self.alpha / self.rank

    def module_shapes(self) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """(A, B) shapes of every module, table order: A is r × d_in, B is d_out × r."""
        t = self.spec.table
        return [((self.rank, int(d_in)), (int(d_out), self.rank)) for d_in, d_out in zip(t.d_in, t.d_out)]

    def kr_config(self) -> KRConfig:
        """The controller's rules: those :func:`dlora_sim.cost.kr_schedule` prices for the job."""
        return KRConfig(budget=self.budget, arm="kr", window_steps=self.kr_window, warmup_rounds=self.kr_warmup)

    def round_before(self, step: int) -> bool:
        """Whether a KR round runs before ``step`` (0-based): after every window, never after the last step."""
        return self.kr and step > 0 and step % self.kr_window == 0 and step < self.steps

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def from_dict(raw: Any, where: str = "job") -> LiveJob:
        """A job from its JSON form; unknown keys and wrong types are one :class:`InputError` line."""
        if not isinstance(raw, dict):
            raise InputError(f"{where}: a JSON object is needed")
        known = {f.name for f in dataclasses.fields(LiveJob)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InputError(f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        return LiveJob(**raw)

    @staticmethod
    def load(path: Path) -> LiveJob:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: cannot read the job ({error})") from None
        return LiveJob.from_dict(raw, str(path))


def train_plan(job: LiveJob, active: np.ndarray) -> list[cost.Exchange]:
    """The exchanges of one training step with exactly the ``active`` modules (the cost model's)."""
    return cost.step_exchanges(job.spec, job.strategy, active=np.asarray(active, dtype=bool))


def probe_plan(job: LiveJob) -> list[cost.Exchange]:
    """The exchanges of a KR probe batch (every module, no update): the cost model's."""
    return cost.probe_exchanges(job.spec)


def round_exchanges(job: LiveJob, index: int, step: int, before: np.ndarray, after: np.ndarray,
                    probed: bool, norm_modules: int, probe_modules: int) -> list[cost.Exchange]:
    """What the cost model says a KR round that decided ``before -> after`` costs (its probe
    batch when it probed, and the ``kr`` exchange): the live transcript is held against this."""
    before, after = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    kr_round = KRRound(after_step=step - 1, index=index, n_active_before=int(before.sum()), n_active=int(after.sum()),
                       kills=int((before & ~after).sum()), revives=int((~before & after).sum()), probe=probed,
                       norm_modules=norm_modules, probe_modules=probe_modules)
    return cost.kr_round_exchanges(job.spec, kr_round)


def kind_of(exchange: cost.Exchange) -> str:
    """``start``, ``fwd``, ``head``, ``bwd`` or ``kr``: the part of the name before the modules."""
    kind = exchange.name.split(":", 1)[0]
    if kind not in EXCHANGE_KINDS:
        raise ValueError(f"the cost model's exchange {exchange.name!r} is not one the live runtime speaks")
    return kind


def group_of(exchange: cost.Exchange) -> list[str]:
    """The modules of a ``fwd:``/``bwd:`` exchange, in the order their tensors travel."""
    return exchange.name.split(":", 1)[1].split("+")


def job_plan(job: LiveJob, rounds: list[dict]) -> list[tuple[str, int, cost.Exchange]]:
    """Every round trip of the whole job as the cost model prices it, given the KR decisions the
    run took (``rounds``: the edge's records), as (pass, step, exchange), in order.

    Passes: ``probe`` (a KR probe batch), ``round`` (a KR decision that changed the active set),
    ``train``. A round that changed nothing sends nothing, as the cost model says.
    """
    by_step = {r["step"]: r for r in rounds}
    active = np.ones(job.spec.table.n_modules, dtype=bool)
    out: list[tuple[str, int, cost.Exchange]] = []
    for step in range(job.steps):
        record = by_step.get(step)
        if record is not None:
            exchanges = round_exchanges(job, record["index"], step, record["before"], record["after"], record["probe"],
                                        record["norm_modules"], record["probe_modules"])
            out += [("round" if e.name == "kr" else "probe", step, e) for e in exchanges if e.round_trips]
            active = np.asarray(record["after"], dtype=bool)
        out += [("train", step, e) for e in train_plan(job, active)]
    return out
