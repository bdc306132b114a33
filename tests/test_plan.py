"""``dlora-sim plan`` / ``dlora_sim.plan``: a recommendation the simulator confirms, an impossible
deadline said in one line with the closest point, the front, and one-line errors (issue 16)."""

import json
from pathlib import Path

import numpy as np
import pytest

import dlora_sim
from dlora_sim.cli import main
from dlora_sim.errors import InputError
from dlora_sim.planner import pareto_mask, parse_duration, parse_vary, plan

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "scenarios" / "phone-fleet-lte.toml"


def _run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as done:
        code = done.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def test_durations():
    assert parse_duration("48h") == 48 * 3600
    assert parse_duration("2d") == 2 * 86400
    assert parse_duration("90min") == 90 * 60
    assert parse_duration("1d12h") == 36 * 3600
    assert parse_duration("3600s") == 3600
    for bad in ("48", "h", "-3h", "0h", "48 hours", "tomorrow", ""):
        with pytest.raises(InputError, match="duration with a unit"):
            parse_duration(bad)


def test_vary_parsing():
    assert list(parse_vary(None)) == ["job.budget", "job.exchange", "cloud.count"]
    got = parse_vary(["job.budget,cloud.count", "cloud.gpu=a100,h100"])
    assert got == {"job.budget": None, "cloud.count": None, "cloud.gpu": ("a100", "h100")}
    with pytest.raises(InputError, match="unknown field 'job.nope'"):
        parse_vary(["job.budget,job.nope"])
    with pytest.raises(InputError, match="not a positive integer"):
        parse_vary(["job.budget=0,8"])
    with pytest.raises(InputError, match="not allowed"):
        parse_vary(["cloud.gpu=tpu"])


def test_pareto_mask():
    values = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [1, 5]], dtype=float)
    assert pareto_mask(values).tolist() == [True, True, False, True, True]  # equal points both stay


def test_importable_from_the_package():
    assert dlora_sim.plan is plan


def test_phone_fleet_recommendation_meets_the_deadline_in_simulation():
    """Acceptance: the shipped phone fleet with a deadline gets a recommendation, and the
    simulator's result for it (a proportional sample of the fleet) meets the deadline."""
    deadline = 48 * 3600
    result = plan(FLEET, "48h", confirm=1, confirm_devices=40)
    assert result.status == "recommended", result.message
    rec = result.recommendation
    assert rec["meets"] and rec["sim_finished"] == rec["sim_devices"] >= 30
    assert rec["sim_time_s"] <= deadline and rec["fleet_time_s"] <= deadline
    assert result.points > 100 and 0 < len(result.front) <= result.valid_points
    # the grid was searched with the vectorised cost model, not point by point in the simulator
    assert result.estimate_s < 10
    # the recommendation is the cheapest confirmed, and every shown figure is a number
    for key in ("time_s", "device_energy_j", "bytes_per_device", "cloud_usd"):
        assert rec[key] > 0
    json.dumps(result.to_dict(), allow_nan=False)


def test_impossible_deadline_says_so_in_one_line_with_the_closest_point(capsys):
    code, out, _ = _run(["plan", str(FLEET), "--deadline", "10min", "--confirm", "0"], capsys)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith("no configuration meets a deadline of 10 min") and "the closest is" in first
    assert " at " in first and "$" in first


def test_json_and_output_folder(tmp_path, capsys):
    out_dir = tmp_path / "plan"
    code, out, _ = _run(["plan", str(FLEET), "--deadline", "2d", "--confirm", "0", "--json",
                         "--vary", "job.budget=8,16", "--vary", "cloud.count=1,8", "--max-usd", "1000",
                         "-o", str(out_dir)], capsys)
    assert code == 0
    record = json.loads(out)
    assert record["status"] == "unconfirmed" and record["constraints"]["max_usd"] == 1000
    assert record["space"]["job.budget"] == [8, 16] and record["space"]["cloud.count"] == [1, 8]
    assert all(c["cloud_usd"] <= 1000 and c["meets_deadline_estimate"] for c in record["candidates"])
    assert json.loads((out_dir / "plan.json").read_text()) == record
    page = (out_dir / "plan.html").read_text()
    assert "Pareto front" in page and "<script src=" not in page  # plotly.js inline: offline


@pytest.mark.parametrize("argv, message", [
    (["--deadline", "48"], "give a positive duration with a unit"),
    (["--deadline", "soon"], "give a positive duration with a unit"),
    (["--deadline", "48h", "--vary", "job.colour"], "unknown field 'job.colour'"),
    (["--deadline", "48h", "--strategies", "dlora-magic"], "unknown strategy 'dlora-magic'"),
    (["--deadline", "48h", "--min-accuracy", "62"], "must be in (0, 1]"),
])
def test_bad_input_is_one_line_and_exit_1(argv, message, capsys):
    code, out, err = _run(["plan", str(FLEET), *argv], capsys)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1


def test_version(capsys):
    code, out, _ = _run(["--version"], capsys)
    assert code == 0 and out.strip() == f"dlora-sim {dlora_sim.__version__}"


def test_confirming_on_dask_recommends_what_one_after_another_does(capsys):
    """Issue 16: the best few are confirmed on Dask when asked (here a loopback cluster of two
    processes, all candidates at once); the recommendation and every simulated figure are those
    of the sequential confirmation, which stops at the first candidate that meets."""
    pytest.importorskip("distributed")
    args = dict(confirm=3, confirm_devices=40, vary=["job.budget=4,8,16", "job.exchange"])
    alone = plan(FLEET, "48h", **args)
    lines: list[str] = []
    on_dask = plan(FLEET, "48h", workers=2, progress=lines.append, **args)
    assert lines == ["simulating 3 candidates at once on Dask"]
    assert on_dask.status == alone.status == "recommended"

    def figures(p):
        return [{k: v for k, v in c.items() if k != "sim_wall_s"} for c in p.confirmed]

    assert figures(on_dask) == figures(alone)


@pytest.mark.parametrize("argv, message", [
    (["--scheduler", "http://host:1"], "--scheduler http://host:1: unsupported scheme 'http'"),
    (["--tls-ca-file", "ca.pem"], "--tls-ca-file: only used with a tls:// --scheduler"),
])
def test_bad_dask_options_are_one_line(argv, message, capsys):
    code, _, err = _run(["plan", str(FLEET), "--deadline", "48h", "--confirm-devices", "20", *argv], capsys)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1
