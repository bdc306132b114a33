"""``cost``, ``profiles table`` and the ``run`` summary at 80 columns: nothing longer, nothing cut to "…"."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from _sim_scenarios import BASE
from dlora_sim.cli import main
from dlora_sim.cli.narrow import print_table

REPO = Path(__file__).resolve().parents[1]


def _output(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code in (0, None)
    captured = capsys.readouterr()
    return captured.out


def _tiny_scenario(folder: Path) -> Path:
    """The small test scenario as a TOML file (a second of simulation)."""
    job, run, cloud = BASE["job"], BASE["run"], BASE["cloud"]
    path = folder / "tiny.toml"
    path.write_text(f"""name = "tiny"
[job]
model = "{job['model']}"
targets = ["q", "k", "v", "o"]
batch = {job['batch']}
seq_len = {job['seq_len']}
steps = {job['steps']}
budget = {job['budget']}
kr_interval_steps = {job['kr_interval_steps']}
profile = "{job['profile']}"
[[fleet.groups]]
name = "phones"
count = 2
device = "phone-mid"
link = "lte"
[cloud]
gpu = "{cloud['gpu']}"
count = 1
[run]
seed = {run['seed']}
horizon_s = {run['horizon_s']}
strategies = ["dlora-all", "dlora-kr"]
""")
    return path


def _commands(tmp_path: Path) -> dict[str, list[str]]:
    return {
        "cost": ["cost", "--model", "llama-7b", "--budget", "16", "--device", "phone-mid", "--link", "lte"],
        "profiles table": ["profiles", "table", str(REPO / "profiles")],
        "run": ["run", str(_tiny_scenario(tmp_path)), "-o", str(tmp_path / "out"), "--no-progress"],
    }


@pytest.mark.parametrize("name", ["cost", "profiles table", "run"])
def test_80_columns_nothing_longer_nothing_cut(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = _output(_commands(tmp_path)[name], capsys)
    lines = out.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert "…" not in out


def test_cost_whole_job_is_stacked_at_80_and_a_table_at_250(tmp_path, capsys, monkeypatch):
    """Narrow: one "header value" line per field under each strategy; wide: the table as before."""
    argv = _commands(tmp_path)["cost"]
    monkeypatch.setenv("COLUMNS", "80")
    narrow = _output(argv, capsys)
    assert any(line.split() == ["radio", "energy"] + line.split()[2:] for line in narrow.splitlines())
    monkeypatch.setenv("COLUMNS", "250")
    wide = _output(argv, capsys)
    header = next(line for line in wide.splitlines() if "radio energy" in line)
    assert "strategy" in header and "fits" in header and max(map(len, wide.splitlines())) > 80


def test_values_never_wrap_when_only_headers_need_to():
    """A table whose headers are too wide but whose values fit keeps every value on one line."""
    table = Table()
    for header in ("strategy", "a very long header for edge FLOPs", "another long header for bytes up"):
        table.add_column(header)
    table.add_row("dlora-static-random", "53.8 GFLOP", "1.62 GB")
    console = Console(width=50, record=True, file=open("/dev/null", "w"))
    print_table(console, table)
    text = console.export_text()
    assert "53.8 GFLOP" in text and "1.62 GB" in text and "dlora-static-random" in text
    assert max(map(len, text.splitlines())) <= 50
