"""First-run experience: every command and every option of `dlora-sim` explains itself in --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import typer.main

from dlora_sim.cli import app, main

CLI = Path(sys.executable).with_name("dlora-sim")


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")


def test_every_command_and_option_has_help():
    """No command lacks a description and no option or argument lacks help text."""
    root = typer.main.get_command(app)
    missing = []
    for path, command in _commands(root):
        if not (command.help or command.short_help):
            missing.append(f"{path}: no description")
        for param in command.params:
            if param.name == "help":
                continue
            if not getattr(param, "help", None):
                missing.append(f"{path} {param.name}: no help")
    assert missing == []


def test_sweep_and_dashboard_are_listed_in_top_level_help():
    """`dlora-sim --help` lists the sweep and dashboard commands with their one-line purpose."""
    out = subprocess.run([str(CLI), "--help"], capture_output=True, text=True, check=True).stdout
    assert "sweep" in out and "dashboard" in out


def test_bad_sweep_file_exits_1_with_one_line(tmp_path, capsys):
    """`dlora-sim sweep` on a broken spec prints one error line (file and field) and exits 1."""
    spec = tmp_path / "s.toml"
    spec.write_text('base = "missing.toml"\n')
    try:
        main(["sweep", str(spec), "-o", str(tmp_path / "out")])
    except SystemExit as done:
        assert done.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "base: scenario file" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_help_texts_survive_rich_markup():
    """No help text holds an unescaped '[' (rich would eat '[min–max]' as markup and print nothing)."""
    root = typer.main.get_command(app)
    bracketed = []
    for path, command in _commands(root):
        texts = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
        bracketed += [f"{path}: {text!r}" for text in texts if "[" in text.replace("\\[", "")]
    assert bracketed == []


def test_command_summaries_are_one_line():
    """Each command's summary (first docstring paragraph) is one line, so `dlora-sim --help` shows it unbroken."""
    root = typer.main.get_command(app)
    wrapped = [path for path, command in _commands(root) if "\n" in (command.help or "").strip().split("\n\n")[0]]
    assert wrapped == []
