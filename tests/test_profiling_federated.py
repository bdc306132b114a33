"""Real FedAvg of LoRA on a tiny split: exact averaging, equivalence with ordinary training, the record."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from dlora_sim.cli import main  # noqa: E402
from dlora_sim.cost import get_strategy  # noqa: E402
from dlora_sim.fed_record import load_fed_record  # noqa: E402
from dlora_sim.kr import KRConfig  # noqa: E402
from dlora_sim.profiling.fed_runner import build_fed_record, cost_job  # noqa: E402
from dlora_sim.profiling.federated import FedConfig, fedavg, run_federated  # noqa: E402
from dlora_sim.profiling.models import PeftSpecLocal  # noqa: E402
from dlora_sim.profiling.train import TrainConfig, train  # noqa: E402

pytestmark = pytest.mark.torch

TINY = dict(task="noun-supersense", peft=PeftSpecLocal(rank=4), batch=4, lr=3e-3, seed=0, max_len=32,
            train_limit=64, test_limit=16)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def two_users():
    """2 users, 2 rounds of 3 local steps, very non-IID: the run and every round's report."""
    torch.set_num_threads(1)
    config = FedConfig(users=2, alpha=0.1, rounds=2, local_steps=3, **TINY)
    reports = []
    run = run_federated(config, on_round=reports.append)
    return config, run, reports


def test_global_weights_are_the_sample_weighted_mean_of_the_users(two_users):
    """Every round, every LoRA A/B tensor and the head equal Σ n_k w_k / N computed apart in numpy,
    bit for bit; the users' unequal sizes matter (the plain mean differs)."""
    _, run, reports = two_users
    assert len(reports) == 2 and len(set(run.split.sizes)) == 2  # unequal shards: weighting is visible
    for report in reports:
        names = set(report.global_state)
        lora = {n for n in names if ".lora_A." in n or ".lora_B." in n}
        assert len(lora) == 2 * 24 and names - lora == {"head.weight", "head.bias"}
        total = sum(report.user_sizes)
        weighting_mattered = False
        for name, value in report.global_state.items():
            users = [s[name].numpy() for s in report.user_states]
            expected = np.zeros(users[0].shape)
            for w, n in zip(users, report.user_sizes):
                expected += w.astype(np.float64) * (n / total)
            np.testing.assert_array_equal(value.numpy(), expected.astype(np.float32))
            plain = np.mean([w.astype(np.float64) for w in users], axis=0).astype(np.float32)
            weighting_mattered |= not np.array_equal(plain, value.numpy())
        assert weighting_mattered


def test_users_train_from_the_global_weights_and_move_apart(two_users):
    """Round 2 starts every user from round 1's average: their B factors (zero at the start)
    differ from it and from each other after local training."""
    _, _, reports = two_users
    name = next(n for n in reports[0].global_state if ".lora_B." in n)
    first, second = reports
    assert torch.count_nonzero(first.global_state[name]) > 0
    a, b = (s[name] for s in second.user_states)
    assert not torch.equal(a, b) and not torch.equal(a, first.global_state[name])


def test_a_run_is_deterministic_given_the_seed(two_users):
    """Rerunning the first round of the same config gives the same losses and global weights, bit for bit."""
    config, _, reports = two_users
    again = []
    run_federated(FedConfig(**{**config.__dict__, "rounds": 1}), on_round=again.append)
    assert again[0].losses == reports[0].losses
    assert all(torch.equal(again[0].global_state[n], t) for n, t in reports[0].global_state.items())


def test_fedavg_refuses_mismatched_users():
    """Sizes that do not match the states, or users holding different tensors, are refused."""
    state = {"w": torch.ones(2)}
    with pytest.raises(ValueError):
        fedavg([state, state], [1])
    with pytest.raises(ValueError):
        fedavg([state, {"v": torch.ones(2)}], [1, 1])
    with pytest.raises(ValueError):
        fedavg([state], [0])


def test_one_user_one_round_is_ordinary_training():
    """FedAvg with K=1, R=1 equals train() (arm all) from the same init and batches: the same
    loss at every step and the same test predictions."""
    steps = 4
    fed = run_federated(FedConfig(users=1, alpha=0.1, rounds=1, local_steps=steps, **TINY))
    plain = train(TrainConfig(task=TINY["task"], peft=TINY["peft"], kr=KRConfig(budget=3, arm="all", seed=0),
                              steps=steps, batch=TINY["batch"], lr=TINY["lr"], seed=0, max_len=TINY["max_len"],
                              train_limit=TINY["train_limit"], dev_limit=8, test_limit=TINY["test_limit"],
                              eval_every=steps))
    assert fed.split.sizes == [TINY["train_limit"]]
    assert fed.step_loss[0][0] == plain.loss
    assert fed.test_predictions == plain.test_predictions
    assert fed.test_accuracy == plain.test_accuracy


def test_record_counts_bytes_as_the_cost_model_and_round_trips(two_users, tmp_path):
    """The record's bytes per round are fed-lora's sync exchange; its LoRA size is the cost
    model's module table's; save and load give the same record."""
    config, run, _ = two_users
    record = build_fed_record(config, run, wall_s=1.0, dtype_bytes=4)
    job = cost_job(config, 4)
    (exchange,) = get_strategy("fed-lora").sync_exchanges(job)
    assert record.cost.bytes_up_per_round == exchange.bytes_up == 4 * record.setup.lora_params
    assert record.setup.lora_params == int(job.table.params.sum())
    assert record.cost.sync_rounds == config.rounds
    assert record.result.round_accuracy == run.round_accuracy
    assert record.split.user_examples == run.split.sizes
    from dlora_sim.fed_record import save_fed_record

    save_fed_record(record, tmp_path / "r.json")
    assert load_fed_record(tmp_path / "r.json") == record


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code, capsys.readouterr()


@pytest.mark.parametrize("argv,needle", [
    (["--task", "definition-mc"], "needs a classification task"),
    (["--alpha", "0"], "--alpha must be a positive number"),
    (["--users", "30"], "30 users × 4 examples each need 120 training examples; the split has 40"),
])
def test_cli_bad_input_is_one_line_and_nothing_written(argv, needle, tmp_path, capsys):
    """A task without classes, a non-positive alpha, too many users: one 'error:' line, exit 1."""
    out = tmp_path / "r.json"
    code, captured = _cli(["fed", "run", "-o", str(out), "--batch", "4", "--train-limit", "40", "--test-limit", "8",
                           "--rounds", "1", "--local-steps", "1", *argv], capsys)
    assert code == 1 and captured.err.strip().count("\n") == 0 and needle in captured.err
    assert not out.exists()


def test_cli_run_then_table(tmp_path, capsys):
    """``fed run`` writes a valid record; ``fed table --write`` puts the generated table between
    the markers, naming the command."""
    out = tmp_path / "fed" / "tiny-s0.json"
    code, _ = _cli(["fed", "run", "-o", str(out), "--users", "2", "--alpha", "100", "--rounds", "1",
                    "--local-steps", "2", "--batch", "4", "--rank", "4", "--max-len", "32", "--train-limit", "40",
                    "--test-limit", "8", "--no-progress"], capsys)
    assert code == 0
    record = load_fed_record(out)
    assert record.setup.users == 2 and record.split.alpha == 100 and len(record.result.round_accuracy) == 1
    assert record.setup.command.startswith("dlora-sim ")
    readme = tmp_path / "fed" / "README.md"
    assert _cli(["fed", "table", str(out.parent), "--write", str(readme)], capsys)[0] == 0
    text = readme.read_text()
    assert "<!-- table:start -->" in text and "| noun-supersense | 2 | 100 |" in text
    assert f"dlora-sim fed table {out.parent.as_posix()} --write {readme.as_posix()}" in text
    json.loads(out.read_text())  # plain JSON on disk
