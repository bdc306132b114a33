"""From a federated run to its result file: run it, price its rounds, assemble the record.

The clerk of the federated experiments, as :mod:`~dlora_sim.profiling.runner` is of the
single-user ones: it runs :func:`~dlora_sim.profiling.federated.run_federated`, asks the cost
model what one user's round moves over the link (``fed-lora``'s sync exchange for the same
model, LoRA and round length; never re-derived here, so the record and the priced comparison
cannot disagree) and fills in :class:`dlora_sim.fed_record.FedRecord`, which validates it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from dlora_sim.cost import JobSpec, PeftSpec, get_strategy, job_totals, sync_rounds
from dlora_sim.fed_record import KIND, SCHEMA_VERSION, FedCost, FedPeft, FedRecord, FedResult, FedSetup, FedSplit
from dlora_sim.fed_record import save_fed_record
from dlora_sim.profiling.federated import GENERIC_TARGETS, FedConfig, FedRun, RoundReport, timed_run
from dlora_sim.profiling.runner import hardware, library_versions

STRATEGY = "fed-lora"


def cost_job(config: FedConfig, dtype_bytes: int) -> JobSpec:
    """The cost model's job for one user of ``config``: MiniLM-L6, the same LoRA, E-step rounds.

    ``budget`` is 1 because JobSpec requires one; ``fed-lora`` runs no Kill-and-Revive.
    """
    peft = PeftSpec("lora", rank=config.peft.rank, targets=GENERIC_TARGETS[config.peft.targets])
    return JobSpec(model="minilm-l6", peft=peft, batch=config.batch, seq_len=config.max_len,
                   steps=config.rounds * config.local_steps, budget=1, dtype_bytes=dtype_bytes,
                   fed_round_steps=config.local_steps)


def fed_cost(config: FedConfig, dtype_bytes: int) -> FedCost:
    """One user's link traffic per round and over the job, as the ``fed-lora`` strategy counts it."""
    job = cost_job(config, dtype_bytes)
    exchanges = get_strategy(STRATEGY).sync_exchanges(job)
    totals = job_totals(job, STRATEGY)
    return FedCost(strategy=STRATEGY, dtype_bytes=dtype_bytes,
                   bytes_up_per_round=float(sum(e.bytes_up for e in exchanges)),
                   bytes_down_per_round=float(sum(e.bytes_down for e in exchanges)),
                   sync_rounds=sync_rounds(job, STRATEGY),
                   job_bytes_up=float(totals["bytes_up"]), job_bytes_down=float(totals["bytes_down"]))


def build_fed_record(config: FedConfig, run: FedRun, wall_s: float, dtype_bytes: int = 4,
                     threads: int = 1, command: str | None = None) -> FedRecord:
    """Assemble (and so validate) the record of a finished run.

    ``dtype_bytes`` is what a value costs on the link; 4 by default because the run trains and
    averages float32 tensors.
    """
    split = run.split
    setup = FedSetup(
        task=config.task, model="minilm-l6", users=config.users, rounds=config.rounds,
        local_steps=config.local_steps, batch=config.batch, lr=config.lr, seed=config.seed,
        max_len=config.max_len, train_examples=run.train_examples, test_examples=run.test_examples,
        optimizer="adamw-fresh-per-round", aggregation="fedavg-sample-weighted",
        lora_params=run.lora_params, head_params=run.head_params, library_versions=library_versions(),
        hardware=hardware(threads), command=command)
    peft = FedPeft(method="lora", rank=config.peft.rank, alpha=config.peft.alpha,
                   targets=list(GENERIC_TARGETS[config.peft.targets]))
    fed_split = FedSplit(method="dirichlet", alpha=config.alpha, seed=config.seed, user_examples=split.sizes,
                         user_label_counts=split.label_counts(), label_skew=split.label_skew())
    result = FedResult(test_accuracy=run.test_accuracy, round_accuracy=run.round_accuracy,
                       round_loss=[[float(np.mean(user)) for user in users] for users in run.step_loss],
                       test_predictions=run.test_predictions, wall_s=wall_s)
    return FedRecord(kind=KIND, schema_version=SCHEMA_VERSION, setup=setup, peft=peft, split=fed_split,
                     cost=fed_cost(config, dtype_bytes), result=result)


def run_fed_record(config: FedConfig, output: str | Path | None = None, dtype_bytes: int = 4, threads: int = 1,
                   command: str | None = None,
                   on_round: Callable[[RoundReport], None] | None = None) -> FedRecord:
    """Run ``config`` and return (and, given ``output``, atomically write) its record.

    The cost is priced before training, so a job the cost model refuses fails in a second, not
    after an hour of training.
    """
    fed_cost(config, dtype_bytes)
    run, wall_s = timed_run(config, threads, on_round)
    record = build_fed_record(config, run, wall_s, dtype_bytes, threads, command)
    if output is not None:
        save_fed_record(record, output)
    return record
