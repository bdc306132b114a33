"""The privacy options of real training: noise on the upload and a device-trained embedding table."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from dlora_sim.cli import main  # noqa: E402
from dlora_sim.errors import InputError  # noqa: E402
from dlora_sim.kr import KRConfig  # noqa: E402
from dlora_sim.profile import load_profile  # noqa: E402
from dlora_sim.profiling.models import PeftSpecLocal  # noqa: E402
from dlora_sim.profiling.runner import run_profile  # noqa: E402
from dlora_sim.profiling.train import TrainConfig  # noqa: E402
from dlora_sim.profiling.upload import add_upload_noise  # noqa: E402

pytestmark = pytest.mark.torch


def _tiny(**options) -> TrainConfig:
    return TrainConfig(task="noun-supersense", peft=PeftSpecLocal(method="lora", rank=4),
                       kr=KRConfig(budget=3, arm="all", window_steps=5, seed=0), steps=6, batch=4,
                       lr=3e-3, seed=0, max_len=16, train_limit=24, dev_limit=8, test_limit=8,
                       eval_every=6, **options)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("upload")
    out = {}
    for name, options in {"plain": {}, "noisy": {"upload_noise": 2.0}, "noisy-again": {"upload_noise": 2.0},
                          "embeddings": {"train_embeddings": True}}.items():
        run_profile(_tiny(**options), folder / f"{name}.json")
        out[name] = load_profile(folder / f"{name}.json")  # what the file records
    return out


def test_the_profile_records_the_upload_noise_and_the_noise_changes_training(runs):
    assert runs["plain"].setup.upload_noise == 0 and runs["noisy"].setup.upload_noise == 2.0
    assert runs["noisy"].traces.loss != runs["plain"].traces.loss
    # its own seeded stream: the same seed gives the same noisy run
    assert runs["noisy"].traces.loss == runs["noisy-again"].traces.loss


def test_a_device_trained_table_is_recorded_and_counted_as_trainable(runs):
    table = 30522 * 384
    assert runs["embeddings"].setup.train_embeddings and not runs["plain"].setup.train_embeddings
    assert runs["embeddings"].result.trainable_params - runs["plain"].result.trainable_params == table
    assert runs["embeddings"].result.head_params == runs["plain"].result.head_params


def test_the_noise_is_on_at_evaluation_too():
    layer = torch.nn.Identity()
    add_upload_noise(layer, 0.5, seed=0)
    layer.eval()
    x = torch.zeros(2000)
    assert abs(float(layer(x).std()) - 0.5) < 0.05


def test_bad_noise_is_refused(tmp_path, capsys):
    with pytest.raises(InputError, match="--upload-noise"):
        _tiny(upload_noise=float("nan"))
    out = tmp_path / "p.json"
    with pytest.raises(SystemExit) as done:
        main(["profile", "-o", str(out), "--steps", "1", "--upload-noise", "-1"])
    err = capsys.readouterr().err
    assert done.value.code == 1 and len(err.strip().splitlines()) == 1 and "--upload-noise" in err
    assert not out.exists()
