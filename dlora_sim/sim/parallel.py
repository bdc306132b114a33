"""Strategies side by side in worker processes: ``run.workers``.

The strategies of a scenario are independent once the fleet is built: each gets a fresh world
(its own GPU pool, links and queue), and every random draw it makes comes from a stream keyed by
the seed, the group and what it is for (:mod:`dlora_sim.sim.fleet`), never from a generator that
another strategy advanced. So they can run at the same time in separate processes and give
byte-identical results to running them one after another; on a machine with two cores a
four-strategy fleet takes about half the wall time.

How the workers start matters. *Forking* copies the caller as it is, and needs nothing of it
but that no other thread holds a lock at that moment, so the workers are forked, all at once,
before anything else starts (the progress bar's refresh thread starts after them), whenever the
caller runs a single thread. A caller with threads of its own (a Dask worker's, a GUI's) gets
*spawned* workers instead, which start clean but re-import the caller's main module: a script
then needs the usual ``if __name__ == "__main__":`` guard. Progress crosses back through a
managed queue, a message per percent of a strategy's steps.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import replace
from types import TracebackType
from typing import Any

from dlora_sim.sim.results import StrategyOutcome

__all__ = ["StrategyWorkers", "can_fork_workers"]

#: progress messages per strategy (one each time another 1 % of its device-steps is done)
PROGRESS_STEPS = 100
#: how long the parent waits for a progress message before looking at the workers again
POLL_S = 0.2

Runner = Callable[..., StrategyOutcome]


def can_fork_workers() -> bool:
    """Whether this process may start worker processes (a daemonic one, e.g. a pool's worker,
    may not)."""
    return not multiprocessing.current_process().daemon


def _start_method() -> str:
    """``fork`` where it exists and this process runs one thread, else ``spawn``."""
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return "fork"
    return "spawn"


class StrategyWorkers:
    """Every strategy of a run submitted to up to ``workers`` processes on entry.

    Enter it before starting any thread (a progress bar), then collect with :meth:`results`.
    ``runner(scenario, strategy, fleet[, on_progress])`` must be importable by name.
    """

    def __init__(self, scenario: Any, runner: Runner, fleet: Any, strategies: Sequence[str], workers: int,
                 progress: bool = False) -> None:
        self.scenario, self.runner, self.fleet = scenario, runner, fleet
        self.strategies, self.workers, self.progress = list(strategies), workers, progress
        self._stack = ExitStack()
        self._messages: Any = None
        self._futures: list[Future] = []

    def __enter__(self) -> StrategyWorkers:
        context = multiprocessing.get_context(_start_method())
        with ExitStack() as stack:
            if self.progress:
                self._messages = stack.enter_context(context.Manager()).Queue()
            pool = stack.enter_context(ProcessPoolExecutor(self.workers, mp_context=context))
            self._futures = [pool.submit(_run_one, self.runner, self.scenario, strategy, self.fleet, self._messages)
                             for strategy in self.strategies]
            self._stack = stack.pop_all()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if error is not None:
            for future in self._futures:
                future.cancel()
        self._stack.close()

    def results(self, on_progress: Callable[[str, float], None] | None = None) -> list[StrategyOutcome]:
        """The outcomes in the order of the strategies, each with the caller's ``fleet`` in
        place of the worker's copy (as a sequential run gives); progress to ``on_progress``.
        An error in a worker (an :class:`~dlora_sim.errors.InputError`, say) is raised here."""
        pending = set(self._futures)
        while pending:
            if self._messages is None:
                _, pending = wait(pending, return_when=FIRST_COMPLETED)
                continue
            _drain(self._messages, on_progress)
            _, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
        if self._messages is not None:
            _drain(self._messages, on_progress)
        return [replace(future.result(), devices=self.fleet) for future in self._futures]


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
