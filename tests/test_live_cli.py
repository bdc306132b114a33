"""``dlora-sim live``: bad input is one line naming the field and exit 1, before any process starts;
a job file of the processes is as strict; the comparison's scenario is the live job."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("zmq", reason="the live runtime needs the [live] extra (pyzmq)")

from dlora_sim.cli import main  # noqa: E402
from dlora_sim.errors import InputError  # noqa: E402
from dlora_sim.live.compare import Compute, LinkFit, scenario, write_scenario  # noqa: E402
from dlora_sim.live.job import LiveJob  # noqa: E402


def _run(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return int(done.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize("argv, field", [
    (["--batch", "0"], "batch:"),
    (["--steps", "-1"], "steps:"),
    (["--seq-len", "600"], "seq_len:"),
    (["--budget", "25", "--kr"], "budget"),
    (["--exchange", "gradients"], "exchange:"),
    (["--task", "definition-mc"], "task:"),
    (["--lr", "0"], "lr:"),
    (["--link", "mars"], "link:"),
    (["--timeout", "0"], "--timeout"),
])
def test_bad_input_is_one_line_and_exit_1(argv, field, capsys, tmp_path):
    code, err = _run(["live", "-o", str(tmp_path / "out"), *argv], capsys)
    assert code == 1 and err.startswith("error: ") and field in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_folder_it_did_not_write_is_never_replaced(capsys, tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    code, err = _run(["live", "-o", str(tmp_path)], capsys)
    assert code == 1 and "--out:" in err and (tmp_path / "mine.txt").read_text() == "keep"


def test_a_job_file_is_strict(tmp_path):
    for raw, field in (({"batch": 2, "sped": 1}, "unknown field 'sped'"), ({"steps": "4"}, "steps:"), ([], "JSON object")):
        path = tmp_path / "job.json"
        path.write_text(json.dumps(raw))
        with pytest.raises(InputError, match=field):
            LiveJob.load(path)
    assert LiveJob.from_dict(json.loads(LiveJob(steps=3).to_json())) == LiveJob(steps=3)


def test_the_written_scenario_loads_and_is_the_live_job(tmp_path):
    from dlora_sim.live.compare import live_gpu
    from dlora_sim.scenario import load_scenario

    job = LiveJob(kr=True, exchange="weights", share_inputs=False)
    compute = Compute(1e9, 2e10)
    raw = scenario(job, "lte-nominal", compute, LinkFit(1e7, 3e7, 0.05))
    write_scenario(raw, tmp_path / "s.toml")
    with live_gpu(compute):
        loaded = load_scenario(tmp_path / "s.toml")
        assert loaded.cloud.gpu_spec.flops_per_s == 2e10
    spec = loaded.job.to_job_spec()
    assert spec.table.n_modules == job.spec.table.n_modules and spec.exchange == "weights" and not spec.share_inputs
    assert loaded.fleet.groups[0].device.flops_per_s == 1e9
    with pytest.raises(InputError, match="live-cpu"):  # the GPU exists only while a comparison runs
        load_scenario(tmp_path / "s.toml")
