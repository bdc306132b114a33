"""A live run on unshaped loopback: two real processes train, the loss falls, the final weights are
a single-process training's, and every message is the cost model's next predicted exchange."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("zmq", reason="the live runtime needs the [live] extra (pyzmq)")

from dlora_sim import cost  # noqa: E402
from dlora_sim.live.job import LiveJob, job_plan, train_plan  # noqa: E402
from dlora_sim.live.runner import run_live  # noqa: E402
from dlora_sim.live.training import reference_train  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]

#: one batch, seen every step, so that its loss must fall; KR rounds before steps 1 (warm-up),
#: 2 (the cut to B, uploading the killed modules) and 3 (a probe batch, maybe revivals)
KR_JOB = LiveJob(train_limit=2, batch=2, seq_len=32, steps=4, lr=1e-3, kr=True, budget=3, kr_window=1, kr_warmup=1)
ATOL = 1e-5


@pytest.fixture(scope="module")
def kr_run(tmp_path_factory):
    return run_live(KR_JOB, tmp_path_factory.mktemp("live") / "kr", timeout_s=300)


@pytest.fixture(scope="module")
def kr_reference():
    return reference_train(KR_JOB)


def _max_difference(live: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> float:
    assert sorted(live) == sorted(reference)
    return max(float(np.max(np.abs(live[k] - reference[k]))) for k in reference)


def test_the_live_run_trains_and_ends_with_the_single_process_weights(kr_run, kr_reference):
    losses = kr_run.edge["losses"]
    assert len(losses) == KR_JOB.steps and losses[-1] < losses[0]
    assert np.allclose(losses, kr_reference.losses, atol=ATOL)
    assert _max_difference(kr_run.weights, kr_reference.weights) < ATOL
    # the same KR decisions, on both sides of the wire
    assert [np.flatnonzero(r["after"]).tolist() for r in kr_run.edge["rounds"]] == kr_reference.active
    assert kr_run.link_note == "unshaped loopback (127.0.0.1)" and not kr_run.shaped


def test_every_message_is_the_cost_models_next_exchange(kr_run):
    sent = [(t["pass"], t["step"], t["exchange"], t["bytes_up"], t["bytes_down"]) for t in kr_run.cloud["transcript"]]
    predicted = [(p, step, e.name, e.bytes_up, e.bytes_down) for p, step, e in job_plan(KR_JOB, kr_run.edge["rounds"])]
    assert sent[:-1] == predicted
    assert sent[-1][:3] == ("session", KR_JOB.steps, "close")
    kinds = {p for p, *_ in predicted}
    assert kinds == {"train", "probe", "round"}  # the run exercised a probe and a kill upload


def test_the_rounds_are_the_schedule_the_cost_model_prices(kr_run):
    schedule = cost.kr_schedule(KR_JOB.spec, KR_JOB.strategy)
    live = kr_run.edge["rounds"]
    assert [(r.after_step + 1, r.probe, r.n_active) for r in schedule.rounds] == \
        [(r["step"], r["probe"], sum(r["after"])) for r in live]


def test_nothing_was_refused_repeated_or_retried_on_a_clean_run(kr_run):
    for side in (kr_run.cloud["traffic"], kr_run.edge["traffic"]):
        assert (side["refused"], side["retries"], side["duplicates"]) == (0, 0, 0)
    assert kr_run.cloud["resets"] == 0 and kr_run.cloud["kr_duplicates"] == 0


@pytest.mark.parametrize("job", [
    LiveJob(steps=2, share_inputs=False),
    LiveJob(steps=3, exchange="weights", kr=True, budget=4, kr_window=1, kr_warmup=0),
], ids=["unshared-inputs", "weights-exchange"])
def test_unshared_inputs_and_the_weights_exchange_are_exact_too(job, tmp_path):
    """q, k, v each with their own message; the weights exchange, whose gradients come down one
    pass later (with the next NEXT), so there only the job's sums match the exchange lists."""
    run = run_live(job, tmp_path / "run", timeout_s=300)
    assert _max_difference(run.weights, reference_train(job).weights) < ATOL
    predicted = job_plan(job, run.edge["rounds"])
    sent = run.cloud["transcript"]
    assert [t["exchange"] for t in sent[:-1]] == [e.name for _, _, e in predicted]
    assert sum(t["bytes_up"] for t in sent) == sum(e.bytes_up for _, _, e in predicted)
    assert sum(t["bytes_down"] for t in sent) == sum(e.bytes_down for _, _, e in predicted)
    if not job.share_inputs:
        assert len(train_plan(job, np.ones(24, bool))) == 1 + 2 * 6 * 4 + 1  # no module shares a message
