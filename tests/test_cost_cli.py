"""``dlora-sim cost``: the table, the JSON object, and one-line errors for bad input."""

import json
from pathlib import Path

import pytest

from dlora_sim.cli import main
from dlora_sim.cost import STRATEGIES

PAPER_ARGS = ["cost", "--model", "llama-7b", "--peft", "lora", "--rank", "8", "--targets", "q,k,v,o",
              "--budget", "16", "--device", "phone-mid", "--link", "lte"]


def _run(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    return done.value.code, out, err


def _run_ok(argv, capsys):
    try:
        main(argv)
    except SystemExit as done:  # typer may exit 0 explicitly
        assert done.code in (0, None)
    return capsys.readouterr()


def test_json_is_one_object_with_paper_numbers(capsys):
    """--json prints one JSON object with the headline reductions and every strategy's totals."""
    out, _ = _run_ok([*PAPER_ARGS, "--json"], capsys)
    report = json.loads(out)
    assert report["unshared_comm_bytes_reduction"] == pytest.approx(0.875, abs=0.001)
    assert report["comm_bytes_reduction"] == pytest.approx(0.833, abs=0.001)
    assert report["job_comm_bytes_reduction"] < report["comm_bytes_reduction"]
    assert 0.70 <= report["edge_flops_reduction"] < report["step_edge_flops_reduction"]
    assert set(report["strategies"]) == set(STRATEGIES)
    kr = report["strategies"]["dlora-kr"]
    assert {"step", "epoch", "job"} <= set(kr)
    assert kr["job"]["kr_bytes"] > 0 and kr["step"]["round_trips"] == 34
    assert kr["cloud_session_bytes"] == pytest.approx(3.05e9, rel=0.01) and kr["sessions_per_gpu"] == 23


def test_table_lists_every_strategy(capsys):
    """Without --json the command prints a table naming all five strategies and the headline."""
    out, _ = _run_ok(PAPER_ARGS, capsys)
    for name in ("cloud-only", "edge-only", "dlora-all", "dlora-kr", "dlora-random", "comm_bytes_reduction"):
        assert name in out


@pytest.mark.parametrize("args, needle", [
    (["--model", "gpt-5"], "unknown model 'gpt-5'; allowed: llama-7b"),
    (["--device", "toaster"], "unknown device 'toaster'; allowed: phone-low"),
    (["--link", "dialup"], "unknown link 'dialup'; allowed: 3g, lte"),
    (["--gpu", "tpu"], "unknown gpu 'tpu'; allowed: a100, h100"),
    (["--budget", "129"], "budget 129 is out of range; allowed: 1..128"),
    (["--rank", "-1"], "rank -1 is not allowed; allowed: a positive integer"),
    (["--targets", "q,zz"], "unknown lora target 'zz' for model llama-7b; allowed: q, k, v, o, gate, up, down"),
    (["--killed-policy", "drop"], "killed_policy 'drop' is not allowed; allowed: offload, edge-forward"),
])
def test_bad_input_is_one_line_and_nonzero(args, needle, capsys):
    """Bad input exits 1 with one stderr line naming the bad value and the allowed ones; no traceback."""
    code, out, err = _run([*PAPER_ARGS, *args], capsys)
    assert code == 1
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_adapter_and_weights_variants_run(capsys):
    """Other PEFT methods and protocol options are priced too."""
    out, _ = _run_ok(["cost", "--model", "minilm-l6", "--peft", "adapter", "--budget", "2", "--exchange",
                      "weights", "--head", "cloud", "--json"], capsys)
    report = json.loads(out)
    assert report["config"]["modules"] == 12
    assert report["strategies"]["dlora-kr"]["step"]["round_trips"] == 1


def test_a_profile_gives_the_churn(capsys):
    """--profile prices the churn that the profile's KR run recorded, and cannot be mixed with --kr-churn."""
    profile = Path(__file__).resolve().parents[1] / "profiles" / "noun-supersense-lora-kr-b3-s0.json"
    out, _ = _run_ok([*PAPER_ARGS, "--json", "--profile", str(profile)], capsys)
    assert json.loads(out)["config"]["kr_churn"] > 0
    code, out, err = _run([*PAPER_ARGS, "--profile", str(profile), "--kr-churn", "1"], capsys)
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "give one" in err
