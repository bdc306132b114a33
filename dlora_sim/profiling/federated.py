"""Federated LoRA, for real: FedAvg of MiniLM-L6 LoRA over simulated users with non-IID data.

The ``fed-lora`` strategy of the cost model says what federated LoRA costs; this module says
what accuracy it buys, which is not the single-user accuracy: every user trains on its own
skewed slice of the task (:mod:`~dlora_sim.profiling.fed_split`) and the cloud only ever sees
the average of their weights. A run is K users × R rounds; in round r every user

1. starts from the current global weights (LoRA A and B of every module, and the head),
2. runs E local AdamW steps on batches of its own shard (a fresh optimizer each round: the
   moments of its previous trajectory describe a point the average has moved away from, and a
   stateless client is what FedIT-style systems run),

then the cloud replaces the global weights by the mean of the users' weights, each weighted by
its example count (FedAvg, McMahan et al. 2017), and the global model is scored on the shared
test split. The frozen encoder never changes and never moves.

Deterministic given the seed: the split, every user's batch stream and the dropout stream all
derive from it, and the users train one after another in a fixed order. With one user and one
round this is exactly ordinary training (:func:`dlora_sim.profiling.train.train`, arm ``all``)
from the same initial weights and batches; a test holds it to that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from dlora_sim.errors import InputError
from dlora_sim.profiling.fed_split import Split, dirichlet_split
from dlora_sim.profiling.models import PeftSpecLocal, build_model, load_tokenizer
from dlora_sim.profiling.tasks import TaskSplit, batch_indices, encode, load_task
from dlora_sim.profiling.train import predict

State = dict[str, torch.Tensor]
#: the cost model's generic target names for each local LoRA target set
GENERIC_TARGETS = {"attention": ("q", "k", "v", "o"), "attention+ffn": ("q", "k", "v", "o", "up", "down")}
#: user k's batch stream is seeded ``seed + USER_STREAM * k`` (user 0: the run's own seed)
USER_STREAM = 7919


@dataclass(frozen=True)
class FedConfig:
    """One federated run.

    Args:
        task: a committed classification task (a multiple-choice label is a letter, not a
            class a user's data could be skewed towards).
        peft: the LoRA every user trains.
        users: simulated users K.
        alpha: Dirichlet concentration of the split (0.1 very non-IID, 100 near IID).
        rounds: aggregation rounds R.
        local_steps: local optimizer steps per user per round E (the cost model's ``fed_round_steps``).
        batch: examples per local step.
        lr: AdamW learning rate (constant; weight decay 0).
        seed: seeds the split, the new weights, every batch stream and dropout.
        max_len: token cap per row.
        train_limit / test_limit: use only the first examples of each split.
    """

    task: str
    peft: PeftSpecLocal = field(default_factory=PeftSpecLocal)
    users: int = 5
    alpha: float = 0.1
    rounds: int = 10
    local_steps: int = 15
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    max_len: int = 48
    train_limit: int | None = None
    test_limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("users", "rounds", "local_steps", "batch", "max_len"):
            if getattr(self, name) <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"--lr must be positive, got {self.lr}")
        if not (np.isfinite(self.alpha) and self.alpha > 0):
            raise InputError(f"--alpha must be a positive number, got {self.alpha}")
        if self.peft.method != "lora":
            raise InputError(f"federated runs average LoRA weights; --peft {self.peft.method} is not lora")


@dataclass(frozen=True)
class RoundReport:
    """What one round did, handed to ``on_round`` (progress lines, tests of the averaging)."""

    round: int
    user_states: list[State]
    user_sizes: list[int]
    global_state: State
    accuracy: float
    losses: list[list[float]]


@dataclass
class FedRun:
    """Everything a federated record needs from the run (plain Python values)."""

    split: Split
    lora_params: int
    head_params: int
    train_examples: int
    test_examples: int
    round_accuracy: list[float] = field(default_factory=list)
    #: rounds × users × local steps
    step_loss: list[list[list[float]]] = field(default_factory=list)
    test_predictions: list[int] = field(default_factory=list)

    @property
    def test_accuracy(self) -> float:
        return self.round_accuracy[-1]


def trainable_state(net: torch.nn.Module) -> State:
    """Copies of the tensors FedAvg exchanges: every trainable one (LoRA A, B and the head)."""
    return {name: p.detach().clone() for name, p in net.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_state(net: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Overwrite the trainable tensors with ``state`` (in place: the optimizer's references stay valid).

    Raises:
        ValueError: ``state`` names other tensors than the net's trainable ones.
    """
    params = {name: p for name, p in net.named_parameters() if p.requires_grad}
    if set(params) != set(state):
        raise ValueError(f"state holds {sorted(set(state) ^ set(params))[:3]}... not matching the trainable tensors")
    for name, p in params.items():
        p.copy_(state[name])


@torch.no_grad()
def fedavg(states: Sequence[Mapping[str, torch.Tensor]], sizes: Sequence[int]) -> State:
    """The example-weighted mean of the users' tensors: Σ_k (n_k / N) · w_k, per tensor.

    Accumulated in float64 and rounded once to the tensors' dtype, so the mean does not depend
    on the users' order beyond that one rounding.

    Raises:
        ValueError: no states, sizes that do not match them or are not positive, or users
            holding different tensors.
    """
    if not states or len(states) != len(sizes):
        raise ValueError(f"fedavg needs one size per state, got {len(states)} states and {len(sizes)} sizes")
    if min(sizes) <= 0:
        raise ValueError(f"fedavg weights must be positive example counts, got {list(sizes)}")
    names = list(states[0])
    if any(list(s) != names for s in states):
        raise ValueError("fedavg: the users hold different tensors")
    total = float(sum(sizes))
    out: State = {}
    for name in names:
        acc = torch.zeros_like(states[0][name], dtype=torch.float64)
        for state, n in zip(states, sizes):
            acc += state[name].double() * (n / total)
        out[name] = acc.to(states[0][name].dtype)
    return out


def batch_loss(net: torch.nn.Module, enc: dict) -> torch.Tensor:
    """Cross-entropy of the net's logits on one encoded batch (the same loss as ordinary training)."""
    inputs = {k: v for k, v in enc.items() if k != "labels"}
    return torch.nn.functional.cross_entropy(net(**inputs), enc["labels"])


def local_round(net: torch.nn.Module, start: Mapping[str, torch.Tensor], batches: Sequence[np.ndarray],
                tokenizer, data: TaskSplit, lr: float, max_len: int) -> tuple[State, list[float]]:
    """One user's round: from the global weights ``start``, a fresh AdamW over ``batches``.

    Returns:
        The user's weights after the round and its loss per step.
    """
    load_state(net, start)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    losses = []
    for idx in batches:
        loss = batch_loss(net, encode(tokenizer, data, idx, max_len))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return trainable_state(net), losses


def run_federated(config: FedConfig, on_round: Callable[[RoundReport], None] | None = None) -> FedRun:
    """Run FedAvg of LoRA and return its traces.

    Args:
        config: the run.
        on_round: called with a :class:`RoundReport` after every round's aggregation and evaluation.

    Raises:
        InputError: unknown or multiple-choice task, a split that cannot give every user a batch.
    """
    train_data = load_task(config.task, "train", config.train_limit)
    test_data = load_task(config.task, "test", config.test_limit)
    if train_data.kind != "classification":
        raise InputError(f"task '{config.task}' is {train_data.kind}: a non-IID split by label needs a "
                         f"classification task")
    split = dirichlet_split(train_data.labels, train_data.n_classes, config.users, config.alpha, config.seed,
                            min_examples=config.batch)
    tokenizer = load_tokenizer()
    net, modules = build_model(config.peft, train_data.n_classes, False, config.seed)
    lora_params = sum(m.n_params for m in modules)
    global_state = trainable_state(net)
    run = FedRun(split=split, lora_params=lora_params,
                 head_params=sum(t.numel() for t in global_state.values()) - lora_params,
                 train_examples=len(train_data), test_examples=len(test_data))
    torch.manual_seed(config.seed)  # dropout stream, as in ordinary training
    total = config.rounds * config.local_steps
    streams = [[shard[i] for i in batch_indices(len(shard), config.batch, total, config.seed + USER_STREAM * k)]
               for k, shard in enumerate(split.shards)]
    for r in range(config.rounds):
        window = slice(r * config.local_steps, (r + 1) * config.local_steps)
        user_states, losses = [], []
        for stream in streams:
            state, loss = local_round(net, global_state, stream[window], tokenizer, train_data,
                                      config.lr, config.max_len)
            user_states.append(state)
            losses.append(loss)
        global_state = fedavg(user_states, split.sizes)
        load_state(net, global_state)
        predictions = predict(net, tokenizer, test_data, config.max_len)
        accuracy = float((predictions == test_data.labels).mean()) if len(test_data) else 0.0
        run.round_accuracy.append(accuracy)
        run.step_loss.append(losses)
        run.test_predictions = [int(x) for x in predictions]
        if on_round is not None:
            on_round(RoundReport(r + 1, user_states, split.sizes, global_state, accuracy, losses))
    return run


def timed_run(config: FedConfig, threads: int = 1,
              on_round: Callable[[RoundReport], None] | None = None) -> tuple[FedRun, float]:
    """:func:`run_federated` on ``threads`` torch threads; returns the run and its wall time in s."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    run = run_federated(config, on_round)
    return run, time.perf_counter() - start
