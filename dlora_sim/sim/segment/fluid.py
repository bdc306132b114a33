"""Who gets how much of a saturated GPU pool or shared link: max-min fair rates, vectorised.

Between two state changes the segment engine needs, for every working device, how fast it may
go. Each device does *units* of work (a stretch of training steps, or a session set-up) that
take ``1 / upper`` seconds on its own and use ``demand[r]`` of each shared resource ``r`` (GPU
seconds on the pool, bytes on a link direction). Rates ``x`` (units per second) are max-min
fair: raise every device's rate together, freeze those a resource runs out for at that
resource's level, keep raising the rest (progressive filling, as in Bertsekas & Gallager,
*Data Networks*, §6.5). Equal *rates* are what the step engine's queues give a closed loop of
devices: a FIFO GPU queue serves every waiting user once per turn, and a fairly shared link
gives flows of the same size the same speed. A device no resource holds back keeps its own
speed (rate = ``upper``), so an uncontended fleet runs exactly as alone.

Sums of products are written ``(x * y).sum()``, not ``np.dot``: on vectors ``np.dot`` calls
multi-threaded BLAS, whose threads spin-wait and run a thousand times slower on a machine whose
cores are busy with other work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Resource", "fair_rates"]


@dataclass(frozen=True)
class Resource:
    """One shared resource: the positions (into the rate arrays) of its users, what one unit of
    each user's work takes of it, and how much of it there is per second."""

    users: np.ndarray
    demand: np.ndarray
    capacity: float


def _level(upper: np.ndarray, demand: np.ndarray, room: float) -> float:
    """The rate ``L`` at which ``sum(demand * min(upper, L)) == room`` (inf if it never does)."""
    if room <= 0.0:
        return 0.0
    if float((demand * upper).sum()) <= room:
        return np.inf
    order = np.argsort(upper, kind="stable")
    u, a = upper[order], demand[order]
    below = np.concatenate(([0.0], np.cumsum(a * u)))  # load of the k slowest at their own speed
    rest = float(a.sum()) - np.concatenate(([0.0], np.cumsum(a)))  # demand of the others
    # load if the level sits at u[k]: the k slowest at their speed, the others at u[k]
    at_breaks = below[:-1] + u * rest[:-1]
    k = int(np.searchsorted(at_breaks, room, side="left"))
    return float((room - below[k]) / rest[k]) if rest[k] > 0 else np.inf


def fair_rates(upper: np.ndarray, resources: list[Resource]) -> tuple[np.ndarray, np.ndarray]:
    """Max-min fair rates under ``resources``, and each device's bottleneck (-1: none).

    Args:
        upper: each device's own rate (units per second), > 0.
        resources: the shared resources and their users.

    Returns:
        ``(rates, bottleneck)``: rates <= upper, and the index into ``resources`` of the
        resource that holds each device back (-1 where it runs at its own speed).
    """
    rate = np.zeros_like(upper)
    bottleneck = np.full(upper.shape[0], -1, dtype=np.int64)
    frozen = np.zeros(upper.shape[0], dtype=bool)
    live = [(i, r) for i, r in enumerate(resources) if r.users.size and r.capacity < np.inf]
    while not frozen.all():
        best, best_level = -1, np.inf
        for index, res in live:
            free = ~frozen[res.users]
            if not free.any():
                continue
            used = float((res.demand[~free] * rate[res.users[~free]]).sum())
            level = _level(upper[res.users[free]], res.demand[free], res.capacity - used)
            if level < best_level:
                best, best_level = index, level
        if best < 0:
            break
        res = resources[best]
        users = res.users[~frozen[res.users]]
        rate[users] = np.minimum(upper[users], best_level)
        bottleneck[users[upper[users] > best_level]] = best
        frozen[users] = True
    rate[~frozen] = upper[~frozen]
    return rate, bottleneck
