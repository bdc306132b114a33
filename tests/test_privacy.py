"""The privacy audit on the real MiniLM-L6 and real task text (needs the [profile] extra)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the privacy audit needs the [profile] extra (torch)")

from dlora_sim.cli import main  # noqa: E402
from dlora_sim.privacy.audit import audit  # noqa: E402

pytestmark = pytest.mark.torch


PROFILES = Path(__file__).resolve().parents[1] / "profiles" / "privacy"


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    profiles = tmp_path_factory.mktemp("profiles")
    for sigma in ("0", "2"):  # two committed noise profiles: the accuracy the audit reads
        name = f"noun-supersense-lora-all-noise{sigma}-s0.json"
        shutil.copy(PROFILES / name, profiles / name)
    torch.set_num_threads(1)
    return audit("noun-supersense", examples=8, sigmas=[0.0, 2.0, 8.0], max_len=12, seed=0,
                 public_examples=300, table_steps=4, profiles=profiles)


def test_uploaded_embeddings_give_the_text_away(record):
    """Un-noised, the nearest row of the public table recovers at least 99% of the tokens."""
    clean = record["token_recovery"][0]
    assert clean["sigma"] == 0 and clean["tokens"] > 50 and clean["rate"] >= 0.99


def test_noise_on_the_embeddings_lowers_the_recovery(record):
    """The more noise the device adds, the fewer tokens the cloud recovers."""
    rates = [r["rate"] for r in record["token_recovery"]]
    assert rates[0] > rates[1] > rates[2]


def test_a_frozen_public_head_gives_the_labels_away(record):
    """The gradient through a frozen head the cloud knows determines the label exactly."""
    assert record["label_recovery"]["rate"] == 1.0


def test_a_private_rotation_hides_nothing_from_a_cloud_with_public_weights(record):
    """Rotated uploads miss the nearest row, but the rotated first-layer weights the cloud would
    need give the rotation away, and the distances to the [CLS]/[SEP]/[PAD] anchors alone
    recover most tokens."""
    rotation = record["rotation"]
    assert rotation["tokens"] == record["token_recovery"][0]["tokens"] and rotation["anchors"] >= 5
    assert rotation["rate"]["nearest_row"] < 0.5
    assert rotation["rate"]["public_weights"] == 1.0
    assert rotation["rate"]["anchor_distances"] > 0.9
    assert rotation["rate"]["procrustes_refit"] >= rotation["rate"]["nearest_row"]


def test_hidden_states_at_a_shallow_cut_give_the_text_away_and_deeper_less(record):
    """A linear inversion fitted on public text recovers the task text from block 1's output,
    and less from the last block's."""
    blocks = record["inversion"]["blocks"]
    assert [b["block"] for b in blocks] == [1, 2, 3, 4, 5, 6]
    assert blocks[0]["rate"] >= 0.9 and blocks[-1]["rate"] < blocks[0]["rate"]
    assert record["inversion"]["public_tokens"] > 1000


def test_the_public_text_is_not_task_text():
    """The inversion models never see the task's own text."""
    from dlora_sim.privacy.inversion import public_text
    from dlora_sim.profiling.tasks import load_task

    public = set(public_text())
    for split in ("train", "dev", "test"):
        assert not public & set(load_task("noun-supersense", split).texts)


def test_the_accuracy_cost_is_read_from_the_noise_profiles(record):
    rows = record["noise_accuracy"]
    assert [r["sigma"] for r in rows] == [0.0, 2.0] and rows[0]["seeds"] == [0]
    assert rows[0]["mean"] > rows[1]["mean"]  # noise σ = 2 costs accuracy in real training
    table = record["trained_table"]
    assert table["steps"] == 4 and 0 <= table["rate"] <= 1 and 0 <= table["test_accuracy"] <= 1


def test_cli_writes_json_and_figure_and_refuses_bad_noise(tmp_path, capsys):
    out = tmp_path / "privacy"
    with pytest.raises(SystemExit) as done:
        main(["privacy", "-o", str(out), "--examples", "2", "--max-len", "6", "--sigma", "0,4",
              "--public-examples", "20", "--table-steps", "0"])
    assert done.value.code in (0, None)
    assert json.loads((out / "privacy.json").read_text())["token_recovery"][1]["sigma"] == 4.0
    assert "What the cloud recovers" in (out / "privacy.html").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["privacy", "-o", str(tmp_path / "x"), "--sigma", "-1"])
    err = capsys.readouterr().err
    assert done.value.code == 1 and len(err.strip().splitlines()) == 1 and "--sigma" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as done:
        main(["privacy", "-o", str(tmp_path / "y"), "--profiles", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert done.value.code == 1 and len(err.strip().splitlines()) == 1 and "--profiles" in err
    assert not (tmp_path / "y").exists()


def test_the_tradeoff_figure_draws_each_defence_at_its_measured_point(record):
    """Noise: one point per σ with both a recovery and profiles; the table; the rotation's attacks."""
    from dlora_sim.report.privacy import ROTATION_ATTACKS, inversion_figure, tradeoff_figure

    noise, table, rotation = tradeoff_figure(record).data
    accuracy = {r["sigma"]: r["mean"] for r in record["noise_accuracy"]}
    recovery = {r["sigma"]: r["rate"] for r in record["token_recovery"]}
    assert list(noise.x) == [100 * accuracy[0.0], 100 * accuracy[2.0]]
    assert list(noise.y) == [100 * recovery[0.0], 100 * recovery[2.0]]
    assert list(table.y) == [100 * record["trained_table"]["rate"]]
    assert len(rotation.y) == len(ROTATION_ATTACKS)
    assert list(inversion_figure(record).data[0].x) == [0, 1, 2, 3, 4, 5, 6]
