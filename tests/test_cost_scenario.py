"""``dlora-sim cost`` reads a scenario file or an inline device and link, as ``run`` does (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlora_sim.cli import main

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "scenarios" / "paper-default.toml"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(argv)
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def _json(argv: list[str], capsys) -> dict:
    code, out, err = _run([*argv, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)


def test_a_scenario_prices_like_the_same_options_typed(capsys):
    """paper-default's laptop group = the job's options and the group's device and link by hand."""
    from_file = _json(["cost", str(PAPER), "--group", "laptops-wifi"], capsys)
    typed = _json(["cost", "--model", "llama-7b", "--budget", "16", "--device", "laptop", "--link", "wifi",
                   "--gpu", "a100", "--batch", "4", "--seq-len", "256", "--steps", "1000", "--kr-interval", "50",
                   "--profile", str(REPO / "profiles" / "noun-supersense-lora-kr-b3-s0.json")], capsys)
    assert from_file["strategies"] == typed["strategies"]
    assert from_file["config"]["scenario"] == f"{PAPER} (group laptops-wifi)"
    assert from_file["config"]["device"] == "laptop" and from_file["config"]["link"] == "wifi"


def test_set_changes_the_scenario_as_run_does(capsys):
    base = _json(["cost", str(PAPER)], capsys)
    smaller = _json(["cost", str(PAPER), "--set", "job.budget=8"], capsys)
    assert base["config"]["budget"] == 16 and smaller["config"]["budget"] == 8
    kr = "dlora-kr"
    assert smaller["strategies"][kr]["step"]["bytes_up"] < base["strategies"][kr]["step"]["bytes_up"]


def test_inline_device_and_link_price_like_their_catalogue_twins(capsys):
    """phone-mid and lte written out as tables give the catalogue's numbers (radio model included
    for a table naming lte); a changed price per GB moves only the data bill."""
    named = _json(["cost", "--device", "phone-mid", "--link", "lte"], capsys)
    inline = _json(["cost", "--device", "{ flops_per_s = 5e11, memory_bytes = 8589934592, joules_per_flop = 1e-11 }",
                    "--link", '{ name = "lte" }'], capsys)
    assert inline["strategies"] == named["strategies"]
    cheaper = _json(["cost", "--link", '{ name = "lte", data_usd_per_gb = 3.0 }'], capsys)
    for name, entry in cheaper["strategies"].items():
        assert entry["job"]["data_usd"] == pytest.approx(named["strategies"][name]["job"]["data_usd"] / 2)
        assert entry["job"]["radio_energy_j"] == named["strategies"][name]["job"]["radio_energy_j"]


@pytest.mark.parametrize(("argv", "line"), [
    (["--device", "{ flops_per_s = -1, memory_bytes = 8e9, joules_per_flop = 1e-11 }"],
     "error: --device: flops_per_s: Input should be greater than or equal to 1"),
    (["--link", "{ up_bps = 2e7"], None),
    (["--device", "phone-xx"], "error: --device: unknown device 'phone-xx'; allowed: phone-low, phone-mid, "
                               "phone-high, laptop, jetson"),
    ([str(PAPER), "--budget", "3"], f"error: {PAPER}: the scenario states the job and its hardware; instead of "
                                    "--budget use --set FIELD=VALUE (e.g. --set job.budget=8)"),
    ([str(PAPER), "--group", "nope"], "error: --group 'nope': no such fleet group; the scenario has phones-5g, "
                                      "laptops-wifi"),
    (["--set", "job.budget=3"], "error: --set and --group need a SCENARIO file (dlora-sim cost SCENARIO --set ...)"),
])
def test_bad_input_is_one_line(argv, line, capsys):
    code, _, err = _run(["cost", *argv], capsys)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    if line is not None:
        assert lines == [line]
    else:
        assert lines[0].startswith("error: --link: not a TOML inline table")
