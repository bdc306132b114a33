"""DLoRA: the device holds the data, the embedding, the PEFT modules and the head; the cloud the blocks.

One module, three strategies: ``dlora-all`` (every module trains), ``dlora-kr`` (Kill-and-Revive keeps
B modules trainable) and ``dlora-random`` (B modules re-drawn at random every round: the control).
The step, as docs/cost.md ("The DLoRA step") states it:

Picture a relay race between the cloud and the device: the cloud runs the frozen blocks until it
reaches a PEFT module that trains, hands the baton (the module's input) down, the device runs
its small module and hands the result back up. Every hand-over costs bytes and a round trip.

Each :class:`Exchange` is one round trip, always in the same order: the cloud computes
``cloud_flops``, sends ``bytes_down``; the device computes ``edge_flops``, sends ``bytes_up``.
One step (``activations`` exchange, head on the edge) is:

1. ``start``: the cloud asks for the next batch (it schedules users, so it pulls). Its compute is
   the tail of the previous step's backward; the device steps its optimizer, embeds the batch,
   applies its upload defences (noise, a private rotation: ``upload_defence_flops``) and uploads
   the embeddings (``b T d`` values).
2. ``fwd:<module>`` per forward-running module: input down (``b T d_in``), output delta up
   (``b T d_out``).
3. ``head``: final hidden states of the loss tokens down, their gradient up (``b L d`` each).
4. ``bwd:<module>`` per active module, in reverse: output gradient down (``b T d_out``), input
   gradient up (``b T d_in``).

Killed modules: ``offload`` -> the cloud applies its frozen copy (cloud FLOPs only);
``edge-forward`` -> a ``fwd`` exchange and no ``bwd`` (the gradient through the frozen module is
dropped). The ``weights`` exchange replaces 2-4 with the active modules' weights going up in
``start`` and their gradients coming down in the next ``start`` (plus the ``head`` round trip
when the head is on the device).

The cloud's frozen work is spread evenly over the exchanges that precede each hand-over (one
forward slot per forward exchange + one after the last module; one backward slot per backward
exchange + the tail below the lowest module, which lands in ``start``). Sums are exact; the
split only shapes a single step's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.models import (
    base_backward_flops_per_token,
    base_forward_flops_per_token,
    head_flops_per_loss_token,
)
from dlora_sim.cost.strategies.base import Exchange, Strategy, upload_defence_flops
from dlora_sim.kr import KRRound


@dataclass(frozen=True)
class _Mod:
    """One module's per-token numbers (or the mean module when no active set is given)."""

    name: str
    index: int  # row in the module table; -1 for the mean module
    group: int  # input group in the module table; -1 for the mean module (shares with none)
    d_in: float
    d_out: float
    params: float
    fwd: float
    bwd: float
    bwd_input: float


def _modules(job: JobSpec, n_active: int, active: np.ndarray | None) -> tuple[list[_Mod], list[_Mod]]:
    """(active modules, killed modules) of a steady-state step, table order."""
    t = job.table
    if active is not None:
        mask = np.asarray(active, dtype=bool)
        if mask.shape != (t.n_modules,):
            raise ValueError(f"active mask has shape {mask.shape}, expected ({t.n_modules},)")
        rows = _rows(job)
        return [r for r, a in zip(rows, mask) if a], [r for r, a in zip(rows, mask) if not a]
    if not 0 <= n_active <= t.n_modules:
        raise ValueError(f"n_active {n_active} outside 0..{t.n_modules}")
    if n_active == t.n_modules:  # every module: exactly the table, input groups included
        return _rows(job), []
    m = t.means()
    mean = _Mod("module", -1, -1, m["d_in"], m["d_out"], m["params"], m["fwd_flops_per_token"],
                m["bwd_flops_per_token"], m["bwd_input_flops_per_token"])
    return [mean] * n_active, [mean] * (t.n_modules - n_active)


def _rows(job: JobSpec) -> list[_Mod]:
    """Every module of the table, in table order."""
    t = job.table
    return [_Mod(t.name[i], i, int(t.input_group[i]), float(t.d_in[i]), float(t.d_out[i]), float(t.params[i]),
                 float(t.fwd_flops_per_token[i]), float(t.bwd_flops_per_token[i]),
                 float(t.bwd_input_flops_per_token[i])) for i in range(t.n_modules)]


def _input_groups(job: JobSpec, mods: list[_Mod]) -> list[list[_Mod]]:
    """``mods`` (in table order) as the messages that carry their inputs: runs of one input group
    share a message under ``share_inputs``; the mean module never shares."""
    out: list[list[_Mod]] = []
    for m in mods:
        if job.share_inputs and out and m.group >= 0 and out[-1][-1].group == m.group:
            out[-1].append(m)
        else:
            out.append([m])
    return out


def _dlora_exchanges(job: JobSpec, act: list[_Mod], killed: list[_Mod], samples: int,
                     optimizer: bool) -> list[Exchange]:
    s, ds = job.shape, job.dtype_bytes
    tokens, loss_tokens = samples * job.seq_len, samples * job.loss_tokens_per_sample
    head_f, head_b = head_flops_per_loss_token(s, job.head_out_dim)
    head_on_edge = job.head_placement == "edge"
    labels_up = 0.0 if head_on_edge else loss_tokens * job.token_id_bytes
    head_cloud = 0.0 if head_on_edge else loss_tokens * (head_f + head_b)
    opt = job.optimizer_flops_per_param * sum(m.params for m in act) if optimizer else 0.0
    opt += upload_defence_flops(job, tokens)  # the start exchange's edge work: optimizer, then the upload
    base_f = tokens * base_forward_flops_per_token(s, job.seq_len)
    base_b = tokens * base_backward_flops_per_token(s, job.seq_len)
    hidden = loss_tokens * s.d_model * ds
    embed = tokens * s.d_model * ds

    if job.exchange == "weights":
        # the cloud runs every module itself: active ones fully, killed ones frozen
        cloud_f = base_f + tokens * sum(m.fwd for m in act + killed)
        cloud_b = base_b + tokens * (sum(m.bwd for m in act) + sum(m.bwd_input for m in killed))
        w_up = ds * sum(m.params for m in act)
        if job.killed_policy == "edge-forward":  # the cloud holds no copy: killed weights travel too
            w_up += ds * sum(m.params for m in killed)
        g_down = ds * sum(m.params for m in act)
        if head_on_edge:
            return [
                Exchange("start", embed + w_up, g_down, opt, cloud_b, module_bytes=w_up + g_down),
                Exchange("head", hidden, hidden, loss_tokens * (head_f + head_b), cloud_f),
            ]
        return [Exchange("start", embed + labels_up + w_up, g_down, opt, cloud_f + cloud_b + head_cloud,
                         module_bytes=w_up + g_down)]

    edge_fwd_killed = killed if job.killed_policy == "edge-forward" else []
    offload = killed if job.killed_policy == "offload" else []
    fwd_mods = sorted(act + edge_fwd_killed, key=lambda m: m.index)  # table order (stable for means)
    if len(fwd_mods) == job.table.n_modules:  # every module runs forward: the table itself
        fwd_mods = _rows(job)
    fwd_groups, bwd_groups = _input_groups(job, fwd_mods), _input_groups(job, act)
    cloud_f = base_f + tokens * sum(m.fwd for m in offload)
    cloud_b = base_b + tokens * sum(m.bwd_input for m in offload)
    f_share = cloud_f / (len(fwd_groups) + 1)
    b_share = cloud_b / (len(bwd_groups) + 1)

    out = [Exchange("start", embed + labels_up, 0.0, opt, b_share)]
    for group in fwd_groups:  # the input down once, each module's output delta up
        down = tokens * group[0].d_in * ds
        up = tokens * ds * sum(m.d_out for m in group)
        out.append(Exchange("fwd:" + "+".join(m.name for m in group), up, down,
                            tokens * sum(m.fwd for m in group), f_share, module_bytes=up + down))
    if head_on_edge:
        out.append(Exchange("head", hidden, hidden, loss_tokens * (head_f + head_b), f_share))
        first_bwd_extra = 0.0
    else:
        first_bwd_extra = f_share + head_cloud  # last forward segment + head run before 1st bwd
    for j, group in enumerate(reversed(bwd_groups)):  # output gradients down, one summed input gradient up
        down = tokens * ds * sum(m.d_out for m in group)
        up = tokens * group[0].d_in * ds
        extra = first_bwd_extra if j == 0 else 0.0
        out.append(Exchange("bwd:" + "+".join(m.name for m in reversed(group)), up, down,
                            tokens * sum(m.bwd for m in group), b_share + extra, module_bytes=up + down))
    if not act and not head_on_edge:  # nothing trains on the edge: the cloud still runs its part
        out[0] = Exchange("start", embed + labels_up, 0.0, opt, b_share + first_bwd_extra)
    return out


def probe_exchanges(job: JobSpec) -> list[Exchange]:
    """KR's probe batch: forward + backward through *all* modules, killed ones included, with no
    optimizer step, on ``job.probe_samples`` samples (its bytes move the killed modules'
    activations too)."""
    act, _ = _modules(job, job.table.n_modules, None)
    return _dlora_exchanges(job, act, [], job.probe_samples, optimizer=False)


def offloaded_module_bytes(job: JobSpec) -> float:
    """Bytes of one killed module's weights that the cloud holds under ``offload`` (0 otherwise):
    uploaded at its kill, and again when a new session replaces a dropped one."""
    return float(np.mean(job.table.params)) * job.dtype_bytes if job.killed_policy == "offload" else 0.0


def kr_round_exchanges(job: JobSpec, kr_round: KRRound) -> list[Exchange]:
    """What one KR round of the job's schedule costs on top of the training steps.

    The probe batch when the round probes; then the round's own exchange: the edge computes the
    norms the round needs (2 FLOPs per value: square and add) and, when the active set changes,
    sends its decision to the cloud in one round trip, with the weights of every newly killed
    module under ``offload`` (the cloud then applies them frozen; a revival only drops the copy).
    """
    mean_params = float(np.mean(job.table.params))
    out = probe_exchanges(job) if kr_round.probe else []
    norm_flops = 2.0 * mean_params * (kr_round.norm_modules + kr_round.probe_modules)
    upload = kr_round.kills * offloaded_module_bytes(job)
    if kr_round.changes or norm_flops:
        out.append(Exchange("kr", upload, 0.0, norm_flops, 0.0, round_trips=int(kr_round.changes)))
    return out


class DLoRA(Strategy):
    """DLoRA with every PEFT module training: the baseline every saving is measured against."""

    name: ClassVar[str] = "dlora-all"
    summary: ClassVar[str] = "DLoRA, every PEFT module trains"

    def step_exchanges(self, job: JobSpec, n_active: int | None = None,
                       active: np.ndarray | None = None) -> list[Exchange]:
        act, killed = _modules(job, self.default_active(job) if n_active is None else n_active, active)
        return _dlora_exchanges(job, act, killed, job.batch, optimizer=True)

    def setup_bytes_down(self, job: JobSpec) -> float:
        """The embedding table, and the head when it runs on the device."""
        s = job.shape
        head_dim = s.vocab if job.head_out_dim is None else job.head_out_dim
        head = head_dim * s.d_model if job.head_placement == "edge" else 0
        return float((s.vocab * s.d_model + head) * job.weight_bytes_per_param)

    def cloud_sees(self, job: JobSpec) -> tuple[str, ...]:
        """Token embeddings go up, and module outputs (hidden-state deltas) and input gradients;
        ``weights`` ships the active modules and their gradients; ``offload`` the killed modules."""
        seen = ["token embeddings", "hidden states"]
        if job.head_placement == "cloud":
            seen.insert(0, "labels")
        if job.exchange == "weights" or (self.kr_arm is not None and job.killed_policy == "offload"):
            seen.append("module weights")
        if job.exchange == "weights":
            seen.append("module updates")
        return tuple(seen)


class DLoRAKillRevive(DLoRA):
    """DLoRA with Kill-and-Revive: B of the PEFT modules train, the most responsive ones."""

    name: ClassVar[str] = "dlora-kr"
    summary: ClassVar[str] = "DLoRA + Kill-and-Revive, B modules train"
    kr_arm: ClassVar[str | None] = "kr"


class DLoRARandom(DLoRA):
    """DLoRA with B modules drawn at random every KR round: the control KR has to beat."""

    name: ClassVar[str] = "dlora-random"
    summary: ClassVar[str] = "DLoRA + random B modules, re-drawn every round"
    kr_arm: ClassVar[str | None] = "random"


class DLoRAStaticRandom(DLoRA):
    """DLoRA with B modules drawn at random once, at the first decision, and kept: the control
    that separates *which* modules train from *how often the set changes*."""

    name: ClassVar[str] = "dlora-static-random"
    summary: ClassVar[str] = "DLoRA + a random B fixed for the whole run"
    kr_arm: ClassVar[str | None] = "static-random"
