"""Faults for real: the edge process is killed mid-step and started again, the cloud process is
killed and replaced; either way the run ends with a single-process training's weights, so no
update was lost and none was applied twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
zmq = pytest.importorskip("zmq", reason="the live runtime needs the [live] extra (pyzmq)")

from dlora_sim.live.job import LiveJob  # noqa: E402
from dlora_sim.live.wire import Kind, Message, encode  # noqa: E402
from dlora_sim.live.runner import LiveProcesses  # noqa: E402
from dlora_sim.live.training import reference_train  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]

#: checkpoints after steps 2, 4, 6; KR cuts to B before step 2 and probes before step 4
JOB = LiveJob(steps=6, checkpoint_every=2, kr=True, budget=3, kr_window=2, kr_warmup=0)


@pytest.fixture(scope="module")
def reference():
    return reference_train(JOB)


def _journal(workdir: Path) -> list[dict]:
    path = workdir / "edge" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for_step(workdir: Path, step: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(r.get("step") == step for r in _journal(workdir)):
        assert time.monotonic() < deadline, f"step {step} was never applied"
        time.sleep(0.01)


def _same(weights: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> bool:
    return sorted(weights) == sorted(reference) and all(np.allclose(weights[k], reference[k], atol=1e-5)
                                                        for k in reference)


def _garbage(endpoint: str, workdir: Path) -> None:
    """What a stranger on the cloud's port might send: no message, an oversized one, a bad hello."""
    deadline = time.monotonic() + 120
    while not (workdir / "cloud" / "cloud.endpoint").exists():  # the cloud has bound its address
        assert time.monotonic() < deadline, "the cloud never bound its address"
        time.sleep(0.05)
    stranger = zmq.Context.instance().socket(zmq.DEALER)
    stranger.connect(endpoint)
    stranger.send_multipart([b"not a message"])
    stranger.send_multipart(encode(Message(Kind.FWD, 1, 0, 1, 1, 0, (np.zeros(5 << 20, np.uint8),)), limit=1 << 30))
    stranger.send_multipart(encode(Message(Kind.HELLO, 1, 0, 1, 0, 0, (np.ones(3, np.uint8),))))
    stranger.close(linger=10000)


def test_a_killed_edge_resumes_from_its_checkpoint_and_nothing_is_lost_or_applied_twice(tmp_path, reference):
    with LiveProcesses(JOB, tmp_path, timeout_s=2.0, retries=1, limit=4 << 20) as processes:
        _garbage(processes.endpoint, tmp_path)  # refused, one line each, and the session below goes on
        first = processes.start_edge()
        _wait_for_step(tmp_path, 2)  # step 2 is applied, not checkpointed; the edge is in step 3
        first.kill()
        first.wait()
        processes.start_edge()
        run = processes.wait(timeout_s=240)
    journal = run.journal
    resume = [r for r in journal if "resume" in r]
    assert len(resume) == 1 and resume[0]["attempt"] == 2 and resume[0]["resume"] in (2, 4)
    before = [r["step"] for r in journal[:journal.index(resume[0])] if "step" in r]
    after = [r["step"] for r in journal[journal.index(resume[0]) + 1:]]
    assert before[:3] == [0, 1, 2] and after == list(range(resume[0]["resume"], JOB.steps))
    assert _same(run.weights, reference.weights)
    # the cloud dropped the old attempt's work and applied each KR decision once per attempt
    applied = [tuple(k) for k in run.cloud["kr_applied"]]
    assert len(applied) == len(set(applied)) and run.cloud["kr_duplicates"] == 0
    refused = [line for line in (tmp_path / "cloud-1.log").read_text().splitlines() if "refused a message" in line]
    assert [line.split("refused a message: ")[1].split(":")[0] for line in refused] == ["header", "size", "hello"]
    steps = {}
    for record in run.cloud["steps"]:
        steps[record["step"]] = record["attempt"]
    assert sorted(steps) == list(range(JOB.steps)) and steps[JOB.steps - 1] == 2


def test_a_killed_cloud_is_replaced_and_the_edge_carries_on(tmp_path, reference):
    with LiveProcesses(JOB, tmp_path, timeout_s=2.0, retries=1, idle_timeout_s=5.0) as processes:
        processes.start_edge()
        _wait_for_step(tmp_path, 2)
        processes.restart_cloud()
        run = processes.wait(timeout_s=240)
    assert _same(run.weights, reference.weights)
    assert run.edge["attempt"] == 2 and not any("resume" in r for r in run.journal)  # the edge never restarted
    assert [r["step"] for r in run.journal] == list(range(JOB.steps))  # every update applied once, in order
    assert run.cloud["steps"][0]["attempt"] == 2  # the new cloud served the session from where the edge was
