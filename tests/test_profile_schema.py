"""The profile schema: round-trips, and every kind of broken file gives one line naming it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dlora_sim.errors import InputError
from dlora_sim.kr import ARMS, SCORES, KRConfig
from dlora_sim.profile import (
    ARM_NAMES,
    SCHEMA_VERSION,
    SCORE_NAMES,
    KRSettings,
    Profile,
    active_fraction_series,
    churn_series,
    load_profile,
    save_profile,
)
from test_profile_schema_builder import build_profile


@pytest.fixture(scope="module")
def profile() -> Profile:
    return build_profile(arm="kr", budget=3, seed=1)


@pytest.fixture
def saved(tmp_path, profile):
    path = tmp_path / "p.json"
    save_profile(profile, path)
    return path


def _load_error(path) -> str:
    with pytest.raises(InputError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def _edit(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_round_trip_is_identical_and_byte_stable(saved, profile, tmp_path):
    """Saving then loading gives an equal profile; saving again gives identical bytes."""
    loaded = load_profile(saved)
    assert loaded == profile
    save_profile(loaded, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == saved.read_bytes()


def test_missing_file_names_the_file(tmp_path):
    """A path that does not exist is reported as such, not as a traceback."""
    assert "no such profile file" in _load_error(tmp_path / "nope.json")


def test_corrupt_json_is_one_line(saved):
    """Garbage in the middle of the file gives a JSON error with line and column."""
    text = saved.read_text()
    saved.write_text(text[:100] + "}{oops" + text[100:])
    assert "not valid JSON at line" in _load_error(saved)


def test_truncated_file_says_truncated(saved):
    """A file cut in half (bytes) is reported as invalid JSON that looks truncated."""
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    assert "looks truncated" in _load_error(saved)


def test_wrong_schema_version_is_refused(saved):
    """A profile from a schema version this code does not know is refused, naming the versions."""
    _edit(saved, lambda d: d.update(schema_version=3))
    message = _load_error(saved)
    assert "schema_version is 3" in message and "versions 1, 2" in message


def test_version_1_is_read_with_the_trainable_params_it_really_trained(tmp_path):
    """A version 1 file (trainable_params = head + every module, whatever the arm) loads as
    version 2 with head + the active modules averaged over the steps."""
    profile = build_profile(arm="kr", budget=3, seed=2)
    path = tmp_path / "v1.json"
    save_profile(profile, path)
    all_modules = sum(m.params for m in profile.modules)

    def as_v1(d):
        d["schema_version"] = 1
        d["result"].pop("head_params")
        d["result"]["trainable_params"] = 26 * 385 + all_modules

    _edit(path, as_v1)
    loaded = load_profile(path)
    assert loaded.schema_version == SCHEMA_VERSION
    assert loaded.result.head_params == 26 * 385
    # Window 20, warm-up 1: all 24 modules train for two windows (40 steps), then 3 for 160.
    expected = 26 * 385 + (40 * 24 + 160 * 3) * profile.modules[0].params / 200
    assert loaded.result.trainable_params == round(expected)
    assert loaded.result.trainable_params == profile.result.trainable_params


def test_trainable_params_must_match_the_traces(saved):
    """With head_params recorded, trainable_params must be head + the mean active parameters."""
    _edit(saved, lambda d: d["result"].update(trainable_params=d["result"]["trainable_params"] + 500))
    assert "result.trainable_params" in _load_error(saved)


@pytest.mark.parametrize(("arm", "budget"), [("head-only", 3), ("kr", 0)])
def test_budget_zero_only_for_head_only(saved, arm, budget):
    """Budget 0 belongs to arm head-only alone."""
    def change(d):
        d["setup"].update(arm=arm, budget=budget)
        d["setup"]["kr"].update(arm=arm, budget=budget)

    _edit(saved, change)
    assert "budget" in _load_error(saved)


def test_head_only_and_static_random_histories(tmp_path):
    """head-only holds no module after its cut; static-random holds the same B throughout."""
    for arm, budget in (("head-only", 0), ("static-random", 3)):
        profile = build_profile(arm=arm, budget=budget)
        rows = profile.traces.active
        assert len(rows[0]) == 24 and all(len(r) == budget and r == rows[1] for r in rows[1:])
        path = tmp_path / f"{arm}.json"
        save_profile(profile, path)

        def swap(d):  # static-random: three other modules; head-only: three modules at all
            d["traces"]["active"][-1] = sorted(set(range(24)) - set(d["traces"]["active"][-1]))[:3]

        _edit(path, swap)
        assert ("must not change after its cut" if budget else "exactly budget=0") in _load_error(path)


def test_test_predictions_round_trip_and_are_optional(tmp_path):
    """Per-example predictions are stored in order; a profile without them still loads."""
    profile = build_profile(test_predictions=[3, 0, 25, 7])
    path = tmp_path / "p.json"
    save_profile(profile, path)
    assert load_profile(path).result.test_predictions == [3, 0, 25, 7]
    assert build_profile().result.test_predictions is None
    _edit(path, lambda d: d["result"].update(test_predictions=[1, -2]))
    assert "test_predictions" in _load_error(path)


def test_update_norms_need_one_row_per_round(saved):
    """traces.update_norms, when present, holds one row of N values per round."""
    _edit(saved, lambda d: d["traces"].update(update_norms=[[0.0] * 24]))
    assert "traces.update_norms" in _load_error(saved)


def test_schema_arm_and_score_names_mirror_the_controller():
    """The schema's own copies of the arm and score names equal the controller's."""
    assert ARM_NAMES == ARMS and SCORE_NAMES == SCORES


def test_bad_field_names_its_path(saved):
    """A negative rank is reported with the dotted field path."""
    _edit(saved, lambda d: d["peft"].update(rank=-1))
    assert "peft.rank" in _load_error(saved)


def test_list_items_are_named_with_brackets(saved):
    """A bad value inside a list is reported as traces.eval[1].accuracy."""
    _edit(saved, lambda d: d["traces"]["eval"][1].update(accuracy=1.5))
    assert "traces.eval[1].accuracy" in _load_error(saved)


def test_unknown_key_is_refused(saved):
    """Extra keys are errors (extra='forbid'), so typos do not pass silently."""
    _edit(saved, lambda d: d["setup"].update(lerning_rate=0.1))
    assert "setup.lerning_rate" in _load_error(saved)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["traces"]["norms"][2].pop(), "traces.norms[2]"),
        (lambda d: d["traces"]["active"][4].append(23), "budget=3"),
        (lambda d: d["traces"]["active"].__setitem__(3, [2, 1, 0]), "traces.active[3]"),
        (lambda d: d["traces"]["active"].__setitem__(3, [0, 1, 99]), "traces.active[3]"),
        (lambda d: d["traces"]["loss"].pop(), "traces.loss"),
        (lambda d: d["traces"]["round_steps"].reverse(), "traces.round_steps"),
        (lambda d: d["setup"].update(budget=4), "kr.budget"),
        (lambda d: d["setup"].update(arm="random"), "kr.arm"),
        (lambda d: d["modules"][1].update(name=d["modules"][0]["name"]), "unique"),
    ],
)
def test_cross_field_rules(saved, change, needle):
    """Shapes, index ranges, the budget rule and setup/KR agreement are checked across fields."""
    _edit(saved, change)
    assert needle in _load_error(saved)


def test_static_topb_may_not_change_after_its_cut(tmp_path):
    """A static-topB history that swaps a module after the cut is rejected."""
    path = tmp_path / "s.json"
    save_profile(build_profile(arm="static-topB"), path)

    def swap(d):
        last = d["traces"]["active"][-1]
        d["traces"]["active"][-1] = sorted(set(range(24)) - set(last))[:3]

    _edit(path, swap)
    assert "static-topB" in _load_error(path)


def test_non_object_json_is_refused(tmp_path):
    """A JSON list is not a profile."""
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    assert "must be a JSON object" in _load_error(path)


def test_kr_settings_mirror_kr_config():
    """Every KRConfig field is recorded by KRSettings and nothing else, so the two cannot drift."""
    assert set(KRSettings.model_fields) == {f.name for f in dataclasses.fields(KRConfig)}
    config = KRConfig(budget=5, arm="random", hysteresis=0.3, seed=7)
    assert KRSettings.from_config(config).model_dump() == dataclasses.asdict(config)


def test_active_fraction_and_churn_helpers(profile):
    """Warm-up rounds are fully active, later rounds hold B/N; kills and revivals balance after the cut."""
    fractions = active_fraction_series(profile)
    assert fractions[0] == 1.0 and np.allclose(fractions[1:], 3 / 24)
    kills, revivals = churn_series(profile)
    assert kills[1] == 21 and revivals[1] == 0
    assert np.array_equal(kills[2:], revivals[2:])
