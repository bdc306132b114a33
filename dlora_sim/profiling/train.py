"""The training loop: fine-tune the PEFT modules + head, with a KR round every window.

One run is one rehearsal of what a user's device would do: the same batches in every arm (they
depend only on the seed), KR decisions from :mod:`dlora_sim.kr`, and everything the simulator
later needs recorded on the way: loss per step, wall time per step, norms and the active set per
KR round, dev accuracy, and KR's own cost (norm computation and probe batch) timed and counted
apart from training.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dlora_sim.errors import InputError
from dlora_sim.kr import KRConfig, KRController
from dlora_sim.profiling.freezing import (
    module_norms, norm_flops, probe_grad_norms, set_active, update_norm_flops, update_norms,
)
from dlora_sim.profiling.models import PeftModule, PeftSpecLocal, build_model, load_tokenizer
from dlora_sim.profiling.tasks import TaskSplit, batch_indices, encode, load_task
from dlora_sim.profiling.upload import add_upload_noise, train_word_embeddings


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Args:
        task: a committed task name.
        peft: the PEFT scheme.
        kr: the KR settings (its ``window_steps`` sets the round spacing).
        steps: optimizer steps.
        batch: examples per step (multiple-choice: questions, each 4 encoder rows).
        lr: AdamW learning rate (constant; weight decay 0 so frozen modules cannot drift).
        seed: seeds weights of new tensors, batch order, dropout and arm ``random``.
        max_len: token cap per row (dynamic padding to the longest row in the batch).
        train_limit / dev_limit / test_limit: use only the first examples of each split.
        eval_every: dev accuracy every this many steps (and at the end).
        eval_test: also test accuracy at those steps (an accuracy-vs-steps curve on the test
            split, e.g. to see where training has plateaued); the final one is the test score.
        upload_noise: Gaussian noise scale σ on the embedding output the device uploads, in
            training and at evaluation (:mod:`~dlora_sim.profiling.upload`); 0 = none.
        train_embeddings: the device also trains the word-embedding table (a private table).
    """

    task: str
    peft: PeftSpecLocal
    kr: KRConfig
    steps: int = 300
    batch: int = 16
    lr: float = 1e-3
    seed: int = 0
    max_len: int = 48
    train_limit: int | None = None
    dev_limit: int | None = 500
    test_limit: int | None = None
    eval_every: int = 100
    eval_test: bool = False
    upload_noise: float = 0.0
    train_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "max_len", "eval_every"):
            if getattr(self, name) <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise InputError(f"--lr must be positive, got {self.lr}")
        if not (0 <= self.upload_noise < float("inf")):
            raise InputError(f"--upload-noise must be a finite number >= 0, got {self.upload_noise}")


@dataclass
class TrainResult:
    """Everything a profile records about one run (plain Python/numpy values).

    ``trainable_params`` is the head plus every module (what *could* train);
    ``mean_trainable_params`` is what did, step by step, averaged (the profile records this one).
    ``update_norms`` is None for schemes without a low-rank update (Adapter, IA3).
    """

    modules: list[PeftModule]
    trainable_params: int
    head_params: int = 0
    mean_trainable_params: float = 0.0
    update_norms: list[list[float]] | None = None
    test_predictions: list[int] = field(default_factory=list)
    round_steps: list[int] = field(default_factory=list)
    norms: list[list[float]] = field(default_factory=list)
    active: list[list[int]] = field(default_factory=list)
    probe_change: list[list[float | None]] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    step_time_s: list[float] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    test_eval: list[dict] | None = None  # with TrainConfig.eval_test: test accuracy per eval step
    test_accuracy: float = float("nan")
    kr_norm_s: float = 0.0
    kr_norm_flops: int = 0
    kr_probe_s: float = 0.0
    kr_probe_flops: int = 0
    kr_probe_batches: int = 0
    net: torch.nn.Module | None = None  # the trained model, for audits of what the device holds


def _loss_fn(net: torch.nn.Module, enc: dict) -> torch.Tensor:
    inputs = {k: v for k, v in enc.items() if k != "labels"}
    return torch.nn.functional.cross_entropy(net(**inputs), enc["labels"])


@torch.no_grad()
def predict(net: torch.nn.Module, tokenizer, data: TaskSplit, max_len: int, batch: int = 64) -> np.ndarray:
    """Arg-max class (or choice) per example, in the split's order (eval mode, no dropout).

    Why per example: two arms scored on the same examples can be compared pairwise (McNemar,
    paired bootstrap), which needs far fewer seeds than comparing two accuracies.
    """
    was_training = net.training
    net.eval()
    out = np.zeros(len(data), dtype=np.int64)
    # Shortest first: batches of similar length waste little compute on padding.
    order = np.argsort([len(t) + sum(map(len, c)) for t, c in zip(data.texts, data.choices)], kind="stable")
    for start in range(0, len(data), batch):
        idx = order[start : start + batch]
        enc = encode(tokenizer, data, idx, max_len)
        enc.pop("labels")
        out[idx] = net(**enc).argmax(-1).numpy()
    net.train(was_training)
    return out


def accuracy(net: torch.nn.Module, tokenizer, data: TaskSplit, max_len: int, batch: int = 64) -> float:
    """Share of examples whose arg-max logit is the gold label (eval mode, no dropout)."""
    return float((predict(net, tokenizer, data, max_len, batch) == data.labels).mean()) if len(data) else 0.0


def train(config: TrainConfig, on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Run one fine-tuning job with KR and return its traces.

    Args:
        config: the run.
        on_step: called as ``on_step(step, loss)`` after every step (progress bars).

    Raises:
        InputError: unknown task, budget larger than the module count.
    """
    train_data = load_task(config.task, "train", config.train_limit)
    dev_data = load_task(config.task, "dev", config.dev_limit)
    test_data = load_task(config.task, "test", config.test_limit)
    mc = train_data.kind == "multiple-choice"
    tokenizer = load_tokenizer()
    net, modules = build_model(config.peft, train_data.n_classes, mc, config.seed)
    if config.kr.arm != "all" and config.kr.budget > len(modules):
        raise InputError(f"--budget {config.kr.budget} exceeds the {len(modules)} "
                         f"{config.peft.method} modules")
    is_lora = all(m.lora is not None for m in modules)
    if config.kr.score == "update-norm-diff" and not is_lora:
        raise InputError(f"--score update-norm-diff needs --peft lora (it scores ΔW = B·A); "
                         f"{config.peft.method} has no low-rank update, use norm-diff or diff-norm")
    add_upload_noise(net.encoder.embeddings, config.upload_noise, config.seed)
    embedding_params = train_word_embeddings(net.encoder.embeddings) if config.train_embeddings else 0
    sizes = [m.n_params for m in modules]
    controller = KRController(len(modules), config.kr, module_params=sizes)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    total = sum(p.numel() for p in trainable)
    result = TrainResult(modules=modules, trainable_params=total,
                         head_params=total - sum(sizes) - embedding_params,
                         update_norms=[] if is_lora else None, net=net)
    if config.eval_test:
        result.test_eval = []
    active_params = 0  # sum over steps of the parameters of the modules that trained in the step

    torch.manual_seed(config.seed)  # dropout stream: identical across arms until they differ
    batches = batch_indices(len(train_data), config.batch, config.steps, config.seed)
    probes = batch_indices(len(train_data), config.batch, config.steps // config.kr.window_steps + 1,
                           config.seed + 7919)
    window = config.kr.window_steps
    norms0 = module_norms(modules)
    if config.kr.score == "norm-diff":
        controller.set_baseline(norms0)
    elif config.kr.score == "update-norm-diff":
        controller.set_baseline(update_norms(modules))  # ΔW(0) = 0: B starts at zero
    snapshot = [[p.detach().clone() for p in m.params] for m in modules]

    for step, idx in enumerate(batches, start=1):
        active_params += int(np.sum(np.array(sizes)[controller.active]))
        t0 = time.perf_counter()
        enc = encode(tokenizer, train_data, idx, config.max_len)
        loss = _loss_fn(net, enc)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        result.step_time_s.append(time.perf_counter() - t0)
        result.loss.append(loss.item())
        if step % window == 0 and step < config.steps:
            _kr_round(config, net, modules, controller, optimizer, tokenizer, train_data,
                      probes[step // window - 1], snapshot, result, step)
        predictions = None
        if step % config.eval_every == 0 or step == config.steps:
            result.eval.append({"step": step, "accuracy": accuracy(net, tokenizer, dev_data, config.max_len)})
            if result.test_eval is not None:
                predictions = predict(net, tokenizer, test_data, config.max_len)
                result.test_eval.append({"step": step, "accuracy": float((predictions == test_data.labels).mean())
                                         if len(test_data) else 0.0})
        if on_step is not None:
            on_step(step, result.loss[-1])
    if predictions is None:  # the last step's test predictions, unless the curve already made them
        predictions = predict(net, tokenizer, test_data, config.max_len)
    result.test_predictions = [int(x) for x in predictions]
    result.test_accuracy = float((predictions == test_data.labels).mean()) if len(test_data) else 0.0
    result.mean_trainable_params = result.head_params + embedding_params + active_params / config.steps
    return result


def _kr_round(config: TrainConfig, net: torch.nn.Module, modules: list[PeftModule],
              controller: KRController, optimizer: torch.optim.Optimizer, tokenizer,
              data: TaskSplit, probe_idx: np.ndarray, snapshot: list, result: TrainResult,
              step: int) -> None:
    """One KR round: norms, optional probe batch, decision, then real freezing."""
    work = controller.round_work()
    t0 = time.perf_counter()
    norms = module_norms(modules)
    if config.kr.score == "diff-norm":
        with torch.no_grad():
            change = np.array([float(torch.sqrt(sum(((p - q).double() ** 2).sum()
                                                    for p, q in zip(m.params, old))))
                               for m, old in zip(modules, snapshot)])
            for m, old in zip(modules, snapshot):
                for p, q in zip(m.params, old):
                    q.copy_(p)
        signal = change
    elif config.kr.score == "update-norm-diff":
        signal = update_norms(modules)
    else:
        signal = norms
    result.kr_norm_s += time.perf_counter() - t0
    if work.norm_modules:
        count = update_norm_flops if config.kr.score == "update-norm-diff" else norm_flops
        result.kr_norm_flops += count(modules, controller.active)
    if result.update_norms is not None:  # recorded for every LoRA run, whatever the score
        result.update_norms.append([float(x) for x in (signal if config.kr.score == "update-norm-diff"
                                                       else update_norms(modules))])

    probe = None
    if work.probe_batches:
        t0 = time.perf_counter()
        enc = encode(tokenizer, data, probe_idx, config.max_len)
        with FlopCounterMode(display=False) as counter:
            grads = probe_grad_norms(net, modules, lambda: _loss_fn(net, enc), work.probe_mask)
        result.kr_probe_s += time.perf_counter() - t0
        result.kr_probe_flops += int(counter.get_total_flops())
        result.kr_probe_batches += 1
        # Would-be change over one window at this lr (the controller calibrates the scale
        # against the changes it saw on active modules).
        probe = config.kr.window_steps * config.lr * grads
    decision = controller.round(signal, probe_change=probe)
    set_active(modules, decision.active, optimizer)
    result.round_steps.append(step)
    result.norms.append([float(x) for x in norms])
    result.active.append(decision.active_indices)
    result.probe_change.append([None if probe is None or np.isnan(x) else float(x)
                                for x in (probe if probe is not None else [np.nan] * len(modules))])
