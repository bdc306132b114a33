"""The privacy audit on the real MiniLM-L6 and real task text (needs the [profile] extra)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="the privacy audit needs the [profile] extra (torch)")

from dlora_sim.cli import main  # noqa: E402
from dlora_sim.privacy.audit import audit  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def record():
    return audit("noun-supersense", examples=8, sigmas=[0.0, 2.0, 8.0], max_len=12, seed=0)


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


def test_cli_writes_json_and_figure_and_refuses_bad_noise(tmp_path, capsys):
    out = tmp_path / "privacy"
    with pytest.raises(SystemExit) as done:
        main(["privacy", "-o", str(out), "--examples", "2", "--max-len", "6", "--sigma", "0,4"])
    assert done.value.code in (0, None)
    assert json.loads((out / "privacy.json").read_text())["token_recovery"][1]["sigma"] == 4.0
    assert "What the cloud recovers" in (out / "privacy.html").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["privacy", "-o", str(tmp_path / "x"), "--sigma", "-1"])
    err = capsys.readouterr().err
    assert done.value.code == 1 and len(err.strip().splitlines()) == 1 and "--sigma" in err
    assert not (tmp_path / "x").exists()
