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

__all__ = ["arms_markdown", "comparisons_markdown", "summary_markdown", "study_markdown", "readme_block", "as_json",
           "verdict", "verdict_markdown", "answer_markdown", "budget_markdown", "FEW_SEEDS"]

#: below this many seeds an interval's seed part is too narrow (marked † in the tables)
FEW_SEEDS = 5
#: the arms whose selection a score drives (KR and its relatives), the ones the verdict reads
SCORE_DRIVEN = ("kr", "kill-only", "static-topB")


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


def _seeds(n: int) -> str:
    return f"{n}{'†' if n < FEW_SEEDS else ''}"


def _delta(c: Comparison, arm_seeds: int | None = None) -> str:
    """A paired Δ with its interval, * when it excludes 0, and its seed count when the pairing
    used fewer seeds than the arm's row shows (e.g. ``all`` over 10 seeds, random over 3)."""
    cell = f"{_pts(c.intervals.both, signed=True)}{' *' if c.intervals.both.excludes_zero() else ''}"
    if arm_seeds is not None and len(c.seeds) != arm_seeds:
        cell += f" ({_seeds(len(c.seeds))} seeds)"
    return cell


FEW_SEEDS_NOTE = (f"† fewer than {FEW_SEEDS} seeds: the seed part of such an interval is too narrow (a bootstrap "
                  "over n seeds has few distinct resamples and shrinks their spread by √((n−1)/n)); read it as "
                  "indicative.")


def summary_markdown(arms: list[ArmSummary], rows: list[Comparison]) -> str:
    """One table per setting and budget: each arm's accuracy [95% CI] and its paired Δ [95% CI]
    to each baseline, side by side (the view the README quotes)."""
    baselines = list(dict.fromkeys(c.baseline for c in rows))
    delta = {(c.setting, c.budget, c.variant, c.baseline): c for c in rows}
    blocks = []
    few = False
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
                    cells.append("–" if c is None else _delta(c, len(a.seeds)))
                    few |= c is not None and len(c.seeds) < FEW_SEEDS
                few |= len(a.seeds) < FEW_SEEDS
                lines.append(f"| {a.variant} | {_seeds(len(a.seeds))} | {_pts(a.accuracy)} | " + " | ".join(cells) + " |")
            blocks.append("\n".join(lines) + "\n")
    note = ("Δ: paired difference in points (same seeds, same test examples), two-way bootstrap 95% interval "
            "over seeds and examples; * marks an interval that excludes 0; (n seeds): the pairing used only "
            "the seeds both arms have.")
    return "\n".join(blocks) + "\n" + note + (" " + FEW_SEEDS_NOTE if few else "") + "\n"


def verdict(c: Comparison) -> str:
    """What one paired difference says, in words: ahead, behind, or how much the interval leaves."""
    both = c.intervals.both
    if both.low > 0:
        return f"ahead by {100 * both.low:.1f}–{100 * both.high:.1f}"
    if both.high < 0:
        return f"behind by {-100 * both.high:.1f}–{-100 * both.low:.1f}"
    return f"no difference shown: at most {max(0.0, 100 * both.high):.1f} better, {max(0.0, -100 * both.low):.1f} worse"


def _kind(c: Comparison | None) -> int:
    if c is None:
        return 0
    return 1 if c.intervals.both.low > 0 else (-1 if c.intervals.both.high < 0 else 0)


def answer_markdown(rows: list[Comparison], name: str = "kr",
                    baselines: tuple[str, str] = ("random", "static-random")) -> str:
    """The plain answer for one arm (default ``kr``): where it beats both random arms, where only
    the re-drawn one, where no difference is shown, where it is behind; each with its Δ [95% CI]."""
    at = {(c.setting, c.budget, c.variant, c.baseline): c for c in rows}
    places = list(dict.fromkeys((c.setting, c.budget) for c in rows if c.variant == name and c.baseline in baselines))
    groups: dict[str, list[str]] = {}
    for setting, budget in places:
        pair = [at.get((setting, budget, name, b)) for b in baselines]
        kinds = [_kind(c) for c in pair]
        if -1 in kinds:
            label = f"behind {' or '.join(b for b, k in zip(baselines, kinds) if k == -1)}"
        elif kinds == [1, 1]:
            label = f"ahead of {baselines[0]} and {baselines[1]}"
        elif 1 in kinds:
            label = f"ahead of {' '.join(b for b, k in zip(baselines, kinds) if k == 1)} only"
        else:
            label = "no difference shown"
        seeds = max(len(c.seeds) for c in pair if c is not None)
        deltas = ", ".join(f"{_pts(c.intervals.both, signed=True)} vs {b}" for b, c in zip(baselines, pair) if c is not None)
        groups.setdefault(label, []).append(f"{setting.label()}, B = {budget} ({_seeds(seeds)} seeds): {deltas}")
    order = [f"ahead of {baselines[0]} and {baselines[1]}", *(f"ahead of {b} only" for b in baselines),
             "no difference shown", *(k for k in groups if k.startswith("behind"))]
    lines = [f"- **{label}**: " + "; ".join(groups[label]) + "." for label in dict.fromkeys(order) if label in groups]
    rivals = [c for c in rows if c.baseline == name and c.variant.split(":")[0] in ("static-topB", "kill-only")]
    if rivals:
        by_place: dict[tuple, list[str]] = {}
        for c in rivals:
            by_place.setdefault((c.setting, c.budget), []).append(
                f"{c.variant} − {name} {_pts(c.intervals.both, signed=True)}{' *' if c.intervals.both.excludes_zero() else ''}")
        lines.append(f"- **against the selections that never revive** (a top-B set fixed at the cut; kill-only): "
                     + "; ".join(f"{s.label()}, B = {b}: " + ", ".join(v) for (s, b), v in by_place.items()) + ".")
    return "\n".join(lines) + "\n"


def _score_driven(name: str) -> bool:
    return name.split(":")[0] in SCORE_DRIVEN


def verdict_markdown(rows: list[Comparison], baselines: tuple[str, ...] = ("random", "static-random")) -> str:
    """Per setting and budget, each score-driven arm (KR and its variants, kill-only, static-topB)
    against each random baseline: Δ [95% CI] and the verdict in words."""
    at = {(c.setting, c.budget, c.variant, c.baseline): c for c in rows}
    keys = list(dict.fromkeys((c.setting, c.budget, c.variant) for c in rows
                              if _score_driven(c.variant) and c.baseline in baselines))
    lines = ["| setting | B | arm | seeds | " + " | ".join(f"Δ vs {b} [95% CI] | verdict vs {b}" for b in baselines) + " |",
             "|---|---:|---|---:|" + "---:|---|" * len(baselines)]
    few = False
    for setting, budget, name in keys:
        cells, seeds = [], 0
        for b in baselines:
            c = at.get((setting, budget, name, b))
            if c is None:
                cells += ["–", "–"]
                continue
            seeds = max(seeds, len(c.seeds))
            cells += [_delta(c), verdict(c)]
        few |= seeds < FEW_SEEDS
        lines.append(f"| {setting.label()} | {budget} | {name} | {_seeds(seeds)} | " + " | ".join(cells) + " |")
    lines += ["", "Verdict: *ahead*/*behind* when the two-way 95% interval of the paired difference excludes 0 "
                  "(the range given is the interval, in points); otherwise the interval is given, so its ends say "
                  "how large a gain or loss the runs still allow." + (" " + FEW_SEEDS_NOTE if few else "")]
    return "\n".join(lines) + "\n"


def budget_markdown(arms: list[ArmSummary], rows: list[Comparison], setting,
                    curve: tuple[str, ...] = ("kr", "random", "static-random"),
                    differences: tuple[tuple[str, str], ...] = (("kr", "random"), ("kr", "static-random"))) -> str:
    """One setting's budget curve: each arm's accuracy [95% CI] per budget B (columns), then
    the paired differences per B, with the budget-free arms (all, head-only) for scale."""
    budgets = sorted({a.budget for a in arms if a.setting == setting and a.variant in curve})
    acc = {(a.variant, a.budget): a for a in arms if a.setting == setting}
    delta = {(c.variant, c.baseline, c.budget): c for c in rows if c.setting == setting}
    lines = ["| arm | " + " | ".join(f"B = {b}" for b in budgets) + " |", "|---|" + "---:|" * len(budgets)]
    few = False
    for name in curve:
        cells = []
        for b in budgets:
            a = acc.get((name, b))
            few |= a is not None and len(a.seeds) < FEW_SEEDS
            cells.append("–" if a is None else f"{_pts(a.accuracy)} ({_seeds(len(a.seeds))})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, base in differences:
        cells = [("–" if (c := delta.get((name, base, b))) is None else _delta(c)) for b in budgets]
        lines.append(f"| {name} − {base} | " + " | ".join(cells) + " |")
    scale = [a for a in arms if a.setting == setting and a.variant in ("all", "head-only")]
    lines += ["", "Test accuracy % [95% CI] (seeds); Δ: paired difference in points, two-way 95% interval, "
                  "* when it excludes 0. For scale: " + ", ".join(
                      f"{a.variant} {_pts(a.accuracy)} ({_seeds(len(a.seeds))} seeds)" for a in scale) + "."
              + (" " + FEW_SEEDS_NOTE if few else "")]
    return "\n".join(lines) + "\n"


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
    baselines = tuple(b for b in dict.fromkeys(c.baseline for c in rows) if b in ("random", "static-random"))
    return "\n".join([
        summary_markdown(arms, rows),
        *(["Score-driven arms against random selection, per setting and budget:", "",
           verdict_markdown(rows, baselines)] if baselines else []),
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
