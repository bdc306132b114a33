"""The committed WordNet tasks: loading a split and turning it into padded batches.

A task is like a stack of flash cards: the front is a WordNet gloss, the back is a class
(supersense tasks) or the right one of four words (``definition-mc``). The cards were cut
once by ``scripts/build_wordnet_tasks.py`` and ship inside the package, so loading needs no
WordNet and no network.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from dlora_sim.errors import InputError

SPLITS = ("train", "dev", "test")


def _task_dir() -> Any:
    return resources.files("dlora_sim") / "data" / "tasks"


def task_index() -> dict[str, dict]:
    """The committed task catalogue (kind, label names, split sizes) from ``index.json``."""
    return json.loads((_task_dir() / "index.json").read_text(encoding="utf-8"))


def task_names() -> list[str]:
    """Names of all committed tasks, sorted."""
    return sorted(task_index())


@dataclass(frozen=True)
class TaskSplit:
    """One split of a task: texts, optional 4-way choices, integer labels.

    Attributes:
        name: task name, e.g. ``noun-supersense``.
        kind: ``classification`` or ``multiple-choice``.
        label_names: class names (classification) or choice letters (multiple-choice).
        texts: the glosses.
        choices: per example the candidate words (multiple-choice only, else empty).
        labels: gold class / gold choice index per example.
    """

    name: str
    kind: str
    label_names: tuple[str, ...]
    texts: tuple[str, ...]
    choices: tuple[tuple[str, ...], ...]
    labels: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def __len__(self) -> int:
        return len(self.texts)


def load_task(name: str, split: str, limit: int | None = None) -> TaskSplit:
    """Load ``split`` of task ``name`` in its committed (already shuffled) order.

    Args:
        name: a committed task, see :func:`task_names`.
        split: ``train``, ``dev`` or ``test``.
        limit: keep only the first ``limit`` examples (tiny runs, tests).

    Raises:
        InputError: unknown task or split, or a non-positive limit.
    """
    index = task_index()
    if name not in index:
        raise InputError(f"unknown task '{name}'; allowed: {', '.join(sorted(index))}")
    if split not in SPLITS:
        raise InputError(f"unknown split '{split}'; allowed: {', '.join(SPLITS)}")
    if limit is not None and limit <= 0:
        raise InputError(f"--limit must be positive, got {limit}")
    meta = index[name]
    raw = gzip.decompress((_task_dir() / meta["file"]).read_bytes()).decode("utf-8")
    records = [r for r in map(json.loads, raw.splitlines()) if r["split"] == split]
    records = records[:limit] if limit is not None else records
    return TaskSplit(
        name=name,
        kind=meta["kind"],
        label_names=tuple(meta["labels"]),
        texts=tuple(r["text"] for r in records),
        choices=tuple(tuple(r.get("choices", ())) for r in records),
        labels=np.array([r["label"] for r in records], dtype=np.int64),
    )


def batch_indices(n_examples: int, batch: int, steps: int, seed: int) -> list[np.ndarray]:
    """Indices of ``steps`` training batches: seeded epochs of a permutation, no partial batch.

    Why: the same seed must give the same batches in every arm, so arms differ only by KR.
    """
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    order = rng.permutation(n_examples)
    pos = 0
    while len(out) < steps:
        if pos + batch > n_examples:
            order, pos = rng.permutation(n_examples), 0
        out.append(order[pos : pos + batch])
        pos += batch
    return out


def encode(tokenizer: Any, data: TaskSplit, idx: np.ndarray, max_len: int) -> dict[str, Any]:
    """Tokenize examples ``idx`` with dynamic padding (to the longest in the batch).

    Multiple-choice examples become 4 rows each, ``(choice, gloss)`` pairs, so the model scores
    every candidate and a softmax over the 4 scores picks one.
    """
    import torch

    if data.kind == "multiple-choice":
        firsts = [c for i in idx for c in data.choices[i]]
        seconds = [data.texts[i] for i in idx for _ in data.choices[i]]
        enc = tokenizer(firsts, seconds, padding=True, truncation="only_second",
                        max_length=max_len, return_tensors="pt")
    else:
        enc = tokenizer([data.texts[i] for i in idx], padding=True, truncation=True,
                        max_length=max_len, return_tensors="pt")
    enc = dict(enc)
    enc["labels"] = torch.as_tensor(data.labels[idx])
    return enc
