"""``dlora-sim profiles compare``: paired differences between KR arms over seeds (issue 11).

(``dlora-sim compare``, which compares results folders of runs, is :mod:`dlora_sim.cli.compare_runs`.)

The statistics live in :mod:`dlora_sim.study`; this module only reads options, prints, and
writes the markdown block between its own markers (so a README can also hold the
``profiles table`` block).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlora_sim.cli.profiles import _document, profiles_app, replace_between_markers
from dlora_sim.errors import InputError
from dlora_sim.io import atomic_write_text

COMPARE_START = "<!-- compare:start -->"
COMPARE_END = "<!-- compare:end -->"


@profiles_app.command("compare")
def compare(
    directory: Annotated[Path, typer.Argument(help="Folder holding profile files with per-example predictions (*.json, not recursive).")] = Path("profiles/kr-study"),
    baseline: Annotated[list[str] | None, typer.Option(help="The arm the others are compared with, e.g. random, static-random, all, kr:update-norm-diff; repeat for several (default random).")] = None,
    arm: Annotated[list[str] | None, typer.Option(help="Compare only these arms with the baseline(s); repeatable (default: every arm).")] = None,
    budget: Annotated[int | None, typer.Option(help="Only this budget B (budget-free arms all and head-only stay).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples per interval.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap (the output is deterministic given it).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
    write: Annotated[Path | None, typer.Option("--write", help=f"Also write both tables as markdown into this file, between '{COMPARE_START}' and '{COMPARE_END}' (added at the end if missing); the rest of the file is kept.")] = None,
) -> None:
    """Paired differences between arms trained on the same seeds and scored on the same examples.

    For every setting (task, PEFT, steps, lr, batch, window) and budget, each arm's mean test
    accuracy with a 95 % bootstrap interval, and each arm minus the baseline: the mean
    difference with paired bootstrap intervals (two-way over seeds and test examples; seeds
    only; examples only), the discordant pairs and McNemar's exact p-value.
    """
    from dlora_sim.study.paired import compare_arms, load_runs, summarise_arms
    from dlora_sim.study.tables import as_json as to_json, study_markdown

    if resamples < 100:
        raise InputError(f"--resamples must be >= 100 for a 95 % interval, got {resamples}")
    if seed < 0:
        raise InputError(f"--seed must be >= 0, got {seed}")
    document = _document(write, COMPARE_START, COMPARE_END) if write is not None else ""
    runs, skipped = load_runs(directory)
    if not runs:
        raise InputError(f"{directory}: no profile has result.test_predictions (schema 2); nothing to pair")
    baselines = baseline or ["random"]
    arms = summarise_arms(runs, resamples, seed)
    rows = [row for name in baselines for row in compare_arms(runs, name, budget, resamples, seed, only=arm)]
    if skipped:
        Console(stderr=True).print(f"skipped {len(skipped)} profile(s) without per-example predictions")
    if as_json:
        typer.echo(json.dumps(to_json(arms, rows, baselines), indent=2, sort_keys=True))
    else:
        _print(arms, rows, directory)
    if write is not None:
        command = f"dlora-sim profiles compare {directory.as_posix()}"
        command += "".join(f" --baseline {name}" for name in baselines)
        command += "".join(f" --arm {name}" for name in arm or [])
        command += f" --budget {budget}" if budget is not None else ""
        command += f" --write {write.as_posix()}"
        block = study_markdown(arms, rows, command)
        try:
            atomic_write_text(write, replace_between_markers(document, block, str(write), COMPARE_START, COMPARE_END))
        except OSError as error:
            raise InputError(f"{write}: --write: cannot write ({error.strerror or error})") from None
        Console(stderr=True).print(f"wrote the comparison into {escape(str(write))}")


def _print(arms, rows, directory: Path) -> None:
    console = Console() if Console().is_terminal else Console(width=220)
    view = Table(title=escape(f"Arms in {directory}: test accuracy % [95% CI]"))
    for header in ("setting", "B", "arm", "seeds", "acc % [95% CI]", "trainable", "swaps/round"):
        view.add_column(escape(header))
    for a in arms:
        b = "–" if a.variant in ("all", "head-only") else str(a.budget)
        view.add_row(escape(a.setting.label()), b, escape(a.variant), str(len(a.seeds)),
                     f"{100 * a.accuracy.estimate:.1f} [{100 * a.accuracy.low:.1f}, {100 * a.accuracy.high:.1f}]",
                     f"{a.trainable_params:,}", f"{a.swaps_per_round:.2f}")
    console.print(view)
    diff = Table(title=escape("Paired differences, points [95% CI two-way | seeds only], McNemar exact p"))
    for header in ("setting", "B", "arm − baseline", "seeds", "Δ [two-way]", "Δ [seeds]", "b / c", "p"):
        diff.add_column(escape(header))
    for c in rows:
        both, seeds = c.intervals.both, c.intervals.seeds
        diff.add_row(escape(c.setting.label()), str(c.budget), escape(f"{c.variant} − {c.baseline}"), str(len(c.seeds)),
                     f"{100 * both.estimate:+.1f} [{100 * both.low:+.1f}, {100 * both.high:+.1f}]",
                     f"[{100 * seeds.low:+.1f}, {100 * seeds.high:+.1f}]", f"{c.arm_only} / {c.baseline_only}",
                     f"{c.mcnemar_p:.3g}")
    console.print(diff)
