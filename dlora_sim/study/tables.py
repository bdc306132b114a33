"""Views of a comparison: markdown tables for the READMEs and plain dicts for ``--json``.

Accuracies and differences are shown in percentage points. The interval quoted is the two-way
bootstrap (seeds and test examples resampled together), the one that says what a fresh seed on
a fresh test set would show; the seed-only interval is shown beside it because with few seeds
it is the one that grows.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlora_sim.study.paired import ArmSummary, Comparison
from dlora_sim.study.stats import Interval

__all__ = ["arms_markdown", "comparisons_markdown", "summary_markdown", "study_markdown", "readme_block", "as_json"]


def _pts(interval: Interval, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{100 * interval.estimate:{sign}.1f} [{100 * interval.low:{sign}.1f}, {100 * interval.high:{sign}.1f}]"


def _p(value: float) -> str:
    return "1" if value >= 0.9995 else (f"{value:.3f}" if value >= 0.001 else f"{value:.0e}")


def _budget(variant: str, budget: int) -> str:
    return "–" if variant in ("all", "head-only") else str(budget)


def arms_markdown(arms: list[ArmSummary]) -> str:
    """One row per setting, budget and arm: mean test accuracy with its 95 % interval."""
    lines = ["| setting | B | arm | seeds | test acc % [95% CI] | per-seed min–max | trainable params | swaps/round |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for a in arms:
        lo, hi = 100 * min(a.per_seed), 100 * max(a.per_seed)
        lines.append(f"| {a.setting.label()} | {_budget(a.variant, a.budget)} | {a.variant} | {len(a.seeds)} | "
                     f"{_pts(a.accuracy)} | {lo:.1f}–{hi:.1f} | {a.trainable_params:,} | {a.swaps_per_round:.2f} |")
    return "\n".join(lines) + "\n"


def comparisons_markdown(rows: list[Comparison]) -> str:
    """One row per arm minus baseline: paired difference, its intervals, wins/losses, McNemar."""
    lines = ["| setting | B | arm − baseline | seeds | Δ points [95% CI] | seed-only CI | per-seed Δ > 0 | "
             "right only in arm / only in baseline | McNemar p |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for c in rows:
        seed_ci = c.intervals.seeds
        ahead = sum(d > 0 for d in c.per_seed)
        lines.append(f"| {c.setting.label()} | {c.budget} | {c.variant} − {c.baseline} | {len(c.seeds)} | "
                     f"{_pts(c.intervals.both, signed=True)} | [{100 * seed_ci.low:+.1f}, {100 * seed_ci.high:+.1f}] | "
                     f"{ahead}/{len(c.per_seed)} | {c.arm_only} / {c.baseline_only} | {_p(c.mcnemar_p)} |")
    return "\n".join(lines) + "\n"


def summary_markdown(arms: list[ArmSummary], rows: list[Comparison]) -> str:
    """One table per setting and budget: each arm's accuracy [95% CI] and its paired Δ [95% CI]
    to each baseline, side by side (the view the README quotes)."""
    baselines = list(dict.fromkeys(c.baseline for c in rows))
    delta = {(c.setting, c.budget, c.variant, c.baseline): c for c in rows}
    blocks = []
    for setting in dict.fromkeys(a.setting for a in arms):
        budgets = sorted({a.budget for a in arms if a.setting == setting and a.variant not in ("all", "head-only")})
        for budget in budgets or [None]:
            here = [a for a in arms if a.setting == setting and (a.variant in ("all", "head-only") or a.budget == budget)]
            title = f"**{setting.label()}, B = {budget}**" if budget is not None else f"**{setting.label()}**"
            lines = [title, "", "| arm | seeds | test acc % [95% CI] | " + " | ".join(f"Δ vs {b} [95% CI]" for b in baselines) + " |",
                     "|---|---:|---:|" + "---:|" * len(baselines)]
            for a in here:
                cells = []
                for b in baselines:
                    c = delta.get((setting, budget, a.variant, b))
                    cells.append("–" if c is None else f"{_pts(c.intervals.both, signed=True)}{' *' if c.intervals.both.excludes_zero() else ''}")
                lines.append(f"| {a.variant} | {len(a.seeds)} | {_pts(a.accuracy)} | " + " | ".join(cells) + " |")
            blocks.append("\n".join(lines) + "\n")
    note = ("Δ: paired difference in points (same seeds, same test examples), two-way bootstrap 95% interval "
            "over seeds and examples; * marks an interval that excludes 0.")
    return "\n".join(blocks) + "\n" + note + "\n"


def readme_block(directory, baselines: tuple[str, ...] = ("random", "static-random"), budget: int | None = None) -> str:
    """The study's summary table for README.md (``scripts/doc_figures.py`` can call this): each
    arm's accuracy with its interval and its paired difference to each baseline."""
    from pathlib import Path

    from dlora_sim.study.paired import compare_arms, load_runs, summarise_arms

    runs, _ = load_runs(Path(directory))
    arms = summarise_arms(runs)
    present = {r.variant for r in runs}
    rows = [row for b in baselines if b in present for row in compare_arms(runs, b, budget)]
    if budget is not None:
        arms = [a for a in arms if a.budget == budget or a.variant in ("all", "head-only")]
    return summary_markdown(arms, rows)


def study_markdown(arms: list[ArmSummary], rows: list[Comparison], command: str) -> str:
    """The summary, both detailed tables, the reading notes and the command (a README block)."""
    n_examples = sorted({c.n_examples for c in rows} | {a.setting.n_test for a in arms})
    return "\n".join([
        summary_markdown(arms, rows),
        "Test accuracy per arm (mean over seeds; 95% interval from a two-way bootstrap over seeds and "
        f"test examples, {', '.join(map(str, n_examples))} examples):",
        "",
        arms_markdown(arms),
        "Paired differences (same seeds, same test examples). Δ: mean accuracy difference in points with "
        "the two-way 95% interval; seed-only CI: seeds resampled, examples fixed; per-seed Δ > 0: seeds "
        "where the arm was ahead; right only in arm / only in baseline: discordant (seed, example) pairs, "
        "pooled over seeds; McNemar p: exact two-sided test on those pooled pairs (it treats the pairs as "
        "independent, so with many seeds it is optimistic; trust the interval first).",
        "",
        comparisons_markdown(rows),
        f"Generated by `{command}`; do not edit by hand.",
        "",
    ])


def as_json(arms: list[ArmSummary], rows: list[Comparison], baselines: list[str]) -> dict[str, Any]:
    """Everything the tables show, unrounded, as plain JSON-able values."""
    def setting(s) -> dict[str, Any]:
        return asdict(s)

    return {
        "baselines": list(baselines),
        "arms": [{"setting": setting(a.setting), "variant": a.variant, "budget": a.budget, "seeds": list(a.seeds),
                  "accuracy": a.accuracy.as_dict(), "per_seed": list(a.per_seed),
                  "trainable_params": a.trainable_params, "swaps_per_round": a.swaps_per_round} for a in arms],
        "comparisons": [{"setting": setting(c.setting), "budget": c.budget, "variant": c.variant,
                         "baseline": c.baseline, "seeds": list(c.seeds), "n_examples": c.n_examples,
                         "per_seed": list(c.per_seed),
                         "difference": {"both": c.intervals.both.as_dict(), "seeds": c.intervals.seeds.as_dict(),
                                        "examples": c.intervals.examples.as_dict()},
                         "arm_only": c.arm_only, "baseline_only": c.baseline_only,
                         "mcnemar_p": c.mcnemar_p, "per_seed_p": list(c.per_seed_p)} for c in rows],
    }
