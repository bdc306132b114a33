"""The edge process: the user's device of a live DLoRA run.

It holds what the user owns and nothing else: the tokenizer and the data, the embedding layer,
the LoRA modules, the head and its loss, the optimizer and the KR controller (the frozen blocks
are dropped right after loading). The cloud pulls, the edge answers:

- ``NEXT``: what comes next — a training batch (its embeddings), a KR probe batch, a KR decision
  (the new active mask and the weights of the modules it kills, which the cloud then applies
  frozen), or ``DONE``;
- ``FWD``: a module group's input; the edge runs the group's LoRA modules and answers their
  output deltas;
- ``HEAD``: the pooled final hidden states; the edge runs head and loss and answers their gradient;
- ``BWD``: the group's output gradients; the edge backpropagates through its modules (the weight
  gradients stay here) and answers the summed input gradient.

Which modules each ``FWD``/``BWD`` carries, and how many bytes, is the cost model's exchange
list for the step (:func:`~dlora_sim.live.job.train_plan`); the edge checks every request
against it. Under ``exchange = "weights"`` the edge ships the active modules' weights with the
batch and gets their gradients back with the next ``NEXT``.

Checkpoints (every ``checkpoint_every`` steps) hold everything that trains and the controller;
a restarted edge resumes its session from the last one with the next attempt number, so the
cloud drops whatever the old attempt left half done.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import logging
import pickle
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from dlora_sim.errors import InputError
from dlora_sim.io import atomic_write_bytes, atomic_write_json
from dlora_sim.live.channel import EdgeChannel, PeerLost, answer
from dlora_sim.live.job import LiveJob, group_of, kind_of, probe_plan, train_plan
from dlora_sim.live.training import Batch, Batches, build, grad_norms, kr_round, new_controller
from dlora_sim.live.wire import Kind, Message
from dlora_sim.profiling.models import PeftModule

log = logging.getLogger("dlora_sim.live")

CHECKPOINT = "checkpoint.pt"
SESSION = "session.json"
JOURNAL = "journal.jsonl"
RESULT = "edge.json"
WEIGHTS = "edge-weights.npz"


class ProtocolError(RuntimeError):
    """A request that the cost model's exchange list does not predict here: a bug, never input."""


@dataclass
class _Pass:
    """The edge's side of one pass through the cloud: its plan and what its backward needs."""

    kind: str  # "train" or "probe"
    step: int
    plan: list
    batch: Batch
    saved: dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]] = field(default_factory=dict)
    loss: float = float("nan")


def pack(modules: list[PeftModule], which: np.ndarray) -> np.ndarray:
    """The weights of the chosen modules, table order, each as A then B, flat fp32: the wire's layout."""
    parts = [p.detach().reshape(-1) for m, on in zip(modules, which) if on for p in m.lora[:2]]
    return torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)


class Edge:
    """The edge's training state and its answer to every request."""

    def __init__(self, job: LiveJob, workdir: Path) -> None:
        self.job = job
        self.workdir = workdir
        net, self.modules, self.optimizer = build(job)
        self.embeddings = net.encoder.embeddings
        self.head = net.head
        self.trainable = {name: p for name, p in net.named_parameters() if p.requires_grad}
        del net  # the frozen blocks are the cloud's: the edge keeps none of them
        if any(m.lora[2] != job.scaling for m in self.modules):
            raise RuntimeError("peft's LoRA scaling is not the job's alpha / rank, which the cloud applies")
        self.controller = new_controller(job, self.modules)
        self.batches = Batches(job)
        self.step = 0
        self.losses: list[float] = []
        self.rounds: list[dict] = []
        self.busy: list[tuple[int, str, int, float]] = []  # (step, pass kind, exchange index, seconds)
        self.round_done_for = -1
        self.probe_grads: np.ndarray | None = None
        self.pass_: _Pass | None = None
        self.checkpoint_due = False
        self.session, self.attempt = self._open_record()
        if (workdir / CHECKPOINT).exists():
            self._restore()

    # -- the session record, the checkpoint and the journal -----------------------------------

    def _open_record(self) -> tuple[int, int]:
        """This job's session id (kept) and the next attempt number (one more than the last run's)."""
        path = self.workdir / SESSION
        if path.exists():
            record = json.loads(path.read_text(encoding="utf-8"))
            session, attempt = int(record["session"]), int(record["attempt"]) + 1
        else:
            session, attempt = secrets.randbits(63), 1
        atomic_write_json(path, {"session": session, "attempt": attempt})
        return session, attempt

    def next_attempt(self) -> None:
        """The cloud was lost: what follows is a new attempt (the pass in flight is dropped)."""
        self._drop_pass()
        self.attempt += 1
        atomic_write_json(self.workdir / SESSION, {"session": self.session, "attempt": self.attempt})

    def _checkpoint(self) -> None:
        state = {
            "step": self.step,
            "trainable": {n: p.detach().clone() for n, p in self.trainable.items()},
            "optimizer": self.optimizer.state_dict(),
            "losses": list(self.losses),
            "rounds": list(self.rounds),
        }
        buffer = io.BytesIO()
        # the controller is plain Python + numpy: pickled into the edge's own file, never the wire
        torch.save({**state, "controller": pickle.dumps(self.controller)}, buffer)
        atomic_write_bytes(self.workdir / CHECKPOINT, buffer.getvalue())

    def _restore(self) -> None:
        state = torch.load(self.workdir / CHECKPOINT, weights_only=False)
        with torch.no_grad():
            for name, p in self.trainable.items():
                p.copy_(state["trainable"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.controller = pickle.loads(state["controller"])
        for m, on in zip(self.modules, self.controller.active):
            for p in m.params:
                p.requires_grad_(bool(on))
        self.step, self.losses, self.rounds = state["step"], state["losses"], state["rounds"]
        self._journal({"resume": self.step, "attempt": self.attempt})
        log.info("edge resumed session %x at step %d (attempt %d)", self.session, self.step, self.attempt)

    def _journal(self, record: dict) -> None:
        with open(self.workdir / JOURNAL, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def hello_arrays(self) -> list[np.ndarray]:
        """What a (re)opened session needs: the active mask and the weights of every killed module."""
        active = self.controller.active
        return [active.astype(np.uint8), pack(self.modules, ~active)]

    # -- answering ----------------------------------------------------------------------------

    def handle(self, request: Message) -> Message:
        """Answer one request; its time is recorded against its step (the edge's compute)."""
        start = time.perf_counter()
        before = self.pass_
        if request.kind == Kind.PING:  # calibration: answer as many bytes as asked
            reply = answer(Kind.REPLY, np.zeros(int(request.arrays[1][0]), np.uint8))
        elif request.kind == Kind.NEXT:
            reply = self._next(request)
        else:
            reply = self._module_work(request)
        current = self.pass_ or before
        self.busy.append((request.step, current.kind if current else "none", request.exchange,
                          time.perf_counter() - start))
        return reply

    def _next(self, request: Message) -> Message:
        if self.job.exchange == "weights" and request.arrays and request.arrays[0].size:
            self._weight_gradients(request.arrays[0])
        if self.pass_ is not None:
            raise ProtocolError(f"NEXT while the {self.pass_.kind} pass of step {self.pass_.step} is open")
        if request.step != self.step:
            raise ProtocolError(f"the cloud asks for step {request.step}, the edge is at step {self.step}")
        if self.step >= self.job.steps:
            self._finish()
            return answer(Kind.DONE)
        if self.job.round_before(self.step) and self.round_done_for != self.step:
            work = self.controller.round_work()
            if work.probe_batches and self.probe_grads is None:
                return self._start("probe", self.batches.probe_batch(self.step), probe_plan(self.job))
            before = self.controller.active
            decision = kr_round(self.job, self.controller, self.modules, self.optimizer, self.probe_grads)
            self.rounds.append({"step": self.step, "index": decision.round_index, "before": before.tolist(),
                                "after": decision.active.tolist(), "probe": self.probe_grads is not None,
                                "norm_modules": work.norm_modules, "probe_modules": work.probe_modules})
            self.probe_grads, self.round_done_for = None, self.step
            if decision.killed or decision.revived:
                killed = np.zeros(len(self.modules), dtype=bool)
                killed[list(decision.killed)] = True
                return answer(Kind.KR, decision.active.astype(np.uint8), pack(self.modules, killed))
        return self._start("train", self.batches.train_batch(self.step), train_plan(self.job, self.controller.active))

    def _start(self, kind: str, batch: Batch, plan: list) -> Message:
        """Open a pass: embed the batch (and, under the weights exchange, ship the modules)."""
        if kind == "probe":  # every module takes part in the probe, killed ones too
            for m in self.modules:
                for p in m.params:
                    p.requires_grad_(True)
        self.pass_ = _Pass(kind, self.step, plan, batch)
        with torch.no_grad():
            embedded = self.embeddings(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids)
        arrays = [embedded.numpy(), batch.attention_mask.sum(1).to(torch.int32).numpy()]
        if self.job.exchange == "weights":
            arrays.append(pack(self.modules, self._moving()))
        self._check(plan[0], "start", up=arrays[0].nbytes + (arrays[2].nbytes if len(arrays) > 2 else 0))
        return answer(Kind.BATCH if kind == "train" else Kind.PROBE, *arrays)

    def _moving(self) -> np.ndarray:
        """The modules whose weights move this pass (every module in a probe)."""
        return np.ones(len(self.modules), dtype=bool) if self.pass_.kind == "probe" else self.controller.active

    def _check(self, exchange, kind: str, up: int, down: int | None = None) -> None:
        if kind_of(exchange) != kind or exchange.bytes_up != up or (down is not None and exchange.bytes_down != down):
            raise ProtocolError(f"{kind} of {up} bytes up / {down} down is not the predicted {exchange.name} "
                                f"({exchange.bytes_up:g} up / {exchange.bytes_down:g} down)")

    def _module_work(self, request: Message) -> Message:
        p = self.pass_
        if p is None or request.step != p.step or not 0 < request.exchange < len(p.plan):
            raise ProtocolError(f"{request.kind.name} for step {request.step}, exchange {request.exchange}: no such pass")
        exchange = p.plan[request.exchange]
        data = torch.from_numpy(request.arrays[0].copy())
        if request.kind == Kind.FWD:
            return self._forward(exchange, data)
        if request.kind == Kind.HEAD:
            return self._head(exchange, data)
        if request.kind == Kind.BWD:
            return self._backward(exchange, data, last=request.exchange == len(p.plan) - 1)
        raise ProtocolError(f"the edge does not answer {request.kind.name}")

    def _forward(self, exchange, x: torch.Tensor) -> Message:
        group = group_of(exchange)
        x.requires_grad_(True)
        outs = {}
        for name in group:
            a, b, scaling = self._lora(name)
            outs[name] = F.linear(F.linear(x, a), b) * scaling  # peft's LoRA delta, term for term
        self.pass_.saved[group[0]] = (x, outs)
        reply = torch.cat([outs[n] for n in group], dim=-1).detach().numpy()
        self._check(exchange, "fwd", up=reply.nbytes, down=x.numel() * x.element_size())
        return answer(Kind.REPLY, reply)

    def _lora(self, name: str) -> tuple[torch.Tensor, torch.Tensor, float]:
        return self.modules[self.job.spec.table.name.index(name)].lora

    def _head(self, exchange, pooled: torch.Tensor) -> Message:
        pooled.requires_grad_(True)
        loss = F.cross_entropy(self.head(pooled), self.pass_.batch.labels)
        loss.backward()
        self.pass_.loss = float(loss.item())
        reply = pooled.grad.numpy()
        self._check(exchange, "head", up=reply.nbytes, down=reply.nbytes)
        return answer(Kind.REPLY, reply)

    def _backward(self, exchange, grads: torch.Tensor, last: bool) -> Message:
        group = group_of(exchange)  # reverse order of the forward group
        x, outs = self.pass_.saved.pop(group[-1])
        widths = [outs[n].shape[-1] for n in group]
        torch.autograd.backward([outs[n] for n in group], list(torch.split(grads, widths, dim=-1)))
        reply = x.grad.numpy()
        self._check(exchange, "bwd", up=reply.nbytes, down=grads.numel() * grads.element_size())
        if last:
            self._end_pass()
        return answer(Kind.REPLY, reply)

    def _weight_gradients(self, flat: np.ndarray) -> None:
        """Weights exchange: the cloud's gradients of the last pass's modules end that pass."""
        if self.pass_ is None:
            raise ProtocolError("gradients arrived with no pass open")
        grads = torch.from_numpy(flat.copy())
        offset = 0
        for m, on in zip(self.modules, self._moving()):
            if on:
                for p in m.lora[:2]:
                    p.grad = grads[offset:offset + p.numel()].view_as(p).clone()
                    offset += p.numel()
        if offset != grads.numel():
            raise ProtocolError(f"{grads.numel()} gradient values for {offset} weights")
        self._end_pass()

    def _end_pass(self) -> None:
        p = self.pass_
        if p.kind == "probe":
            self.probe_grads = grad_norms(self.modules)
            self._drop_pass()
            return
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.pass_ = None
        self.losses.append(p.loss)
        self._journal({"step": self.step, "attempt": self.attempt, "loss": p.loss})
        self.step += 1
        self.checkpoint_due = self.step % self.job.checkpoint_every == 0 or self.step == self.job.steps

    def after_answer(self) -> None:
        """Checkpoint once the answer that ended a step is on its way (it overlaps the cloud's work)."""
        if self.checkpoint_due:
            self.checkpoint_due = False
            self._checkpoint()

    def _drop_pass(self) -> None:
        """Forget the pass in flight: no gradient of it survives, killed modules are frozen again."""
        self.pass_ = None
        self.optimizer.zero_grad(set_to_none=True)
        for m, on in zip(self.modules, self.controller.active):
            for p in m.params:
                p.requires_grad_(bool(on))

    def _finish(self) -> None:
        weights = {name: p.detach().numpy() for name, p in self.trainable.items()}
        buffer = io.BytesIO()
        np.savez(buffer, **weights)
        atomic_write_bytes(self.workdir / WEIGHTS, buffer.getvalue())


def run(job: LiveJob, address: str, workdir: Path, idle_timeout_s: float, open_timeout_s: float,
        delay_s: float, limit: int) -> None:
    """Train ``job`` as the edge of a live run until the cloud has every step."""
    workdir.mkdir(parents=True, exist_ok=True)
    edge = Edge(job, workdir)
    channel = EdgeChannel(address, edge.session, idle_timeout_s=idle_timeout_s, limit=limit, delay_s=delay_s)
    try:
        while True:
            channel.open(edge.attempt, edge.step, edge.hello_arrays(), open_timeout_s)
            try:
                channel.serve(edge.handle, edge.after_answer)
                break
            except PeerLost as lost:
                log.warning("edge: %s; opening the session again", lost)
                edge.next_attempt()
    finally:
        channel.close()
    atomic_write_json(workdir / RESULT, {
        "session": edge.session, "attempt": edge.attempt, "losses": edge.losses, "rounds": edge.rounds,
        "busy": edge.busy, "traffic": dataclasses.asdict(channel.traffic),
    })


def main(argv: list[str] | None = None) -> int:
    """``python -m dlora_sim.live.edge --job JOB --connect ADDR --workdir DIR``."""
    parser = argparse.ArgumentParser(prog="dlora_sim.live.edge", description="The edge process of a live DLoRA run.")
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--connect", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--idle-timeout", type=float, default=30.0)
    parser.add_argument("--open-timeout", type=float, default=60.0)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="emulated one-way delay of every received message")
    parser.add_argument("--limit", type=int, default=None, help="most bytes of one message")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s edge %(levelname)s %(message)s")
    torch.set_num_threads(1)
    from dlora_sim.live.wire import MAX_MESSAGE_BYTES

    try:
        run(LiveJob.load(args.job), args.connect, args.workdir, args.idle_timeout, args.open_timeout,
            args.delay_ms / 1000.0, args.limit or MAX_MESSAGE_BYTES)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except PeerLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
