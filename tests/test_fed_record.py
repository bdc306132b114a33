"""The non-IID split, the federated result file's loader and the table (no torch needed)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from dlora_sim.cli import main
from dlora_sim.errors import InputError
from dlora_sim.fed_record import load_fed_record
from dlora_sim.profiling.fed_split import dirichlet_split
from dlora_sim.profiling.tasks import load_task


@pytest.fixture(scope="module")
def labels():
    return load_task("noun-supersense", "train").labels


# -- the split -----------------------------------------------------------------------------------


def test_split_is_deterministic_given_the_seed(labels):
    """The same seed gives the same shards; another seed other shards."""
    a, b = (dirichlet_split(labels, 26, 5, 0.1, seed=3) for _ in range(2))
    c = dirichlet_split(labels, 26, 5, 0.1, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a.shards, b.shards))
    assert not all(np.array_equal(x, y) for x, y in zip(a.shards, c.shards))


def test_split_is_a_partition_in_ascending_order(labels):
    """Every example goes to exactly one user; shards are sorted (K=1: the whole set in order)."""
    split = dirichlet_split(labels, 26, 5, 1.0, seed=0)
    together = np.concatenate(split.shards)
    assert np.array_equal(np.sort(together), np.arange(len(labels)))
    assert all(np.all(np.diff(s) > 0) for s in split.shards)
    (whole,) = dirichlet_split(labels, 26, 1, 0.1, seed=0).shards
    assert np.array_equal(whole, np.arange(len(labels)))


def _classes_for_90_percent(row: list[int]) -> int:
    """How many of a user's classes hold 90 % of its examples."""
    ordered = np.sort(row)[::-1]
    return int(np.searchsorted(np.cumsum(ordered), 0.9 * ordered.sum()) + 1)


def test_small_alpha_is_non_iid_and_large_alpha_near_iid(labels):
    """alpha 0.1: users' label mixes are far from the pooled one, a user misses many classes and
    a few classes hold most of its data; alpha 100: close to the pooled mix (only the rarest
    classes, of 2 and 7 examples, miss a user)."""
    skewed = dirichlet_split(labels, 26, 5, 0.1, seed=0)
    even = dirichlet_split(labels, 26, 5, 100.0, seed=0)
    assert skewed.label_skew() > 0.5 and even.label_skew() < 0.1
    missing = [[int(c == 0) for c in row] for row in skewed.label_counts()]
    assert np.mean(np.sum(missing, 1)) >= 5
    assert np.mean([sum(c == 0 for c in row) for row in even.label_counts()]) <= 1
    assert (max(map(_classes_for_90_percent, skewed.label_counts()))
            < min(map(_classes_for_90_percent, even.label_counts())))
    assert sum(skewed.sizes) == sum(even.sizes) == len(labels)


def test_every_user_gets_a_batch_or_the_split_is_refused(labels):
    """min_examples holds for every shard; an impossible demand is one InputError."""
    split = dirichlet_split(labels[:200], 26, 5, 0.1, seed=0, min_examples=8)
    assert min(split.sizes) >= 8
    with pytest.raises(InputError, match="need 400 training examples; the split has 200"):
        dirichlet_split(labels[:200], 26, 50, 0.1, seed=0, min_examples=8)
    with pytest.raises(InputError, match="--alpha must be a positive number"):
        dirichlet_split(labels, 26, 5, float("nan"), seed=0)


# -- the record ----------------------------------------------------------------------------------


def _record(seed: int = 0, accuracy: tuple[float, float] = (0.5, 0.625), alpha: float = 0.1) -> dict:
    """A small valid record: 2 users, 2 rounds, 3 classes, 8 test examples."""
    predictions = [0, 1, 2, 0, 1, 2, 0, 1]
    return {
        "kind": "fed-lora-result", "schema_version": 1,
        "setup": {"task": "noun-supersense", "model": "minilm-l6", "users": 2, "rounds": 2, "local_steps": 3,
                  "batch": 4, "lr": 0.001, "seed": seed, "max_len": 32, "train_examples": 40, "test_examples": 8,
                  "optimizer": "adamw-fresh-per-round", "aggregation": "fedavg-sample-weighted",
                  "lora_params": 1000, "head_params": 30, "library_versions": {"torch": "x"},
                  "hardware": None, "command": "dlora-sim fed run"},
        "peft": {"method": "lora", "rank": 4, "alpha": 16.0, "targets": ["q", "k", "v", "o"]},
        "split": {"method": "dirichlet", "alpha": alpha, "seed": seed, "user_examples": [10, 30],
                  "user_label_counts": [[10, 0, 0], [5, 15, 10]], "label_skew": 0.6},
        "cost": {"strategy": "fed-lora", "dtype_bytes": 4, "bytes_up_per_round": 4000.0,
                 "bytes_down_per_round": 4000.0, "sync_rounds": 2, "job_bytes_up": 8000.0, "job_bytes_down": 9e6},
        "result": {"test_accuracy": accuracy[-1], "round_accuracy": list(accuracy),
                   "round_loss": [[1.0, 2.0], [0.5, 1.5]], "test_predictions": predictions, "wall_s": 60.0},
    }


def _write(path, record) -> None:
    path.write_text(json.dumps(record))


def test_a_valid_record_loads(tmp_path):
    _write(tmp_path / "r.json", _record())
    record = load_fed_record(tmp_path / "r.json")
    assert record.split.user_examples == [10, 30] and record.result.test_accuracy == 0.625


def _set(record: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(record)
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is _DROP:
        del node[last]
    else:
        node[last] = value
    return out


_DROP = object()


@pytest.mark.parametrize("dotted,value,needle", [
    ("setup.users", _DROP, "setup.users: Field required"),
    ("setup.users", "2", "setup.users: Input should be a valid integer"),
    ("setup.rounds", 3, "result.round_accuracy has 2 entries, setup.rounds is 3"),
    ("result.test_accuracy", 0.5, "is not the last round's accuracy"),
    ("result.round_accuracy", [0.5, 1.5], "result.round_accuracy[1]: Input should be less than or equal to 1"),
    ("split.user_label_counts", [[10, 0, 0], [5, 15, 9]], "user_label_counts[1] sums to 29, user_examples[1] is 30"),
    ("result.test_predictions", [0] * 7, "result.test_predictions has 7 entries, setup.test_examples is 8"),
    ("result.test_predictions", [3] * 8, "class 3 is not one of the 3"),
    ("cost.strategy", "dlora-kr", "cost.strategy: Input should be 'fed-lora'"),
    ("setup.extra", 1, "setup.extra: Extra inputs are not permitted"),
    ("kind", "profile", "kind is 'profile', not 'fed-lora-result'"),
    ("schema_version", True, "schema_version is True"),
])
def test_a_damaged_record_is_one_line_naming_file_and_field(tmp_path, dotted, value, needle):
    path = tmp_path / "bad.json"
    _write(path, _set(_record(), dotted, value))
    with pytest.raises(InputError) as error:
        load_fed_record(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and needle in message and "\n" not in message


@pytest.mark.parametrize("text,needle", [
    ('{"kind": "fed-lora-result", "setup": {', "file looks truncated"),
    ("[1, 2]", "must be a JSON object, got list"),
    ('{"kind": ' + "[" * 100 + "]" * 100 + "}", "bad.json: kind.0.0...: nested more than 32 levels deep"),
])
def test_unreadable_files_are_one_line(tmp_path, text, needle):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_fed_record(path)
    with pytest.raises(InputError, match="no such federated result file"):
        load_fed_record(tmp_path / "missing.json")


# -- the table -----------------------------------------------------------------------------------


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code, capsys.readouterr()


def test_table_groups_seeds_and_writes_between_markers(tmp_path, capsys):
    """Two seeds of one set-up make one row (mean [min–max], the round curve); another alpha
    another row; the rest of the README is kept."""
    folder = tmp_path / "fed"
    folder.mkdir()
    _write(folder / "a-s0.json", _record(0, (0.5, 0.625)))
    _write(folder / "a-s1.json", _record(1, (0.25, 0.375)))
    _write(folder / "b-s0.json", _record(0, (0.75, 0.875), alpha=100.0))
    readme = folder / "README.md"
    readme.write_text("# Mine\n\nprose kept\n")
    code, captured = _cli(["fed", "table", str(folder), "--write", str(readme)], capsys)
    assert code == 0, captured.err
    text = readme.read_text()
    assert text.startswith("# Mine\n\nprose kept\n") and text.count("<!-- table:start -->") == 1
    assert "| noun-supersense | 2 | 0.1 | 0.60 | 2 × 3 | 2 | 50.0 [37.5–62.5] | 37.5 / 50.0 | - | 0.00 | 0.0 | 1 |" in text
    assert "| noun-supersense | 2 | 100 | 0.60 | 2 × 3 | 1 | 87.5 [87.5–87.5] |" in text
    assert f"Generated by `dlora-sim fed table {folder.as_posix()} --write {readme.as_posix()}`" in text


def test_table_refuses_a_damaged_file_with_one_line(tmp_path, capsys):
    folder = tmp_path / "fed"
    folder.mkdir()
    _write(folder / "a.json", _set(_record(), "setup.batch", 0))
    code, captured = _cli(["fed", "table", str(folder)], capsys)
    assert code == 1 and captured.err.count("\n") == 1
    assert f"{folder / 'a.json'}: setup.batch: Input should be greater than 0" in captured.err


def test_table_compares_with_single_user_profiles_on_the_same_test_examples(tmp_path, capsys):
    """--baseline: the row's mean minus the single-user mean, in points, and a reference line;
    a record scored on other test examples gets '-'; a KR profile is refused."""
    import pathlib

    profiles = pathlib.Path(__file__).resolve().parents[1] / "profiles"
    baselines = [profiles / f"noun-supersense-lora-all-b3-s{s}.json" for s in (0, 1)]
    folder = tmp_path / "fed"
    folder.mkdir()
    same = _set(_set(_record(), "setup.test_examples", 600), "result.test_predictions", [0] * 600)
    _write(folder / "a.json", same)
    _write(folder / "b.json", _record(alpha=100.0))  # 8 test examples: not comparable
    readme = tmp_path / "README.md"
    argv = ["fed", "table", str(folder), *(x for b in baselines for x in ("--baseline", str(b))), "--write", str(readme)]
    code, captured = _cli(argv, capsys)
    assert code == 0, captured.err
    text = readme.read_text()
    assert "| 62.5 [62.5–62.5] | 50.0 / 62.5 | -8.6 |" in text  # 62.5 − mean(70.83, 71.33)
    assert "| 62.5 [62.5–62.5] | 50.0 / 62.5 | - |" in text
    assert "Single-user reference, noun-supersense: 71.1 [70.8–71.3] % over 2 seeds" in text
    code, captured = _cli(["fed", "table", str(folder), "--baseline", str(profiles / "noun-supersense-lora-kr-b3-s0.json")],
                          capsys)
    assert code == 1 and "--baseline needs an arm 'all' LoRA profile, got arm 'kr'" in captured.err
