"""Strategies side by side in worker processes: ``run.workers``.

The strategies of a scenario are independent once the fleet is built: each gets a fresh world
(its own GPU pool, links and queue), and every random draw it makes comes from a stream keyed by
the seed, the group and what it is for (:mod:`dlora_sim.sim.fleet`), never from a generator that
another strategy advanced. So they can run at the same time in separate processes and give
byte-identical results to running them one after another; on a machine with two cores a
four-strategy fleet takes about half the wall time.

Workers are *spawned*, not forked: the caller may hold threads (a progress bar's refresh
thread, a Dask worker's), and a forked child inherits their locks in whatever state they were.
Progress crosses back through a managed queue, a message per percent of a strategy's steps.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Any

from dlora_sim.sim.results import StrategyOutcome

__all__ = ["can_fork_workers", "run_in_workers"]

#: progress messages per strategy (one each time another 1 % of its device-steps is done)
PROGRESS_STEPS = 100
#: how long the parent waits for a progress message before looking at the workers again
POLL_S = 0.2

Runner = Callable[..., StrategyOutcome]


def can_fork_workers() -> bool:
    """Whether this process may start worker processes (a daemonic one, e.g. a pool's worker,
    may not)."""
    return not multiprocessing.current_process().daemon


def run_in_workers(scenario: Any, runner: Runner, fleet: Any, strategies: Sequence[str], workers: int,
                   on_progress: Callable[[str, float], None] | None = None) -> list[StrategyOutcome]:
    """Run ``runner(scenario, strategy, fleet, on_progress)`` for every strategy in up to
    ``workers`` processes; the outcomes in the order of ``strategies``.

    ``runner`` must be importable by name (a module-level function). Each outcome comes back
    with the caller's ``fleet`` object in place of the worker's copy, as a sequential run gives.
    An error in a worker (an :class:`~dlora_sim.errors.InputError`, say) is raised here.
    """
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
        messages = manager.Queue() if on_progress else None
        futures: list[Future] = [pool.submit(_run_one, runner, scenario, strategy, fleet, messages)
                                 for strategy in strategies]
        pending = set(futures)
        while pending:
            if messages is None:
                _, pending = wait(pending, return_when=FIRST_COMPLETED)
                continue
            _drain(messages, on_progress)
            _, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
        if messages is not None:
            _drain(messages, on_progress)
        return [replace(future.result(), devices=fleet) for future in futures]


def _drain(messages: Any, on_progress: Callable[[str, float], None] | None) -> None:
    """Hand every waiting progress message to ``on_progress``."""
    while True:
        try:
            strategy, done = messages.get(timeout=POLL_S / 4)
        except queue_module.Empty:
            return
        if on_progress is not None:
            on_progress(strategy, done)


def _run_one(runner: Runner, scenario: Any, strategy: str, fleet: Any, messages: Any) -> StrategyOutcome:
    """One strategy in a worker; progress to ``messages`` at most :data:`PROGRESS_STEPS` times."""
    if messages is None:
        return runner(scenario, strategy, fleet)
    total = float(len(fleet) * scenario.job.total_steps) or 1.0
    sent = [-1]

    def report(done: float) -> None:
        mark = int(PROGRESS_STEPS * done / total)
        if mark > sent[0]:
            sent[0] = mark
            messages.put((strategy, float(done)))

    return runner(scenario, strategy, fleet, report)
