"""``dlora-sim profile --rerun``: a committed profile's options rebuilt exactly, and a real rerun."""

from __future__ import annotations

import json
import shlex
import warnings
from pathlib import Path

import pytest
import typer

from dlora_sim.cli import main
from dlora_sim.cli.app import app
from dlora_sim.cli.profile_rerun import command_line, rerun_options
from dlora_sim.errors import InputError

PROFILES = Path(__file__).resolve().parents[1] / "profiles"
COMMITTED = PROFILES / "noun-supersense-lora-kr-b3-s0.json"


def _profile_command():
    return typer.main.get_command(app).commands["profile"]


def _rerun(path: Path, out: Path, *extra: str) -> dict:
    command = _profile_command()
    ctx = command.make_context("profile", ["--rerun", str(path), "-o", str(out), *extra])
    return rerun_options(path, ctx.params, ctx)


def _run(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code, capsys.readouterr()


def test_committed_profile_options_are_rebuilt_exactly(tmp_path):
    """Every value the committed file records, and nothing from today's defaults where it differs."""
    options = _rerun(COMMITTED, tmp_path / "again.json")
    recorded = json.loads(COMMITTED.read_text())["setup"]
    assert {k: options[k] for k in ("task", "peft", "arm", "budget", "steps", "seed", "lr", "batch", "window",
                                    "warmup_rounds", "rank", "dev_limit", "test_limit", "eval_every")} == {
        "task": "noun-supersense", "peft": "lora", "arm": "kr", "budget": 3, "steps": 150, "seed": 0,
        "lr": recorded["lr"], "batch": 8, "window": 15, "warmup_rounds": 1, "rank": 8,
        "dev_limit": 200, "test_limit": 600, "eval_every": 75}
    assert options["score"] == recorded["kr"]["score"] and options["ema"] == recorded["kr"]["ema"]
    assert options["output"] == tmp_path / "again.json" and options["rerun"] is None
    # the full command line it will record parses back to the very same options
    line = command_line(options, _profile_command())
    again = _profile_command().make_context("profile", shlex.split(line)[2:]).params
    assert {k: v for k, v in again.items() if k != "progress"} == {k: v for k, v in options.items() if k != "progress"}
    assert "--batch 8" in line and "--window 15" in line and "--dev-limit 200" in line


def test_an_option_left_out_of_the_command_comes_from_the_setup(tmp_path):
    """Issue 16's README case: a command without --batch/--window trains with the recorded ones."""
    data = json.loads(COMMITTED.read_text())
    data["setup"]["command"] = data["setup"]["command"].replace(" --batch 8", "").replace(" --window 15", "")
    edited = tmp_path / "p.json"
    edited.write_text(json.dumps(data))
    options = _rerun(edited, tmp_path / "out.json")
    assert options["batch"] == 8 and options["window"] == 15


def test_command_contradicting_the_setup_is_refused(tmp_path):
    data = json.loads(COMMITTED.read_text())
    data["setup"]["command"] = data["setup"]["command"].replace("--batch 8", "--batch 4")
    edited = tmp_path / "p.json"
    edited.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"gives --batch 4 but the set-up records 8"):
        _rerun(edited, tmp_path / "out.json")


def test_rerun_with_a_training_option_is_one_line(tmp_path, capsys):
    code, captured = _run(["profile", "--rerun", str(COMMITTED), "--steps", "10", "-o", str(tmp_path / "x.json")], capsys)
    assert code == 1
    assert captured.err.strip().splitlines() == [
        f"error: --rerun repeats the options recorded in {COMMITTED}; remove --steps "
        "(only -o, --threads and --progress may change)"]
    assert not (tmp_path / "x.json").exists()


@pytest.mark.torch
def test_a_real_rerun_repeats_the_run(tmp_path):
    """A 4-step LoRA run and its rerun: the same losses, active sets and test accuracy, and no
    FutureWarning printed (transformers' deprecation that peft triggered on every run)."""
    pytest.importorskip("torch")
    from dlora_sim.profile import load_profile

    first = tmp_path / "first.json"
    args = ["profile", "-o", str(first), "--task", "definition-mc", "--peft", "lora", "--budget", "2",
            "--steps", "4", "--window", "2", "--batch", "2", "--train-limit", "8", "--dev-limit", "4",
            "--test-limit", "4", "--eval-every", "2", "--seed", "5", "--no-progress"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for argv in (args, ["profile", "--rerun", str(first), "--no-progress"]):
            try:
                main(argv)
            except SystemExit as done:
                assert done.code in (0, None)
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []
    a, b = load_profile(first), load_profile(tmp_path / "first-rerun.json")
    assert b.setup.command == a.setup.command.replace(str(first), str(tmp_path / "first-rerun.json"))
    assert "--batch 2" in a.setup.command and "--lr" in a.setup.command  # every option explicit
    assert b.traces.loss == a.traces.loss and b.traces.active == a.traces.active
    assert b.result.test_accuracy == a.result.test_accuracy


def _readme_commands() -> list[str]:
    """The README's command list (the fenced block under "## The commands"), one command a
    string, continuation lines joined and trailing comments kept."""
    text = (PROFILES.parent / "README.md").read_text(encoding="utf-8")
    block = text.split("## The commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return block.replace("\\\n", " ").splitlines()


def test_the_readme_profile_command_reproduces_the_committed_profile_it_names(tmp_path):
    """Issue 16: the README's example trains exactly as the profile it says it equals (every
    option the set-up records: batch, window, KR constants, limits), and its ``--rerun`` line
    repeats a committed profile."""
    lines = [line for line in _readme_commands() if line.startswith("dlora-sim profile ")]
    example = next(line for line in lines if "--rerun" not in line)
    named = PROFILES / example.split("# = profiles/", 1)[1].strip()
    words = shlex.split(example.split("#", 1)[0])[2:]
    readme = _profile_command().make_context("profile", words).params
    recorded = _rerun(named, tmp_path / "again.json")
    place = ("output", "threads", "progress", "rerun")
    assert {k: v for k, v in readme.items() if k not in place} == {k: v for k, v in recorded.items() if k not in place}
    rerun = next(line for line in lines if "--rerun" in line)
    assert (PROFILES.parent / shlex.split(rerun.split("#", 1)[0])[3]).is_file()


def test_the_readme_lists_compare_and_rerun():
    """The command list shows ``compare RUN_A RUN_B`` and ``profile --rerun`` (issue 16)."""
    commands = _readme_commands()
    assert any(line.startswith("dlora-sim compare results/") for line in commands)
    assert any(line.startswith("dlora-sim profile --rerun profiles/") for line in commands)
