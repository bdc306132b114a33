"""``dlora-sim fed``: real FedAvg of LoRA over simulated non-IID users, and the table of results.

``fed run`` trains one federated job (:mod:`dlora_sim.profiling.federated`) and writes its
result file; ``fed table`` reads a folder of them (validated by
:func:`dlora_sim.fed_record.load_fed_record`), groups runs that differ only by seed and prints
accuracy as the mean with its min–max range over seeds, next to what one user uploads as the
cost model's ``fed-lora`` counts it. With ``--baseline`` single-user profiles it adds the
difference to ordinary (one user, all data) training on the same task and test examples. The
table in ``profiles/federated/README.md`` is written by this command, never typed by hand.

torch is imported only when ``fed run`` runs, so ``fed table`` works without the training stack.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlora_sim.cli.app import app
from dlora_sim.cli.profiles import END_MARKER, START_MARKER, replace_between_markers
from dlora_sim.errors import InputError
from dlora_sim.fed_record import FedRecord, load_fed_record
from dlora_sim.io import atomic_write_text
from dlora_sim.profile import Profile, load_profile

__all__ = ["FedRow", "group_records", "load_records", "markdown_table"]

HEADERS = ("task", "users", "alpha", "label skew", "rounds × local steps", "seeds",
           "test acc % mean [min–max]", "acc % after round 1 / R/2 / R", "vs single-user (points)",
           "MB up per user per round", "MB up per user, job", "wall min")

fed_app = typer.Typer(help="Federated LoRA for real: FedAvg over simulated non-IID users, and its results.",
                      no_args_is_help=True)
app.add_typer(fed_app, name="fed")


@dataclass(frozen=True)
class Baseline:
    """Single-user profiles of one task (arm ``all``): the accuracy federated training gives up."""

    task: str
    files: tuple[str, ...]
    test_accuracy: tuple[float, ...]
    test_examples: int
    steps: int
    batch: int


@dataclass(frozen=True)
class FedRow:
    """Runs that share every setting but the seed, summarised over their seeds."""

    task: str
    users: int
    alpha: float
    label_skew: tuple[float, ...]
    rounds: int
    local_steps: int
    batch: int
    seeds: tuple[int, ...]
    test_accuracy: tuple[float, ...]
    round_accuracy: np.ndarray  # seeds × rounds
    test_examples: int
    mb_up_round: float
    mb_up_job: float
    wall_s: tuple[float, ...]

    def cells(self, baseline: Baseline | None) -> list[str]:
        """The row as display strings, in :data:`HEADERS` order."""
        test = 100 * np.array(self.test_accuracy)
        curve = 100 * self.round_accuracy.mean(0)
        marks = sorted({0, (self.rounds - 1) // 2, self.rounds - 1})
        if baseline is not None and baseline.test_examples == self.test_examples:
            delta = f"{test.mean() - 100 * np.mean(baseline.test_accuracy):+.1f}"
        else:
            delta = "-"
        return [
            self.task, str(self.users), f"{self.alpha:g}", f"{np.mean(self.label_skew):.2f}",
            f"{self.rounds} × {self.local_steps}", str(len(self.seeds)),
            f"{test.mean():.1f} [{test.min():.1f}–{test.max():.1f}]",
            " / ".join(f"{curve[i]:.1f}" for i in marks), delta,
            f"{self.mb_up_round:.2f}", f"{self.mb_up_job:.1f}", f"{np.mean(self.wall_s) / 60:.0f}",
        ]


def load_records(directory: Path) -> list[FedRecord]:
    """Every ``*.json`` federated result directly in ``directory``, sorted by file name.

    Raises:
        InputError: the folder is missing or holds no result file; a file is not a valid record.
    """
    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder of federated results")
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise InputError(f"{directory}: no federated result files (*.json) in this folder")
    return [load_fed_record(path) for path in paths]


def group_records(records: list[FedRecord]) -> list[FedRow]:
    """Group runs that differ only by seed; deterministic order (task, users, alpha, rounds).

    The key holds every setting that shapes the accuracy, so different set-ups never average.
    """
    groups: dict[tuple, list[FedRecord]] = {}
    for r in records:
        s = r.setup
        key = (s.task, s.users, r.split.alpha, s.rounds, s.local_steps, s.batch, s.lr, s.max_len,
               s.train_examples, s.test_examples, r.peft.rank, r.peft.alpha, tuple(r.peft.targets),
               r.cost.dtype_bytes)
        groups.setdefault(key, []).append(r)
    rows = []
    for key, members in sorted(groups.items(), key=lambda item: item[0][:5] + (str(item[0][5:]),)):
        members.sort(key=lambda r: r.setup.seed)
        first = members[0]
        rows.append(FedRow(
            task=first.setup.task, users=first.setup.users, alpha=first.split.alpha,
            label_skew=tuple(r.split.label_skew for r in members), rounds=first.setup.rounds,
            local_steps=first.setup.local_steps, batch=first.setup.batch,
            seeds=tuple(r.setup.seed for r in members),
            test_accuracy=tuple(r.result.test_accuracy for r in members),
            round_accuracy=np.array([r.result.round_accuracy for r in members]),
            test_examples=first.setup.test_examples, mb_up_round=first.cost.bytes_up_per_round / 1e6,
            mb_up_job=first.cost.job_bytes_up / 1e6, wall_s=tuple(r.result.wall_s for r in members)))
    return rows


def load_baselines(paths: list[Path]) -> dict[str, Baseline]:
    """Single-user profiles by task; each must be arm ``all`` LoRA, scored on a known test split.

    Raises:
        InputError: an invalid profile, or one that is not a single-user all-modules LoRA run.
    """
    by_task: dict[str, list[tuple[Path, Profile]]] = {}
    for path in paths:
        profile = load_profile(path)
        if profile.setup.arm != "all" or profile.peft.method != "lora":
            raise InputError(f"{path}: --baseline needs an arm 'all' LoRA profile, got arm "
                             f"{profile.setup.arm!r} {profile.peft.method}")
        by_task.setdefault(profile.setup.task, []).append((path, _test_examples(path, profile), profile))
    out = {}
    for task, members in by_task.items():
        sizes = {n for _, n, _ in members}
        if len(sizes) != 1:
            raise InputError(f"--baseline: the {task} profiles were scored on different test splits ({sorted(sizes)})")
        out[task] = Baseline(task=task, files=tuple(path.name for path, _, _ in members),
                             test_accuracy=tuple(p.result.test_accuracy for _, _, p in members),
                             test_examples=sizes.pop(), steps=members[0][2].setup.steps,
                             batch=members[0][2].setup.batch)
    return out


def _test_examples(path: Path, profile: Profile) -> int:
    """How many test examples a profile was scored on: its predictions' count, else (profiles
    written before predictions were recorded) the ``--test-limit`` of its recorded command, capped
    by the task's test split. Both runs must score the same examples for a difference to mean much.

    Raises:
        InputError: neither is recorded.
    """
    if profile.result.test_predictions:
        return len(profile.result.test_predictions)
    from dlora_sim.profiling.tasks import task_index

    full = task_index()[profile.setup.task]["sizes"]["test"]
    words = shlex.split(profile.setup.command or "")
    for i, word in enumerate(words):
        if word == "--test-limit" and i + 1 < len(words) and words[i + 1].isdigit():
            return min(int(words[i + 1]), full)
        if word.startswith("--test-limit=") and word.split("=", 1)[1].isdigit():
            return min(int(word.split("=", 1)[1]), full)
    if profile.setup.command:
        return full
    raise InputError(f"{path}: result.test_predictions: missing, and no setup.command to tell the test split's size")


def markdown_table(rows: list[FedRow], baselines: dict[str, Baseline], command: str) -> str:
    """The rows as a GitHub markdown table, the single-user references, and the producing command."""
    lines = ["| " + " | ".join(HEADERS) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADERS))) + "|"]
    lines += ["| " + " | ".join(row.cells(baselines.get(row.task))) + " |" for row in rows]
    lines.append("")
    for b in sorted(baselines.values(), key=lambda b: b.task):
        acc = 100 * np.array(b.test_accuracy)
        lines.append(f"Single-user reference, {b.task}: {acc.mean():.1f} [{acc.min():.1f}–{acc.max():.1f}] % "
                     f"over {len(acc)} seeds ({', '.join(b.files)}: one user, all training data, "
                     f"{b.steps} steps of batch {b.batch}, {b.test_examples} test examples).")
    lines += [
        "",
        "Accuracy of the global model on the shared test split: mean over seeds with the [min–max] range; "
        "the round columns are the seed mean after rounds 1, R/2 and R. vs single-user: the mean minus the "
        "single-user reference's mean, in points (only where both score the same test examples). Label "
        "skew: mean total-variation distance of a user's label mix from the pooled one (0 = IID). Bytes: "
        "what one user uploads, as the cost model's fed-lora counts it (the LoRA weights at the record's "
        "dtype_bytes; the job adds nothing else upward).",
        "",
        f"Generated by `{command}`; do not edit by hand.",
    ]
    return "\n".join(lines) + "\n"


@fed_app.command("run")
def run_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="Result JSON to write (atomically).")],
    task: Annotated[str, typer.Option(help="Classification task: noun-supersense or verb-supersense.")] = "noun-supersense",
    users: Annotated[int, typer.Option(help="Simulated users K.")] = 5,
    alpha: Annotated[float, typer.Option(help="Dirichlet concentration of the label split: 0.1 very non-IID, 100 near IID.")] = 0.1,
    rounds: Annotated[int, typer.Option(help="FedAvg rounds R.")] = 10,
    local_steps: Annotated[int, typer.Option(help="Local steps per user per round E (the cost model's fed_round_steps).")] = 15,
    batch: Annotated[int, typer.Option(help="Examples per local step.")] = 8,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (constant, fresh optimizer per round).")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of the split, new weights, batch streams and dropout.")] = 0,
    rank: Annotated[int, typer.Option(help="LoRA rank r.")] = 8,
    lora_alpha: Annotated[float, typer.Option(help="LoRA alpha (scaling alpha/r).")] = 16.0,
    lora_targets: Annotated[str, typer.Option(help="LoRA targets: attention (q,k,v,o) or attention+ffn.")] = "attention",
    max_len: Annotated[int, typer.Option(help="Token cap per row (dynamic padding).")] = 48,
    train_limit: Annotated[int | None, typer.Option(help="Use only the first N training examples.")] = None,
    test_limit: Annotated[int | None, typer.Option(help="Use only the first N test examples (the profiles use 600).")] = None,
    dtype_bytes: Annotated[int, typer.Option(help="Bytes per exchanged value for the cost (4: the run's float32).")] = 4,
    threads: Annotated[int, typer.Option(help="torch threads; keep 1 on a shared machine.")] = 1,
    progress: Annotated[bool, typer.Option(help="Print one line per round on stderr.")] = True,
) -> None:
    """Train LoRA by FedAvg over K simulated users with a Dirichlet non-IID split; write one result file."""
    if threads <= 0:
        raise InputError(f"--threads must be positive, got {threads}")
    if output.is_dir():
        raise InputError(f"{output}: --output is a folder; give the result file to write")
    try:
        from dlora_sim.profiling.fed_runner import run_fed_record
        from dlora_sim.profiling.federated import FedConfig
        from dlora_sim.profiling.models import PeftSpecLocal
    except ImportError as error:
        raise InputError(f"'fed run' needs the [profile] extra (torch, transformers, peft): {error}") from None
    from dlora_sim.profiling.tasks import task_names

    if task not in task_names():
        raise InputError(f"unknown task '{task}'; allowed: {', '.join(task_names())}")
    config = FedConfig(task=task, peft=PeftSpecLocal(method="lora", rank=rank, alpha=lora_alpha, targets=lora_targets),
                       users=users, alpha=alpha, rounds=rounds, local_steps=local_steps, batch=batch, lr=lr,
                       seed=seed, max_len=max_len, train_limit=train_limit, test_limit=test_limit)
    command = "dlora-sim " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    err = Console(stderr=True)

    def report(r) -> None:
        if progress:
            losses = ", ".join(f"{np.mean(u):.2f}" for u in r.losses)
            err.print(f"round {r.round}/{rounds}: test acc {100 * r.accuracy:.1f} %, local loss per user {losses}",
                      highlight=False)

    try:
        record = run_fed_record(config, output, dtype_bytes=dtype_bytes, threads=threads, command=command,
                                on_round=report)
    except OSError as error:
        raise InputError(f"{output}: cannot write ({error.strerror or error})") from None
    typer.echo(f"{output}: test accuracy {record.result.test_accuracy:.4f} after {rounds} round{'s' if rounds != 1 else ''}, "
               f"label skew {record.split.label_skew:.2f}, {record.result.wall_s:.0f} s")


@fed_app.command("table")
def table_command(
    directory: Annotated[Path, typer.Argument(help="Folder holding federated result files (*.json, not searched recursively).")] = Path("profiles/federated"),
    baseline: Annotated[list[Path] | None, typer.Option("--baseline", help="Single-user arm 'all' LoRA profile to compare with (repeat for seeds).")] = None,
    write: Annotated[Path | None, typer.Option("--write", help="Also write the table as markdown into this file, between '<!-- table:start -->' and '<!-- table:end -->' (added at the end if missing); the rest of the file is kept.")] = None,
) -> None:
    """Print federated accuracy over seeds next to one user's upload, per set-up."""
    rows = group_records(load_records(directory))
    baselines = load_baselines(list(baseline or []))
    document = _document(write) if write is not None else ""  # refused before anything is printed
    view = Table(title=escape(f"Federated LoRA results in {directory} — accuracy mean [min–max] over seeds"))
    for i, header in enumerate(HEADERS):
        view.add_column(escape(header), justify="left" if i == 0 else "right")
    for row in rows:
        view.add_row(*(escape(cell) for cell in row.cells(baselines.get(row.task))))
    console = Console()
    if not console.is_terminal:
        console = Console(width=240)
    console.print(view)
    if write is not None:
        parts = ["dlora-sim fed table", directory.as_posix(), *(f"--baseline {p.as_posix()}" for p in baseline or []),
                 f"--write {write.as_posix()}"]
        try:
            atomic_write_text(write, replace_between_markers(document, markdown_table(rows, baselines, " ".join(parts)),
                                                             str(write)))
        except OSError as error:
            raise InputError(f"{write}: --write: cannot write ({error.strerror or error})") from None
        Console(stderr=True).print(f"wrote the table into {escape(str(write))}")


def _document(path: Path) -> str:
    """The markdown file the table goes into (a short new one when missing), checked to be
    writable UTF-8 text with intact markers before anything is printed."""
    if path.is_dir():
        raise InputError(f"{path}: --write is a folder; give the markdown file to put the table in")
    if not path.exists():
        return "# Federated LoRA results\n\n"
    try:
        document = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: --write: not UTF-8 text (offset {error.start}); convert it to UTF-8 first") from None
    except OSError as error:
        raise InputError(f"{path}: --write: cannot read ({error.strerror or error})") from None
    replace_between_markers(document, "", str(path), START_MARKER, END_MARKER)
    return document
