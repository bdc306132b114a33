"""Sweep accuracy pools only profiles trained alike (issue 16): a longer run added to the folder
must not move the pooled accuracy, and is reported as excluded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlora_sim.profile import load_profile
from dlora_sim.study.pooling import index_profiles, match_accuracy, profile_facts

PROFILES = Path(__file__).resolve().parents[1] / "profiles"
SEEDS = ["noun-supersense-lora-kr-b3-s0.json", "noun-supersense-lora-kr-b3-s1.json",
         "noun-supersense-lora-all-b3-s0.json", "noun-supersense-lora-all-b3-s1.json"]


def _longer_copy(source: Path, target: Path, steps: int, accuracy: float) -> None:
    """The same run's file as if trained for ``steps`` steps with another test accuracy (still valid)."""
    data = json.loads(source.read_text())
    old = data["setup"]["steps"]
    data["setup"]["steps"] = steps
    data["traces"]["loss"] += [data["traces"]["loss"][-1]] * (steps - old)
    if data["traces"].get("step_time_s"):
        data["traces"]["step_time_s"] += [data["traces"]["step_time_s"][-1]] * (steps - old)
    data["result"]["test_accuracy"] = accuracy
    target.write_text(json.dumps(data))
    load_profile(target)  # a valid profile, so only its setting can keep it out


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    for name in SEEDS:
        shutil.copy(PROFILES / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("strategy", ["dlora-kr", "dlora-all"])
def test_a_longer_run_does_not_move_the_pool_and_is_named(folder, strategy):
    """KR at B = 16 of 128 (the scenario's reference is the 150-step KR B = 3 profile)."""
    reference = profile_facts(folder / SEEDS[0])
    before = match_accuracy(strategy, 16, 128, reference, index_profiles(folder))
    arm = "kr" if strategy == "dlora-kr" else "all"
    extra = folder / f"noun-supersense-lora-{arm}-b3-s0-600steps.json"
    _longer_copy(folder / f"noun-supersense-lora-{arm}-b3-s0.json", extra, 600, 0.99)
    after = match_accuracy(strategy, 16, 128, reference, index_profiles(folder))
    assert before.n == 2 and before.excluded == ()
    assert after.accuracy == before.accuracy
    assert after.used == before.used
    assert after.excluded == (str(extra),)


def test_without_the_setting_rule_the_longer_run_would_move_it(folder):
    """The check above can fail: the added file does match task, PEFT, arm and budget."""
    extra = folder / "noun-supersense-lora-kr-b3-s0-600steps.json"
    _longer_copy(folder / SEEDS[0], extra, 600, 0.99)
    reference = profile_facts(extra)  # a scenario naming the longer run pools it alone
    match = match_accuracy("dlora-kr", 16, 128, reference, index_profiles(folder))
    assert match.used == (str(extra),) and match.accuracy == 0.99
    assert len(match.excluded) == 2


def test_sweep_table_and_page_name_the_pool_and_the_excluded(folder, tmp_path):
    """A real one-point sweep: a longer run added afterwards leaves the table's accuracy as it was,
    and the table and the sweep page name it as left out."""
    pytest.importorskip("distributed")
    import pyarrow.parquet as pq

    from dlora_sim.report.dashboard import build_dashboard
    from dlora_sim.sweep import load_spec, run_sweep
    from dlora_sim.sweep_table import build_table
    from test_sweep_run import tiny_sweep

    spec_path = tiny_sweep(tmp_path / "in", budgets=(3,), counts=(2,))
    base = tmp_path / "in" / "tiny.toml"
    text = base.read_text()
    start = text.index('profile = "') + len('profile = "')
    base.write_text(text[:start] + str(folder / SEEDS[0]) + text[text.index('"', start):])
    spec_path.write_text(f'profiles = "{folder}"\n' + spec_path.read_text())
    spec = load_spec(spec_path)
    outcome = run_sweep(spec, tmp_path / "out", n_workers=1, progress=False)
    assert outcome.failures == []
    before = {r["strategy"]: r for r in pq.read_table(outcome.table_path).to_pylist()}
    assert before["dlora-kr"]["accuracy_used"] == ", ".join(SEEDS[:2])
    _longer_copy(folder / SEEDS[0], folder / "kr-600steps.json", 600, 0.99)
    after = {r["strategy"]: r for r in pq.read_table(build_table(spec, tmp_path / "out")).to_pylist()}
    assert after["dlora-kr"]["accuracy"] == before["dlora-kr"]["accuracy"]
    assert after["dlora-kr"]["accuracy_excluded"] == "kr-600steps.json"
    page = build_dashboard(tmp_path / "out", tmp_path / "sweep.html").read_text(encoding="utf-8")
    assert "left out (trained otherwise)</td><td>kr-600steps.json" in page


def _defended_copy(source: Path, target: Path, defence: str, accuracy: float) -> None:
    """The same run's file as if trained with a privacy defence (still valid): upload noise σ 0.5,
    or the word-embedding table trained on the device (its parameters counted as trained)."""
    data = json.loads(source.read_text())
    if defence == "upload_noise":
        data["setup"]["upload_noise"] = 0.5
    else:
        data["setup"]["train_embeddings"] = True
        data["result"]["trainable_params"] += data["model"]["vocab"] * data["model"]["d_model"]
    data["result"]["test_accuracy"] = accuracy
    target.write_text(json.dumps(data))
    load_profile(target)  # a valid profile, so only its setting can keep it out


@pytest.mark.parametrize("defence", ["upload_noise", "train_embeddings"])
@pytest.mark.parametrize("strategy", ["dlora-kr", "dlora-all"])
def test_a_defended_run_is_not_pooled_with_undefended_ones(folder, strategy, defence):
    """A profile trained with upload noise or device-trained embeddings (profiles/privacy) matches
    task, PEFT, arm, budget, steps, batch and window, yet measures another thing: it is excluded
    and named, and the pool's accuracy stays as it was; as a reference it pools alone."""
    reference = profile_facts(folder / SEEDS[0])
    before = match_accuracy(strategy, 16, 128, reference, index_profiles(folder))
    arm = "kr" if strategy == "dlora-kr" else "all"
    extra = folder / f"noun-supersense-lora-{arm}-b3-s0-{defence}.json"
    _defended_copy(folder / f"noun-supersense-lora-{arm}-b3-s0.json", extra, defence, 0.11)
    after = match_accuracy(strategy, 16, 128, reference, index_profiles(folder))
    assert after.accuracy == before.accuracy and after.used == before.used
    assert after.excluded == (str(extra),)
    alone = match_accuracy(strategy, 16, 128, profile_facts(extra), index_profiles(folder))
    assert alone.used == (str(extra),) and alone.accuracy == 0.11
    assert ("σ 0.5" if defence == "upload_noise" else "embeddings") in profile_facts(extra).setting.describe()


@pytest.mark.parametrize("strategy", ["dlora-kr", "dlora-all"])
def test_a_repeat_of_a_seed_is_pooled_once(folder, strategy):
    """``profile --rerun`` writes its repeat beside the original (``...-s0-rerun.json``): the
    same setting, arm, budget and seed, and (an exact repeat) the same accuracy. Seed 0 must not
    then weigh double: the two seeds' accuracies differ, so a mean over three files would move."""
    reference = profile_facts(folder / SEEDS[0])
    before = match_accuracy(strategy, 16, 128, reference, index_profiles(folder))
    arm = "kr" if strategy == "dlora-kr" else "all"
    original = folder / f"noun-supersense-lora-{arm}-b3-s0.json"
    shutil.copy(original, folder / f"noun-supersense-lora-{arm}-b3-s0-rerun.json")
    after = match_accuracy(strategy, 16, 128, reference, index_profiles(folder))
    assert len({profile_facts(Path(p)).test_accuracy for p in before.used}) == 2
    assert after.accuracy == before.accuracy
    assert after.n == before.n == 2 and after.excluded == ()
    assert sorted(profile_facts(Path(p)).seed for p in after.used) == [0, 1]
