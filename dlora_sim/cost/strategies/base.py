"""What every strategy states, and the round trip it is made of.

A *strategy* is one way to fine-tune a model between the user's device and the cloud. Each one
is a module of this folder with one :class:`Strategy` subclass that says, for a job:

- its step as an ordered list of :class:`Exchange` round trips (what each side computes and what
  crosses the link, in order) — the cost model sums it, the simulator times it, the live runtime
  would send it;
- what it downloads once before training (and after it);
- what the device and each cloud GPU must hold in memory;
- what the cloud sees (:data:`EXPOSURES`);
- which Kill-and-Revive arm, if any, it runs (the job's KR schedule then adds its rounds).

A subclass overrides :meth:`Strategy.step_exchanges` and states its class attributes; the other
methods have defaults that hold for most strategies. Adding a design is adding one module here
and one :func:`~dlora_sim.cost.strategies.register` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.models import base_backward_flops_per_token, base_forward_flops_per_token, head_flops_per_loss_token

# bytes of trainer state per trainable parameter besides the weight itself: fp32 master copy,
# AdamW m and v (4 + 4 + 4)
OPTIMIZER_STATE_BYTES_PER_PARAM = 12

#: device FLOPs per uploaded value of Gaussian noise: scale the draw by σ, add it (the draw itself
#: is integer work of the random generator, which no FLOP count includes)
NOISE_FLOPS_PER_VALUE = 2

#: what the cloud can see of a user, from most to least revealing
EXPOSURES = ("raw text", "labels", "token embeddings", "hidden states", "module weights", "module updates")


@dataclass(frozen=True)
class Exchange:
    """One round trip of a step (or, with ``round_trips=0``, purely local work).

    What each side computes and what crosses the link in one hand-over; the simulator replays it
    as: the device computes ``edge_flops`` and sends ``bytes_up``, the cloud computes
    ``cloud_flops`` and sends ``bytes_down`` (a step's exchanges run one after the other, so
    the order inside one changes no total). ``module_bytes`` is the part of the bytes that
    is per-PEFT-module traffic (what Kill-and-Revive controls); the rest is fixed per-step traffic.
    """

    name: str
    bytes_up: float
    bytes_down: float
    edge_flops: float
    cloud_flops: float
    round_trips: int = 1
    module_bytes: float = 0.0


@dataclass(frozen=True)
class StepCost:
    """Totals of one step (or of one KR probe batch); the sums of its exchanges."""

    edge_flops: float
    cloud_flops: float
    bytes_up: float
    bytes_down: float
    round_trips: int
    module_bytes: float = 0.0

    @property
    def bytes_total(self) -> float:
        return self.bytes_up + self.bytes_down

    @staticmethod
    def of(exchanges: list[Exchange]) -> StepCost:
        """Sum a list of exchanges in order."""
        return StepCost(
            edge_flops=sum(e.edge_flops for e in exchanges),
            cloud_flops=sum(e.cloud_flops for e in exchanges),
            bytes_up=sum(e.bytes_up for e in exchanges),
            bytes_down=sum(e.bytes_down for e in exchanges),
            round_trips=sum(e.round_trips for e in exchanges),
            module_bytes=sum(e.module_bytes for e in exchanges),
        )


class Strategy:
    """A way to fine-tune between device and cloud. Subclasses override :meth:`step_exchanges`.

    Class attributes a subclass states:
        name: the name scenarios and the CLI use, e.g. ``"dlora-kr"``.
        summary: one line for tables and ``--help``.
        kr_arm: the KR arm the strategy runs (``"kr"``, ``"random"``), or None: no KR rounds.
        trains_modules_in_cloud: whether the PEFT modules' weights live and train in the cloud.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    kr_arm: ClassVar[str | None] = None
    trains_modules_in_cloud: ClassVar[bool] = False

    def step_exchanges(self, job: JobSpec, n_active: int | None = None,
                       active: np.ndarray | None = None) -> list[Exchange]:
        """One steady-state training step as ordered round trips.

        Args:
            job: the job.
            n_active: active PEFT modules (strategies with KR; default: the budget).
            active: boolean mask over the module table: exactly these modules are active.
        """
        raise NotImplementedError

    def step_cost(self, job: JobSpec, n_active: int | None = None, active: np.ndarray | None = None) -> StepCost:
        """Totals of one steady-state step: the sums of :meth:`step_exchanges`."""
        return StepCost.of(self.step_exchanges(job, n_active, active))

    def default_active(self, job: JobSpec) -> int:
        """Active modules of a steady-state step (every module unless the strategy runs KR)."""
        return job.budget if self.kr_arm is not None else job.table.n_modules

    def setup_bytes_down(self, job: JobSpec) -> float:
        """What the device downloads once before training (default: nothing)."""
        return 0.0

    def final_bytes_down(self, job: JobSpec) -> float:
        """What the device downloads once after training (default: nothing)."""
        return 0.0

    def edge_weight_bytes(self, job: JobSpec) -> float:
        """Weights and trainer state the device holds (activations not counted)."""
        return self.setup_bytes_down(job) + trainable_bytes(job)

    def cloud_weight_bytes(self, job: JobSpec) -> float:
        """Frozen weights every GPU holds for this strategy (default: the blocks)."""
        return float(job.shape.block_params() * job.weight_bytes_per_param)

    def cloud_session_values_per_token(self, job: JobSpec) -> float:
        """Activation values a session keeps on a GPU per token through a step (see cost.memory)."""
        return job.shape.n_layers * kept_values_per_token_per_block(job)

    def cloud_sees(self, job: JobSpec) -> tuple[str, ...]:
        """What crosses to the cloud, as entries of :data:`EXPOSURES`."""
        raise NotImplementedError

    def sync_every(self, job: JobSpec) -> int | None:
        """Steps between the strategy's periodic exchanges (federated rounds), or None."""
        return None

    def sync_exchanges(self, job: JobSpec) -> list[Exchange]:
        """What one periodic exchange costs; it runs with every ``sync_every``-th step."""
        return []


def upload_defence_flops(job: JobSpec, tokens: float | np.ndarray) -> float | np.ndarray:
    """Device FLOPs of the job's upload defences on ``tokens`` uploaded embeddings (``d_model``
    values each): noise, :data:`NOISE_FLOPS_PER_VALUE` per value; a private rotation, one d × d
    matrix-vector product per token (2·d² FLOPs, a multiply and an add per matrix entry). The
    bytes do not change: a noisy or rotated embedding is as wide as a plain one."""
    d = job.shape.d_model
    noise = NOISE_FLOPS_PER_VALUE * d if job.upload_noise > 0 else 0
    rotation = 2 * d * d if job.upload_rotation else 0
    return tokens * float(noise + rotation)


def trainable_bytes(job: JobSpec) -> float:
    """Every PEFT module's weights and AdamW state, wherever they train."""
    return float(job.table.params.sum()) * (job.dtype_bytes + OPTIMIZER_STATE_BYTES_PER_PARAM)


def kept_values_per_token_per_block(job: JobSpec) -> float:
    """Values a frozen block keeps per token for its backward (inputs of its norms, Q, K, V, the
    attention output, the FFN activation's inputs); docs/cost.md, "Cloud memory"."""
    s = job.shape
    ffn = 2 * s.d_ff if s.ffn == "swiglu" else s.d_ff
    return 6.0 * s.d_model + ffn


def whole_step_flops(job: JobSpec) -> float:
    """FLOPs of one whole training step on one machine (cloud-only, edge-only, a federated
    client): the frozen model forward and backward, every PEFT module training, the head, the
    optimizer."""
    t, s = job.table, job.shape
    head_f, head_b = head_flops_per_loss_token(s, job.head_out_dim)
    per_token = (base_forward_flops_per_token(s, job.seq_len) + base_backward_flops_per_token(s, job.seq_len)
                 + float(np.sum(t.fwd_flops_per_token + t.bwd_flops_per_token)))
    return (job.tokens * per_token + job.loss_tokens * (head_f + head_b)
            + job.optimizer_flops_per_param * float(np.sum(t.params)))
