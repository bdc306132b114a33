"""The committed WordNet tasks: shapes, labels, seeded batches, and a reproducible build."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _needs import need

from dlora_sim.errors import InputError
from dlora_sim.profiling.tasks import batch_indices, load_task, task_index, task_names

ROOT = Path(__file__).resolve().parent.parent
TASK_DIR = ROOT / "dlora_sim" / "data" / "tasks"


def test_three_tasks_with_the_promised_class_counts():
    """noun-supersense has 26 classes, verb-supersense 15, definition-mc 4 choices."""
    index = task_index()
    assert task_names() == ["definition-mc", "noun-supersense", "verb-supersense"]
    assert len(index["noun-supersense"]["labels"]) == 26
    assert len(index["verb-supersense"]["labels"]) == 15
    assert index["definition-mc"]["kind"] == "multiple-choice"


@pytest.mark.parametrize("name", ["noun-supersense", "verb-supersense", "definition-mc"])
def test_splits_are_disjoint_and_labels_in_range(name):
    """Every split is non-empty, labels index the label list, and no gloss sits in two splits."""
    splits = {s: load_task(name, s) for s in ("train", "dev", "test")}
    for data in splits.values():
        assert len(data) > 0
        assert data.labels.min() >= 0 and data.labels.max() < data.n_classes
    key = (lambda d, i: (d.texts[i], d.choices[i])) if name == "definition-mc" else (lambda d, i: (d.texts[i], d.labels[i]))
    train = {key(splits["train"], i) for i in range(len(splits["train"]))}
    test = {key(splits["test"], i) for i in range(len(splits["test"]))}
    assert len(train & test) <= 0.01 * len(test)  # WordNet repeats a few glosses verbatim


def test_multiple_choice_has_four_distinct_choices_and_no_giveaway():
    """Each question has 4 different words and the gloss does not contain the answer."""
    data = load_task("definition-mc", "dev")
    for text, choices, label in zip(data.texts, data.choices, data.labels):
        assert len(set(choices)) == 4
        assert choices[label].lower() not in text.lower()


def test_bad_task_and_split_are_input_errors():
    """Unknown names raise InputError listing the allowed values."""
    with pytest.raises(InputError, match="allowed: definition-mc"):
        load_task("nope", "train")
    with pytest.raises(InputError, match="allowed: train, dev, test"):
        load_task("noun-supersense", "validation")


def test_batches_depend_only_on_the_seed():
    """Same seed, same batches (so arms train on identical data); another seed differs."""
    a = batch_indices(100, 16, 20, seed=3)
    b = batch_indices(100, 16, 20, seed=3)
    c = batch_indices(100, 16, 20, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert all(len(x) == 16 and len(set(x)) == 16 for x in a)


def test_build_script_reproduces_the_committed_files(tmp_path):
    """Rebuilding from WordNet with the default seed gives byte-identical task files."""
    need(Path("/usr/share/wordnet/data.noun").exists(), "WordNet 3.0 not installed (Debian: wordnet-base)")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_wordnet_tasks.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("noun-supersense", "verb-supersense", "definition-mc"):
        rebuilt = gzip.decompress((tmp_path / f"{name}.jsonl.gz").read_bytes())
        committed = gzip.decompress((TASK_DIR / f"{name}.jsonl.gz").read_bytes())
        assert rebuilt == committed
