"""What the edge process and the single-process reference share: model, batches, KR rule.

The live edge and an ordinary training loop on one machine must start from the same weights,
see the same batches and make the same KR decisions; only then can their final weights be held
equal. Everything they share is here, built from :mod:`dlora_sim.profiling` (the model, the
tasks, the freezing mechanics) and :mod:`dlora_sim.kr` (the controller):

- the model is profiling's MiniLM-L6 + LoRA (q, k, v, o) + classifier head, in eval mode:
  dropout off, because the two processes of a live run cannot share one dropout stream;
- every batch is padded to exactly ``seq_len`` tokens, the T the cost model counts;
- a KR round is the controller's, with the norms and the probe scaling of profiling's loop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from dlora_sim.kr import KRController, KRDecision
from dlora_sim.live.job import LiveJob
from dlora_sim.profiling.freezing import module_norms, probe_grad_norms, set_active
from dlora_sim.profiling.models import PeftClassifier, PeftModule, PeftSpecLocal, build_model, load_tokenizer
from dlora_sim.profiling.tasks import batch_indices, load_task

#: the probe batches' seed offset, as profiling's training loop draws them
PROBE_SEED_OFFSET = 7919


@dataclass(frozen=True)
class Batch:
    """One batch, tokenized and padded to the job's ``seq_len``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor


class Batches:
    """The job's training and probe batches: fixed by the seed, the same in every process."""

    def __init__(self, job: LiveJob) -> None:
        self.job = job
        self.tokenizer = load_tokenizer()
        self.data = load_task(job.task, "train", job.train_limit)
        n = len(self.data)
        self.train = batch_indices(n, job.batch, job.steps, job.seed)
        self.probes = batch_indices(n, job.batch, job.steps // job.kr_window + 1, job.seed + PROBE_SEED_OFFSET)

    def _batch(self, idx: np.ndarray) -> Batch:
        enc = self.tokenizer([self.data.texts[i] for i in idx], padding="max_length", truncation=True,
                             max_length=self.job.seq_len, return_tensors="pt")
        return Batch(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"],
                     torch.as_tensor(self.data.labels[idx]))

    def train_batch(self, step: int) -> Batch:
        """The batch of training step ``step`` (0-based)."""
        return self._batch(self.train[step])

    def probe_batch(self, step: int) -> Batch:
        """The probe batch of the KR round that runs before ``step``."""
        return self._batch(self.probes[step // self.job.kr_window - 1])


def build(job: LiveJob) -> tuple[PeftClassifier, list[PeftModule], torch.optim.Optimizer]:
    """The model (eval mode: no dropout), its PEFT modules in table order and the AdamW optimizer.

    Raises:
        RuntimeError: the model's modules are not the cost model's module table.
    """
    spec = PeftSpecLocal(method="lora", rank=job.rank, alpha=job.alpha, targets="attention")
    net, modules = build_model(spec, job.n_classes, multiple_choice=False, seed=job.seed)
    net.eval()
    expected = [name.removesuffix(".lora") for name in job.spec.table.name]
    if [m.name for m in modules] != expected:
        raise RuntimeError("the model's LoRA modules are not the cost model's module table, in order")
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=job.lr, weight_decay=0.0)
    return net, modules, optimizer


def new_controller(job: LiveJob, modules: list[PeftModule]) -> KRController:
    """The KR controller with its norm baseline taken before training, as profiling's loop does."""
    controller = KRController(len(modules), job.kr_config(), module_params=[m.n_params for m in modules])
    controller.set_baseline(module_norms(modules))
    return controller


def grad_norms(modules: list[PeftModule]) -> np.ndarray:
    """‖grad‖ of each module's tensors taken together (the probe's measure), by the norm of freezing."""
    return module_norms([dataclasses.replace(m, params=[p.grad for p in m.params]) for m in modules])


def kr_round(job: LiveJob, controller: KRController, modules: list[PeftModule], optimizer: torch.optim.Optimizer,
             probe_grads: np.ndarray | None) -> KRDecision:
    """Decide one round and freeze/unfreeze the modules for real (profiling's ``norm-diff`` round).

    ``probe_grads``: the probe batch's gradient norms when the round probed; its would-be change
    over a window is ``window * lr * grad``, as profiling scales it.
    """
    probe = None if probe_grads is None else job.kr_window * job.lr * probe_grads
    decision = controller.round(module_norms(modules), probe_change=probe)
    set_active(modules, decision.active, optimizer)
    return decision


def loss_of(net: PeftClassifier, batch: Batch) -> torch.Tensor:
    """Cross-entropy of the classifier on one batch."""
    logits = net(input_ids=batch.input_ids, attention_mask=batch.attention_mask, token_type_ids=batch.token_type_ids)
    return torch.nn.functional.cross_entropy(logits, batch.labels)


@dataclass
class ReferenceRun:
    """A single-process training's result: final trainable tensors by name, losses, active sets."""

    weights: dict[str, np.ndarray]
    losses: list[float]
    active: list[list[int]]


def trainable_state(net: PeftClassifier) -> dict[str, np.ndarray]:
    """Every tensor that trains (LoRA A and B, the head), by its parameter name."""
    return {name: p.detach().numpy().copy() for name, p in net.named_parameters()
            if "lora_" in name or name.startswith("head.")}


def reference_train(job: LiveJob) -> ReferenceRun:
    """The ordinary training the live run must equal: one process, same seed, batches and KR."""
    torch.set_num_threads(1)
    net, modules, optimizer = build(job)
    controller = new_controller(job, modules)
    batches = Batches(job)
    losses: list[float] = []
    active: list[list[int]] = []
    for step in range(job.steps):
        if job.round_before(step):
            work = controller.round_work()
            grads = None
            if work.probe_batches:
                probe = batches.probe_batch(step)
                grads = probe_grad_norms(net, modules, lambda: loss_of(net, probe), work.probe_mask)
            active.append(kr_round(job, controller, modules, optimizer, grads).active_indices)
        loss = loss_of(net, batches.train_batch(step))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.item()))
    return ReferenceRun(trainable_state(net), losses, active)
