"""Device capacity traces, the fleet drawn from them, and FedScale's pickles read as plain data."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from _sim_scenarios import REPO, small

from dlora_sim.cli import main
from dlora_sim.errors import InputError
from dlora_sim.sim.engine import build_devices
from dlora_sim.traces.capacity import load_capacity
from dlora_sim.traces.fedscale import load_plain

SHIPPED = REPO / "scenarios" / "traces" / "synthetic-phones.csv"
HEADER = "device,flops_per_s,memory_gb,up_mbps,down_mbps\n"


def _write(tmp_path: Path, text: str, name: str = "cap.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_synthetic_trace_is_what_its_script_writes():
    """scenarios/traces/synthetic-phones.csv is reproduced byte for byte by its generator."""
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    from make_synthetic_traces import synthetic_phones

    assert SHIPPED.read_text() == synthetic_phones()
    assert len(load_capacity(SHIPPED)) == 200


def test_a_reference_sample_time_converts_through_the_cost_model(tmp_path):
    """A device that takes t s per MiniLM sample computes FLOPs(sample)/t: a row given either way agrees."""
    from dlora_sim.cost import JobSpec, PeftSpec, step_cost

    flops = step_cost(JobSpec(model="minilm-l6", peft=PeftSpec("lora"), batch=1, seq_len=64, budget=1),
                      "edge-only").edge_flops
    path = _write(tmp_path, "device,sample_s,ref_model,ref_seq_len,flops_per_s,memory_gb,up_mbps,down_mbps\n"
                            "a,0.5,minilm-l6,64,,4,5,20\n"
                            f"b,,,,{flops / 0.5},4,5,20\n")
    a, b = load_capacity(path)
    assert a.flops_per_s == pytest.approx(b.flops_per_s) and a.up_bps == 5e6 and a.memory_bytes == 4e9


@pytest.mark.parametrize("body, words", [
    ("a,1e12,4,5\n", "line 2: down_mbps"),  # a missing field
    ("a,fast,4,5,20\n", "line 2: flops_per_s: 'fast' is not a number"),
    ("a,1e12,4,5,20\na,1e12,4,5,20\n", "line 3: device: 'a' appears twice"),
    ("a,1e12,4,0,20\n", "line 2: up_mbps: 0 is outside"),
    ("a,inf,4,5,20\n", "line 2: flops_per_s"),
])
def test_a_broken_row_is_one_line_naming_file_row_and_column(tmp_path, body, words):
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(ValueError) as caught:
        load_capacity(path)
    assert str(caught.value).startswith(str(path)) and words in str(caught.value)


def test_a_group_draws_its_devices_from_the_trace_deterministically():
    """Every device of a traced group is a trace row (speed, memory, bandwidth), the same each build."""
    scenario = small({"fleet.groups.0.count": 12, "fleet.groups.0.capacity_trace": str(SHIPPED)})
    rows = {(r.flops_per_s, r.memory_bytes, r.up_bps) for r in load_capacity(SHIPPED)}
    devices = build_devices(scenario)
    assert all((d.flops_per_s, d.memory_bytes, d.up_bytes_per_s * 8) in rows for d in devices)
    assert len({d.flops_per_s for d in devices}) > 1
    assert build_devices(scenario) == devices


def test_a_broken_trace_names_the_scenario_field(tmp_path):
    path = _write(tmp_path, HEADER + "a,1e12,4,5\n")
    with pytest.raises(InputError, match=r"fleet\.groups\.0\.capacity_trace"):
        small({"fleet.groups.0.capacity_trace": str(path)})


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    """The restricted unpickler builds plain data only: a pickle calling os.system is one line."""
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"1": _Boom()}))
    with pytest.raises(ValueError, match="refused"):
        load_plain(path)


def test_fedscale_traces_convert_into_our_formats(tmp_path, capsys):
    """FedScale's capacity and behaviour dicts become a capacity and an availability trace."""
    cap, behave = tmp_path / "cap.pkl", tmp_path / "behave.pkl"
    cap.write_bytes(pickle.dumps({1: {"computation": 120.0, "communication": 8000.0},
                                  2: {"computation": 60.0, "communication": 20000.0}}))
    behave.write_bytes(pickle.dumps({1: {"active": [0, 500], "inactive": [100, 900], "finish_time": 900}}))
    for argv in (["traces", "fedscale-capacity", str(cap), "-o", str(tmp_path / "cap.csv")],
                 ["traces", "fedscale-behave", str(behave), "-o", str(tmp_path / "on.csv")]):
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code in (0, None)
    devices = load_capacity(tmp_path / "cap.csv")
    assert [d.device for d in devices] == ["1", "2"] and devices[0].up_bps == 8e6
    assert (tmp_path / "on.csv").read_text().splitlines() == ["device,start_s,end_s", "1,0,100", "1,500,900"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["traces", "fedscale-behave", str(tmp_path / "cap.csv"), "-o", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert done.value.code == 1 and len(err.strip().splitlines()) == 1 and not (tmp_path / "x.csv").exists()
