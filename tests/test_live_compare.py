"""``live --compare``'s row: the simulated twin of a live run counts exactly the run's bytes each
way and round trips; its time is the simulator's, which is what the fidelity table reports."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("zmq", reason="the live runtime needs the [live] extra (pyzmq)")

from dlora_sim.live.compare import Compute, LinkFit, format_table, row  # noqa: E402
from dlora_sim.live.job import LiveJob  # noqa: E402
from dlora_sim.live.shaping import LOOPBACK  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]


def test_the_simulated_twin_moves_exactly_the_live_runs_bytes(tmp_path):
    job = LiveJob(steps=4, kr=True, kr_window=2, checkpoint_every=4)  # two steps, the cut, two steps at B
    result = row(job, LOOPBACK, Compute(1e9, 2e10), LinkFit(8e9, 8e9, 2e-4), tmp_path)
    for predicted in (result.nominal, result.fitted):
        assert (predicted.bytes_up, predicted.bytes_down, predicted.round_trips) == \
            (result.measured.bytes_up, result.measured.bytes_down, result.measured.round_trips)
    assert result.measured.step_s > 0 and result.fitted.step_s > 0
    assert 0 < result.framing < 0.01  # labels, lengths and masks: well under 1% of the arrays
    assert result.veth_overhead is None  # loopback: no interface of our own to count
    assert {p.name for p in tmp_path.iterdir()} >= {"run", "row.json", "scenario-nominal.toml", "scenario-fitted.toml"}
    table = format_table([result])
    assert "loopback" in table and "median |step-time error|, fitted link" in table
