"""Non-IID shards of a training set: which examples each simulated federated user holds.

Real users do not hold a uniform sample of a task: one person's notes are mostly about food,
another's about people. The standard way to simulate that (Hsu et al. 2019, "Measuring the
effects of non-identical data distribution for federated visual classification") is a
Dirichlet draw per class: class ``c`` is dealt to the users in proportions
``p_c ~ Dirichlet(alpha, ..., alpha)``. Small ``alpha`` (0.1) gives each class to one or two
users, so a user sees a handful of classes; large ``alpha`` (100) gives every user close to the
pooled label mix (near IID).

numpy only (no torch), so the split can be inspected and tested without the training stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlora_sim.errors import InputError

#: redraws allowed before giving up on a split where every user holds ``min_examples``
MAX_DRAWS = 200
#: mixed into the seed so the split's stream differs from the batch streams of the same seed
_SPLIT_STREAM = 0xFED


@dataclass(frozen=True)
class Split:
    """Every user's shard: training-set indices in ascending order.

    Ascending order matters: with one user the shard is ``0..n-1``, so its batch stream is the
    one ordinary (single-user) training draws with the same seed.
    """

    shards: tuple[np.ndarray, ...]
    n_classes: int
    labels: np.ndarray

    @property
    def sizes(self) -> list[int]:
        """Examples per user (the FedAvg weights)."""
        return [len(s) for s in self.shards]

    def label_counts(self) -> list[list[int]]:
        """users × classes: how many examples of each class every user holds."""
        return [np.bincount(self.labels[s], minlength=self.n_classes).tolist() for s in self.shards]

    def label_skew(self) -> float:
        """Mean over users of the total-variation distance between the user's label mix and the
        pooled one: 0 is IID, near 1 means users hold disjoint classes."""
        counts = np.array(self.label_counts(), dtype=float)
        pooled = counts.sum(0) / counts.sum()
        mixes = counts / counts.sum(1, keepdims=True)
        return float(np.mean(0.5 * np.abs(mixes - pooled).sum(1)))


def dirichlet_split(labels: Sequence[int] | np.ndarray, n_classes: int, users: int, alpha: float,
                    seed: int, min_examples: int = 1) -> Split:
    """Deal every class to ``users`` shards in Dirichlet(``alpha``) proportions.

    Args:
        labels: the gold class of every training example.
        n_classes: the task's class count (classes absent from ``labels`` are fine).
        users: number of simulated users (K >= 1).
        alpha: Dirichlet concentration (> 0): small is non-IID, large is near IID.
        seed: the split depends on it alone (and on the labels).
        min_examples: every user must hold at least this many examples (a user needs a full
            batch to train); draws that leave one short are redrawn from the same stream.

    Raises:
        InputError: bad arguments, or no draw in :data:`MAX_DRAWS` gives every user
            ``min_examples`` (too many users for the data, or alpha too small).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if users < 1:
        raise InputError(f"--users must be at least 1, got {users}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise InputError(f"--alpha must be a positive number, got {alpha}")
    if users * min_examples > len(labels):
        raise InputError(f"{users} users × {min_examples} examples each need {users * min_examples} "
                         f"training examples; the split has {len(labels)}")
    rng = np.random.default_rng([seed, _SPLIT_STREAM])
    by_class = [np.flatnonzero(labels == c) for c in range(n_classes)]
    for _ in range(MAX_DRAWS):
        parts: list[list[np.ndarray]] = [[] for _ in range(users)]
        for members in by_class:
            share = rng.dirichlet(np.full(users, float(alpha)))
            cuts = (np.cumsum(share)[:-1] * len(members)).astype(np.int64)
            for k, piece in enumerate(np.split(rng.permutation(members), cuts)):
                parts[k].append(piece)
        shards = tuple(np.sort(np.concatenate(p)) for p in parts)
        if min(len(s) for s in shards) >= min_examples:
            return Split(shards=shards, n_classes=n_classes, labels=labels)
    raise InputError(f"no Dirichlet(alpha={alpha}) split of {len(labels)} examples over {users} users gives "
                     f"every user {min_examples} examples in {MAX_DRAWS} draws; use fewer users or a larger alpha")
