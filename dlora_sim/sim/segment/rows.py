"""A job as one table of exchanges in order, with running sums: the segment engine's route card.

The ``step`` engine walks a job exchange by exchange: before step ``s`` the KR round the job's
schedule puts there (if any), then the step, then the strategy's periodic exchange when one ends
at ``s`` (a federated round), and after the last step the final download (cloud-only). This
module writes that walk down once as rows — the same :class:`~dlora_sim.sim.work.Exchange`
values, read from the cost model through :mod:`dlora_sim.sim.work` — and keeps a running sum of
every column, so that what a device does between any two rows (FLOPs, bytes, round trips, GPU
seconds, steps committed, KR rounds) is one subtraction, and its uncontended time one dot
product with the device's speeds.

A row's own time on a device, in the order the step engine runs it::

    compute = F / flops_per_s,  half = RT * rtt / 2
    [compute][half] [U / up] [cloud wait][GPU service] [D / down][half]

where the cloud wait is the batching window a lone request sits out (``batch_window_s`` when
batches can hold more than one user) and the GPU service the roofline of a batch of one
(``svc``). On a saturated pool batches are full: a request's share of the GPU is
``svc_batched`` and it waits for the whole batch, ``svc_full``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlora_sim import cost
from dlora_sim.sim.work import Exchange, kr_round_work, step_work, sync_work

__all__ = ["ROUND", "STEP", "SYNC", "FINAL", "COLUMNS", "COLUMN", "OWN_COLUMNS", "SINCE_COLUMNS", "JobRows", "job_rows"]

ROUND, STEP, SYNC, FINAL = 0, 1, 2, 3


@dataclass(frozen=True)
class JobRows:
    """The exchanges of one job under one strategy, in order, as columns plus running sums.

    ``cum[:, COLUMN[name]][r]`` is the sum of column ``name`` over rows ``0..r-1`` (``rows + 1``
    entries). The sums are one 2-D array, row-major, so that what a device did between two rows
    is one gather of a whole row per device (:meth:`between_all`) rather than one per column.
    """

    kind: np.ndarray  # ROUND / STEP / SYNC / FINAL
    step: np.ndarray  # the step a row belongs to (the final row: total_steps)
    first_row: np.ndarray  # first row of each step 0..total_steps (total_steps: the final row or the end)
    commit_row: np.ndarray  # the row whose end commits step s (its step row, or its sync row)
    cum: np.ndarray  # (rows + 1, len(COLUMNS)) running sums
    own_cum: np.ndarray  # cum's OWN_COLUMNS, contiguous: a row's own time gathers 6 numbers, not 18
    since_cum: np.ndarray  # cum's SINCE_COLUMNS, contiguous: what a rollback would lose
    total_steps: int
    checkpoint_interval: int
    n_active_at: np.ndarray  # modules active during step s (0..total_steps)
    n_modules: int

    @property
    def rows(self) -> int:
        return int(self.kind.shape[0])

    def checkpoint_for(self, next_step: np.ndarray) -> np.ndarray:
        """The last checkpoint a device whose next step is ``next_step`` holds."""
        c = (next_step // self.checkpoint_interval) * self.checkpoint_interval
        return np.where(next_step >= self.total_steps, self.total_steps, c)

    def total(self, name: str) -> float:
        """Sum of column ``name`` over the whole job."""
        return float(self.cum[-1, COLUMN[name]])

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` row by row (``rows`` entries)."""
        return np.diff(self.cum[:, COLUMN[name]])

    def between(self, name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Sum of column ``name`` over rows ``a..b-1`` (element-wise)."""
        column = self.cum[:, COLUMN[name]]
        return column[b] - column[a]

    def between_all(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Sums of every column over rows ``a..b-1``: shape ``(len(a), len(COLUMNS))``."""
        return self.cum[b] - self.cum[a]


COLUMNS = ("F", "RT", "U", "D", "svc", "window", "C", "svc_batched", "svc_full", "requests",
           "commits", "rounds", "probes", "kills", "revives", "kr_up", "steady", "steady_bytes")
COLUMN = {name: j for j, name in enumerate(COLUMNS)}
OWN_COLUMNS = 6  # F, RT, U, D, svc, window: the first columns, what a row's own time is made of
#: what work since the last checkpoint is made of (FLOPs, bytes, GPU seconds either way), in
#: the order of ``JobRows.since_cum``
SINCE_COLUMNS = ("F", "U", "D", "svc", "svc_batched")


def job_rows(job: Any, strategy: str, scenario: Any) -> JobRows:
    """The job's rows under ``strategy`` with the scenario's GPU, batching and checkpoints."""
    cloud, gpu = scenario.cloud, scenario.cloud.gpu_spec
    flops_per_s, hbm = gpu.flops_per_s, gpu.memory_bandwidth_bytes_per_s
    max_batch, window_s = int(cloud.batch_max_users), float(cloud.batch_window_s)
    plan = cost.get_strategy(strategy)
    schedule = cost.kr_schedule(job, strategy)
    total = int(scenario.job.total_steps)
    n_modules = int(schedule.n_modules)
    every = plan.sync_every(job)
    sync = sync_work(job, strategy)
    final_bytes = float(plan.final_bytes_down(job))
    rounds = {r.after_step + 1: r for r in schedule.rounds}
    steady_active = schedule.rounds[-1].n_active if schedule.rounds else n_modules

    n_active_at = np.full(total + 1, n_modules, dtype=np.int64)
    for r in schedule.rounds:  # a round after step a sets the active count from step a + 1 on
        n_active_at[r.after_step + 1:] = r.n_active

    records: list[tuple[int, int, Exchange, Any]] = []
    first_row = np.zeros(total + 1, dtype=np.int64)
    commit_row = np.zeros(max(total, 1), dtype=np.int64)
    for s in range(total):
        first_row[s] = len(records)
        kr_round = rounds.get(s)
        if kr_round is not None:
            records.append((ROUND, s, kr_round_work(job, kr_round).total, kr_round))
        n_active = int(n_active_at[s])
        records.append((STEP, s, step_work(job, strategy, None if plan.kr_arm is None else n_active).total, n_active))
        if every and (s + 1) % every == 0 and sync is not None:
            records.append((SYNC, s, sync.total, n_active))
        commit_row[s] = len(records) - 1
    first_row[total] = len(records)
    if final_bytes > 0:
        records.append((FINAL, total, Exchange(0.0, 0.0, 0.0, 0.0, final_bytes, 1), None))

    n = len(records)
    col = {name: np.zeros(n) for name in COLUMNS}
    kind = np.zeros(n, dtype=np.int64)
    step = np.zeros(n, dtype=np.int64)
    for i, (k, s, e, extra) in enumerate(records):
        kind[i], step[i] = k, s
        col["F"][i], col["U"][i], col["C"][i], col["D"][i], col["RT"][i] = (
            e.edge_flops, e.up_bytes, e.cloud_flops, e.down_bytes, e.round_trips)
        if e.cloud_flops > 0:
            col["svc"][i] = max(e.cloud_flops / flops_per_s, e.weight_bytes / hbm)
            col["svc_batched"][i] = max(e.cloud_flops / flops_per_s, e.weight_bytes / hbm / max_batch)
            col["svc_full"][i] = max(max_batch * e.cloud_flops / flops_per_s, e.weight_bytes / hbm)
            col["window"][i] = window_s if max_batch > 1 else 0.0
            col["requests"][i] = 1.0
        if k == ROUND:
            col["rounds"][i] = 1.0
            col["probes"][i] = float(extra.probe)
            col["kills"][i] = float(extra.kills)
            col["revives"][i] = float(extra.revives)
            col["kr_up"][i] = e.up_bytes
    for s in range(total):
        last = commit_row[s]
        col["commits"][last] = 1.0
        if records[last][3] == steady_active:  # booked at the commit, as the step engine counts it
            first = last - 1 if kind[last] == SYNC else last
            col["steady"][last] = 1.0
            col["steady_bytes"][last] = col["U"][first:last + 1].sum() + col["D"][first:last + 1].sum()
    table = np.stack([col[name] for name in COLUMNS], axis=1)
    cum = np.concatenate((np.zeros((1, len(COLUMNS))), np.cumsum(table, axis=0)))
    return JobRows(kind=kind, step=step, first_row=first_row, commit_row=commit_row, cum=cum,
                   own_cum=np.ascontiguousarray(cum[:, :OWN_COLUMNS]),
                   since_cum=np.ascontiguousarray(cum[:, [COLUMN[name] for name in SINCE_COLUMNS]]),
                   total_steps=total, checkpoint_interval=int(scenario.scheduler.checkpoint_interval_steps),
                   n_active_at=n_active_at, n_modules=n_modules)
