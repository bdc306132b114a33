"""The strategies: one module each, one small interface (:class:`~.base.Strategy`), one registry.

Every part of dlora-sim reads a strategy from here and nowhere else: the cost model sums its
exchanges, the simulator replays them, the dashboards label them and list what the cloud sees.
To add a design, write its module (a :class:`~.base.Strategy` subclass) and register it below.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dlora_sim.cost.job import JobSpec
from dlora_sim.cost.strategies.base import EXPOSURES, Exchange, StepCost, Strategy
from dlora_sim.cost.strategies.cloud_only import CloudOnly
from dlora_sim.cost.strategies.dlora import (
    DLoRA,
    DLoRAKillRevive,
    DLoRARandom,
    DLoRAStaticRandom,
    kr_round_exchanges,
    offloaded_module_bytes,
    probe_exchanges,
)
from dlora_sim.cost.strategies.edge_int4 import EdgeOnlyInt4
from dlora_sim.cost.strategies.edge_only import EdgeOnly
from dlora_sim.cost.strategies.fed_lora import FedLoRA
from dlora_sim.cost.strategies.split_lora import SplitLoRA
from dlora_sim.errors import InputError
from dlora_sim.kr import KRConfig, KRSchedule, job_schedule

__all__ = [
    "BASELINE", "DLORA_STRATEGIES", "EXPOSURES", "REGISTRY", "STRATEGIES", "Exchange", "StepCost", "Strategy",
    "check_strategy", "get_strategy", "kr_round_exchanges", "kr_schedule", "offloaded_module_bytes",
    "probe_exchanges", "step_cost", "step_exchanges",
]

#: name -> strategy, in the order tables list them
REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> None:
    """Make ``strategy`` known under its name (once)."""
    if strategy.name in REGISTRY:
        raise ValueError(f"strategy {strategy.name!r} is registered twice")
    REGISTRY[strategy.name] = strategy


for _strategy in (CloudOnly(), EdgeOnly(), DLoRA(), DLoRAKillRevive(), DLoRARandom(), DLoRAStaticRandom(),
                  SplitLoRA(), FedLoRA(), EdgeOnlyInt4()):
    register(_strategy)

STRATEGIES: tuple[str, ...] = tuple(REGISTRY)
#: the DLoRA family: the device keeps the embedding, the PEFT modules and the head
DLORA_STRATEGIES: tuple[str, ...] = tuple(n for n, s in REGISTRY.items() if isinstance(s, DLoRA))
#: the paired baseline of every saving
BASELINE = "dlora-all"


def get_strategy(name: str) -> Strategy:
    """The registered strategy called ``name``.

    Raises:
        InputError: an unknown name (the message lists the allowed ones).
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}") from None


def check_strategy(name: str) -> str:
    """Return ``name`` or raise InputError listing the allowed names."""
    get_strategy(name)
    return name


def step_exchanges(job: JobSpec, strategy: str, n_active: int | None = None,
                   active: np.ndarray | None = None) -> list[Exchange]:
    """One steady-state training step of ``strategy`` as an ordered list of round trips.

    Args:
        job: the job.
        strategy: a registered name (:data:`STRATEGIES`).
        n_active: active PEFT modules (default: all for ``dlora-all``, the budget with KR);
            without ``active`` every module is the table's mean module.
        active: boolean mask over the module table: exactly these modules are active.

    Returns:
        The exchanges; their sums are :func:`step_cost`.
    """
    return get_strategy(strategy).step_exchanges(job, n_active, active)


def step_cost(job: JobSpec, strategy: str, n_active: int | None = None,
              active: np.ndarray | None = None) -> StepCost:
    """Totals of one steady-state step: exactly the sums of :func:`step_exchanges`."""
    return get_strategy(strategy).step_cost(job, n_active, active)


def kr_schedule(job: JobSpec, strategy: str) -> KRSchedule:
    """The job's KR rounds under ``strategy``: the one schedule that every part prices and replays.

    A strategy with a KR arm runs the controller's rules for it (``kr``: probe ``all``, score
    ``norm-diff``; ``random``: a fresh B every round; ``static-random``: one draw, kept) with the
    job's window
    (``kr_interval_steps``), warm-up and churn; other strategies have no rounds.
    """
    return _kr_schedule(job, get_strategy(strategy).kr_arm)


@lru_cache(maxsize=1024)
def _kr_schedule(job: JobSpec, arm: str | None) -> KRSchedule:
    n_modules = job.table.n_modules
    if arm is None:
        return KRSchedule(n_modules, job.budget, job.steps, ())
    config = KRConfig(budget=job.budget, arm=arm, window_steps=job.kr_interval_steps,  # type: ignore[arg-type]
                      warmup_rounds=job.kr_warmup_rounds)
    return job_schedule(config, n_modules, job.steps, churn=job.kr_churn if arm == "kr" else 0.0)
