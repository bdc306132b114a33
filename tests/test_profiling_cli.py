"""``dlora-sim profile`` end to end: a tiny run writes a profile; bad input is one line, exit 1."""

from __future__ import annotations

import pytest

from dlora_sim.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code, capsys.readouterr()


@pytest.mark.parametrize("argv,needle", [
    (["--task", "nope"], "unknown task 'nope'; allowed: definition-mc"),
    (["--arm", "bogus"], "arm must be one of all, kr"),
    (["--model", "llama-7b"], "unknown model 'llama-7b'; allowed: minilm-l6"),
    (["--peft", "prefix"], "unknown peft 'prefix'; allowed: lora, adapter, ia3"),
    (["--budget", "0"], "budget must be an integer >= 1"),
    (["--arm", "head-only"], "budget must be 0 with arm 'head-only'"),
    (["--threads", "0"], "--threads must be positive"),
])
def test_bad_input_is_one_line_and_exit_1(argv, needle, capsys, tmp_path):
    """Each mistake prints one 'error:' line naming the option, and nothing is written."""
    pytest.importorskip("torch")
    out = tmp_path / "p.json"
    code, captured = _run(["profile", "-o", str(out), *argv, "--steps", "1"], capsys)
    assert code == 1
    assert captured.err.strip().count("\n") == 0 and needle in captured.err
    assert not out.exists()


@pytest.mark.torch
def test_budget_above_module_count_is_an_input_error(capsys, tmp_path):
    """B larger than the PEFT module count (12 adapters) is refused with a one-line error."""
    pytest.importorskip("torch")
    code, captured = _run(["profile", "-o", str(tmp_path / "p.json"), "--peft", "adapter",
                           "--budget", "13", "--steps", "1"], capsys)
    assert code == 1 and "--budget 13 exceeds the 12 adapter modules" in captured.err


@pytest.mark.torch
def test_tiny_cli_run_writes_a_loadable_profile(capsys, tmp_path):
    """A 6-step IA3 run on definition-mc writes a profile that load_profile accepts."""
    pytest.importorskip("torch")
    from dlora_sim.profile import load_profile

    out = tmp_path / "p.json"
    main_args = ["profile", "-o", str(out), "--task", "definition-mc", "--peft", "ia3", "--budget", "2",
                 "--steps", "6", "--window", "2", "--batch", "2", "--train-limit", "12",
                 "--dev-limit", "4", "--test-limit", "4", "--eval-every", "3", "--no-progress"]
    try:
        main(main_args)
    except SystemExit as done:
        assert done.code in (0, None)
    profile = load_profile(out)
    assert profile.peft.method == "ia3" and len(profile.modules) == 18
    assert profile.setup.command is not None and len(profile.traces.loss) == 6
