"""``dlora-sim profiles table``: the accuracy/overhead table of a folder of profiles.

The table in ``profiles/README.md`` is produced by this command, never typed by hand: it reads
every ``*.json`` profile in the folder (validated by :func:`dlora_sim.profile.load_profile`),
groups runs that differ only by seed, and reports accuracy as the mean with the min–max range
over seeds (with two seeds a standard deviation says little, the range says what happened).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlora_sim.cli.app import app
from dlora_sim.cli.narrow import print_table
from dlora_sim.errors import InputError
from dlora_sim.io import atomic_write_text
from dlora_sim.profile import Profile, churn_series, load_profile

__all__ = ["GroupRow", "group_profiles", "load_folder", "markdown_table", "replace_between_markers", "settings_label"]

START_MARKER = "<!-- table:start -->"
END_MARKER = "<!-- table:end -->"
ARM_ORDER = ("all", "head-only", "kr", "kill-only", "random", "static-topB", "static-random")
HEADERS = (
    "task", "peft", "arm", "B/N", "KR settings", "seeds", "test acc % mean [min–max]", "dev acc % mean",
    "trainable params", "swaps/round", "KR ms/step", "KR % of step", "KR MFLOP/step", "steps",
)

profiles_app = typer.Typer(help="Inspect training profiles (the files `dlora-sim profile` writes).", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")


@dataclass(frozen=True)
class GroupRow:
    """Runs that share (task, PEFT method, arm, budget), summarised over their seeds."""

    task: str
    peft: str
    arm: str
    budget: int
    n_modules: int
    settings: str
    seeds: tuple[int, ...]
    test_accuracy: tuple[float, ...]
    dev_accuracy: tuple[float, ...]
    trainable_params: int
    swaps_per_round: float
    kr_s_per_step: float
    kr_step_fraction: float
    kr_flops_per_step: float
    steps: tuple[int, ...]

    def cells(self) -> list[str]:
        """The row as display strings, in :data:`HEADERS` order."""
        test = 100 * np.array(self.test_accuracy)
        steps = f"{min(self.steps)}" if len(set(self.steps)) == 1 else f"{min(self.steps)}–{max(self.steps)}"
        return [
            self.task,
            self.peft,
            self.arm,
            f"{self.budget}/{self.n_modules}",
            self.settings,
            str(len(self.seeds)),
            f"{test.mean():.1f} [{test.min():.1f}–{test.max():.1f}]",
            f"{100 * np.mean(self.dev_accuracy):.1f}",
            f"{self.trainable_params:,}",
            f"{self.swaps_per_round:.2f}",
            f"{1e3 * self.kr_s_per_step:.2f}",
            f"{100 * self.kr_step_fraction:.1f}",
            f"{self.kr_flops_per_step / 1e6:.1f}",
            steps,
        ]


def load_folder(directory: Path) -> list[Profile]:
    """Every ``*.json`` profile directly in ``directory``, sorted by file name.

    Raises:
        InputError: the folder is missing or holds no profile; a file is not a valid profile.
    """
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder of profiles")
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise InputError(f"{directory}: no profile files (*.json) in this folder")
    return [load_profile(path) for path in paths]


def _swaps_per_round(profile: Profile) -> float:
    """Mean revivals per round after the cut to B (how much of the budget is re-drawn)."""
    _, revivals = churn_series(profile)
    sizes = np.array([len(row) for row in profile.traces.active])
    after_cut = np.flatnonzero(sizes == profile.setup.budget)
    steady = after_cut[1:] if after_cut.size else after_cut  # the cut round itself revives nothing
    return float(revivals[steady].mean()) if steady.size else 0.0


def settings_label(profile: Profile) -> str:
    """The KR settings that shape this arm's training, compactly; runs group only when equal.

    Arm ``all`` ignores KR; ``random`` depends on the window and warm-up; the score-driven arms
    add their score and normalisation; ``kr`` adds calibration, hysteresis, pressure and smoothing.
    """
    kr, arm = profile.setup.kr, profile.setup.arm
    if arm == "all":
        return "-"
    parts = [f"w{kr.window_steps}", f"wu{kr.warmup_rounds}"]
    if arm in ("kr", "kill-only", "static-topB"):
        parts.append(f"{kr.score}/{kr.normalisation}")
    if arm == "kill-only":
        parts.append(f"keep{kr.kill_keep_fraction:g}")
    if arm == "kr":
        parts += [f"{kr.probe_calibration}/{kr.probe}", f"h{kr.hysteresis:g}", f"p{kr.revival_pressure:g}"]
        if kr.ema:
            parts.append(f"ema{kr.ema:g}")
    return " ".join(parts)


def group_profiles(profiles: list[Profile]) -> list[GroupRow]:
    """Group runs that differ only by seed and summarise them; deterministic order.

    The key is (task, PEFT method, arm, budget, steps, KR settings), so runs trained with
    different settings are never averaged together.
    """
    groups: dict[tuple[str, str, str, int, int, str], list[Profile]] = {}
    for p in profiles:
        budget = p.n_modules if p.setup.arm == "all" else p.setup.budget
        key = (p.setup.task, p.peft.method, p.setup.arm, budget, p.setup.steps, settings_label(p))
        groups.setdefault(key, []).append(p)
    rows = []
    for (task, peft, arm, budget, _, settings), members in groups.items():
        members.sort(key=lambda p: p.setup.seed)
        kr_s = [p.kr_overhead.norm_s_per_step + p.kr_overhead.probe_s_per_step for p in members]
        step_s = [np.mean(p.traces.step_time_s) if p.traces.step_time_s else np.nan for p in members]
        rows.append(GroupRow(
            task=task, peft=peft, arm=arm, budget=budget, n_modules=members[0].n_modules, settings=settings,
            seeds=tuple(p.setup.seed for p in members),
            test_accuracy=tuple(p.result.test_accuracy for p in members),
            dev_accuracy=tuple(p.result.dev_accuracy for p in members),
            trainable_params=int(round(np.mean([p.result.trainable_params for p in members]))),
            swaps_per_round=float(np.mean([_swaps_per_round(p) for p in members])),
            kr_s_per_step=float(np.mean(kr_s)),
            kr_step_fraction=float(np.nanmean(np.array(kr_s) / np.array(step_s))) if not np.isnan(step_s).all() else 0.0,
            kr_flops_per_step=float(np.mean([p.kr_overhead.norm_flops_per_step + p.kr_overhead.probe_flops_per_step for p in members])),
            steps=tuple(p.setup.steps for p in members),
        ))
    arm_rank = {arm: i for i, arm in enumerate(ARM_ORDER)}
    rows.sort(key=lambda r: (r.task, r.peft, arm_rank.get(r.arm, len(ARM_ORDER)), r.budget, r.steps, r.settings))
    return rows


def markdown_table(rows: list[GroupRow], command: str) -> str:
    """The rows as a GitHub markdown table, with a note on the spread and the producing command."""
    lines = [
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i < 3 or i == 4 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines += [
        "",
        "Accuracy: mean over seeds with the [min–max] range. trainable params: the task head plus the "
        "modules active in each step, averaged over the steps. swaps/round: modules revived (and as "
        "many killed) per KR round after the cut to B. KR settings: w window steps, wu warm-up "
        "rounds, score/normalisation, calibration/probe, h hysteresis, p revival pressure "
        "(docs/kr.md). KR overhead: norm computation plus probe "
        "batches, averaged per training step, in time and FLOPs.",
        "",
        f"Generated by `{command}`; do not edit by hand.",
    ]
    return "\n".join(lines) + "\n"


def replace_between_markers(document: str, block: str, where: str,
                            start: str = START_MARKER, end: str = END_MARKER) -> str:
    """Put ``block`` between the markers, keeping the rest; append the markers if absent.

    ``start``/``end`` default to the table markers; another pair lets one file hold several
    generated blocks (``profiles compare`` writes its own).

    Raises:
        InputError: the markers are present but broken (one missing, repeated, or out of order).
    """
    starts, ends = document.count(start), document.count(end)
    if starts == ends == 0:
        separator = "" if not document or document.endswith("\n\n") else ("\n" if document.endswith("\n") else "\n\n")
        return f"{document}{separator}{start}\n{block}{end}\n"
    head, _, rest = document.partition(start)
    _, _, tail = rest.partition(end)
    if starts != 1 or ends != 1 or end in head:
        raise InputError(f"{where}: needs exactly one '{start}' followed by one '{end}'")
    return f"{head}{start}\n{block}{end}{tail}"


@profiles_app.command("table")
def table(
    directory: Annotated[Path, typer.Argument(help="Folder holding profile files (*.json, not searched recursively).")] = Path("profiles"),
    write: Annotated[Path | None, typer.Option("--write", help="Also write the table as markdown into this file, between '<!-- table:start -->' and '<!-- table:end -->' (added at the end if missing); the rest of the file is kept.")] = None,
) -> None:
    """Print accuracy over seeds, trainable parameters and KR overhead per training setup.

    One row per task, PEFT method, arm, budget, steps and KR settings; accuracy is the mean over
    seeds with its min–max range.
    """
    rows = group_profiles(load_folder(directory))
    document = _document(write) if write is not None else ""  # refused before anything is printed
    view = Table(title=escape(f"Profiles in {directory} — accuracy mean [min–max] over seeds"))
    for i, header in enumerate(HEADERS):
        view.add_column(escape(header), justify="left" if i < 3 or i == 4 else "right")
    for row in rows:
        view.add_row(*(escape(cell) for cell in row.cells()))
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=240)  # piped or captured, width unknown: keep the 13 columns side by side
    print_table(console, view, heading_columns=4)  # stacked per group (task · PEFT · arm · B/N) when narrow
    if write is not None:
        command = f"dlora-sim profiles table {directory.as_posix()} --write {write.as_posix()}"
        try:
            atomic_write_text(write, replace_between_markers(document, markdown_table(rows, command), str(write)))
        except OSError as error:
            raise InputError(f"{write}: --write: cannot write ({error.strerror or error})") from None
        Console(stderr=True).print(f"wrote the table into {escape(str(write))}")


def _document(path: Path, start: str = START_MARKER, end: str = END_MARKER) -> str:
    """The markdown file the table goes into (a new one when missing), checked to be writable
    text: a folder or a file in another encoding is refused, not overwritten or mangled."""
    if path.is_dir():
        raise InputError(f"{path}: --write is a folder; give the markdown file to put the table in")
    if not path.exists():
        return "# Profiles\n\n"
    try:
        document = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: --write: not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                         f"{error.start}); convert it to UTF-8 first") from None
    except OSError as error:
        raise InputError(f"{path}: --write: cannot read ({error.strerror or error})") from None
    replace_between_markers(document, "", str(path), start, end)  # broken markers: refused now, not after printing
    return document


@profiles_app.command("curve")
def curve(
    directory: Annotated[Path, typer.Argument(help="Folder holding profiles written with `dlora-sim profile --eval-test` (*.json, not recursive).")] = Path("profiles/kr-study"),
    tolerance: Annotated[float, typer.Option(help="Plateau: the first step whose mean test accuracy is within this many points of the curve's best.")] = 1.0,
) -> None:
    """Accuracy against training steps (traces.test_eval) and where it plateaus.

    Runs of one task, PEFT method, arm, length and lr are averaged over seeds, step by step. When
    the folder also holds shorter runs of the same arm and seeds (whose test accuracy the curve
    reproduces at their length), the final gain over them is given with a paired two-way
    bootstrap interval.
    """
    from dlora_sim.study.curve import curve_markdown, gain_over_shorter, load_curves
    from dlora_sim.study.paired import load_runs

    if not 0 <= tolerance < 100:
        raise InputError(f"--tolerance must be in [0, 100) points, got {tolerance}")
    curves = load_curves(directory)
    if not curves:
        raise InputError(f"{directory}: no profile has traces.test_eval; make some with `dlora-sim profile --eval-test`")
    runs, _ = load_runs(directory)
    for c in curves:
        typer.echo(curve_markdown(c, tolerance / 100, gain_over_shorter(c, runs)))
