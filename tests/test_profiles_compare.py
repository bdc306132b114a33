"""`dlora-sim profiles compare`: paired differences whose answer is known, and bad folders.

The profiles here are synthetic TEST DATA (``test_profile_schema_builder.build_profile``) with
made-up per-example predictions on the real noun-supersense test split; nothing is a result.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlora_sim.cli import main
from dlora_sim.errors import InputError
from dlora_sim.profile import save_profile
from dlora_sim.profiling.tasks import load_task
from dlora_sim.study.paired import compare_arms, load_runs, summarise_arms
from dlora_sim.study.stats import bootstrap_mean, mcnemar_exact
from test_profile_schema_builder import build_profile

LABELS = load_task("noun-supersense", "test").labels
N = LABELS.size  # 1500
SEEDS = (0, 1, 2, 3, 4)
EXTRA = 60  # examples per seed that arm "kr" gets right and "random" gets wrong


def _predictions(correct: np.ndarray) -> list[int]:
    """Right where ``correct``, else the next class (26 classes)."""
    return [int(y) if ok else int((y + 1) % 26) for y, ok in zip(LABELS, correct)]


def _save(folder: Path, arm: str, seed: int, correct: np.ndarray, budget: int = 3, score: str = "norm-diff") -> None:
    profile = build_profile(arm=arm, budget=budget, seed=seed, test_accuracy=float(correct.mean()),
                            test_predictions=_predictions(correct), score=score)
    save_profile(profile, folder / f"{arm}-{score}-b{budget}-s{seed}.json")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """random: 60 % right (its own pattern per seed); kr: the same plus 60 more examples per
    seed; static-random: identical to random; all: kr's pattern."""
    path = tmp_path_factory.mktemp("study")
    for seed in SEEDS:
        base = np.random.default_rng(seed).random(N) < 0.6
        better = base.copy()
        better[np.flatnonzero(~base)[:EXTRA]] = True
        _save(path, "random", seed, base)
        _save(path, "static-random", seed, base)
        _save(path, "kr", seed, better)
        _save(path, "all", seed, better)
    return path


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _row(rows, name):
    return next(r for r in rows if r.variant == name)


def test_known_difference_has_the_right_sign_interval_and_p(folder):
    """kr is right on 60 more examples per seed: +4.0 points, an interval around it excluding 0,
    300 discordant pairs all one way and McNemar p = 2 / 2**300."""
    runs, skipped = load_runs(folder)
    assert skipped == []
    kr = _row(compare_arms(runs, "random"), "kr")
    assert kr.seeds == SEEDS and kr.n_examples == N
    assert kr.per_seed == pytest.approx([EXTRA / N] * 5)
    both = kr.intervals.both
    assert both.estimate == pytest.approx(0.04)
    assert both.excludes_zero() and both.low > 0
    # The difference is 1 on 60 of 1500 examples in every seed: binomial sd sqrt(.04 · .96 / 1500) = 0.5 points.
    assert both.low == pytest.approx(0.04 - 1.96 * 0.00506, abs=0.003)
    assert both.high == pytest.approx(0.04 + 1.96 * 0.00506, abs=0.003)
    assert kr.intervals.seeds.low == pytest.approx(0.04) and kr.intervals.seeds.high == pytest.approx(0.04)
    assert (kr.arm_only, kr.baseline_only) == (5 * EXTRA, 0)
    assert kr.mcnemar_p == pytest.approx(2 / 2**300, rel=1e-9)


def test_identical_arms_give_zero_inside_the_interval_and_p_one(folder):
    """static-random predicts exactly what random predicts: Δ 0, interval [0, 0], p = 1."""
    runs, _ = load_runs(folder)
    same = _row(compare_arms(runs, "random"), "static-random")
    assert same.intervals.both.estimate == 0 and same.intervals.both.low <= 0 <= same.intervals.both.high
    assert not same.intervals.both.excludes_zero()
    assert (same.arm_only, same.baseline_only, same.mcnemar_p) == (0, 0, 1.0)


def test_reversed_baseline_flips_the_sign(folder):
    """random − kr is the mirror of kr − random."""
    runs, _ = load_runs(folder)
    back = _row(compare_arms(runs, "kr"), "random")
    assert back.intervals.both.estimate == pytest.approx(-0.04) and back.intervals.both.high < 0
    assert (back.arm_only, back.baseline_only) == (0, 5 * EXTRA)


def test_noisy_difference_interval_contains_the_truth_and_zero_when_there_is_none():
    """Independent noise with no true difference: the two-way interval holds 0 and p is large."""
    rng = np.random.default_rng(7)
    a = (rng.random((6, 1500)) < 0.65).astype(float)
    b = (rng.random((6, 1500)) < 0.65).astype(float)
    interval = bootstrap_mean(a - b, seed=3).both
    assert interval.low < 0 < interval.high
    assert bootstrap_mean(a - b, seed=3) == bootstrap_mean(a - b, seed=3)  # deterministic
    assert mcnemar_exact(int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())) > 0.05


def test_mcnemar_matches_scipy_where_available():
    """The exact integer computation equals scipy's binomial test."""
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(5, 3), (30, 90), (700, 760), (0, 12)]:
        assert mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_arm_summaries_give_mean_accuracy_with_interval(folder):
    """Each arm's mean over seeds sits inside its own 95 % interval; kr is 4 points above random."""
    runs, _ = load_runs(folder)
    arms = {a.variant: a for a in summarise_arms(runs)}
    assert arms["kr"].accuracy.estimate - arms["random"].accuracy.estimate == pytest.approx(0.04)
    for a in arms.values():
        assert a.accuracy.low < a.accuracy.estimate < a.accuracy.high and len(a.seeds) == 5


def test_unknown_baseline_lists_the_arms(folder):
    runs, _ = load_runs(folder)
    with pytest.raises(InputError, match="present: all, kr, random, static-random"):
        compare_arms(runs, "kill-only")


def test_predictions_that_do_not_give_the_recorded_accuracy_are_refused(tmp_path):
    """A profile whose predictions disagree with its test accuracy names the file and field."""
    correct = np.zeros(N, dtype=bool)
    correct[:900] = True
    profile = build_profile(arm="kr", test_accuracy=0.5, test_predictions=_predictions(correct))
    save_profile(profile, tmp_path / "bad.json")
    with pytest.raises(InputError) as caught:
        load_runs(tmp_path)
    message = str(caught.value)
    assert message.startswith(str(tmp_path / "bad.json")) and "result.test_predictions" in message
    assert "\n" not in message


def test_duplicate_runs_are_refused(tmp_path):
    correct = np.ones(N, dtype=bool)
    for name in ("a", "b"):
        save_profile(build_profile(arm="kr", test_accuracy=1.0, test_predictions=_predictions(correct)),
                     tmp_path / f"{name}.json")
    with pytest.raises(InputError, match="same arm 'kr', budget 3, seed 0"):
        load_runs(tmp_path)


def test_profiles_without_predictions_are_skipped(tmp_path, capsys):
    """Old profiles (no predictions) are skipped with a note; a folder of only those is an error."""
    save_profile(build_profile(arm="kr"), tmp_path / "old.json")
    code, _, err = _run(["profiles", "compare", str(tmp_path)], capsys)
    assert code == 1 and "no profile has result.test_predictions" in err


def test_score_variants_are_separate_arms(tmp_path):
    """kr with the update-norm-diff score is its own arm, named kr:update-norm-diff."""
    correct = np.ones(N, dtype=bool)
    _save(tmp_path, "random", 0, correct)
    _save(tmp_path, "kr", 0, correct)
    _save(tmp_path, "kr", 0, correct, score="update-norm-diff")
    runs, _ = load_runs(tmp_path)
    assert sorted(r.variant for r in runs) == ["kr", "kr:update-norm-diff", "random"]


def test_cli_json_and_markdown_block(folder, tmp_path, capsys):
    """--json carries the numbers; --write puts the tables between the compare markers, keeping the rest."""
    code, out, _ = _run(["profiles", "compare", str(folder), "--baseline", "random", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    kr = next(c for c in data["comparisons"] if c["variant"] == "kr")
    assert kr["difference"]["both"]["estimate"] == pytest.approx(0.04) and kr["arm_only"] == 300
    readme = tmp_path / "README.md"
    readme.write_text("# Study\n\nintro\n\n<!-- table:start -->\nkept\n<!-- table:end -->\n")
    code, _, _ = _run(["profiles", "compare", str(folder), "--write", str(readme)], capsys)
    text = readme.read_text()
    assert code == 0 and text.startswith("# Study\n\nintro") and "kept" in text
    assert "<!-- compare:start -->" in text and "| kr − random | 5 | +4.0 [" in text.replace(
        "noun-supersense lora 200 steps lr 0.0005 | 3 ", "")
    first = text
    _run(["profiles", "compare", str(folder), "--write", str(readme)], capsys)
    assert readme.read_text() == first  # deterministic: the same bytes again


def test_cli_several_baselines_and_an_arm_filter(folder, capsys):
    """--baseline repeats; --arm keeps only the named arms; an unknown --arm lists what exists."""
    code, out, _ = _run(["profiles", "compare", str(folder), "--baseline", "random", "--baseline",
                         "static-random", "--arm", "kr", "--json", "--resamples", "200"], capsys)
    assert code == 0
    pairs = [(c["variant"], c["baseline"]) for c in json.loads(out)["comparisons"]]
    assert pairs == [("kr", "random"), ("kr", "static-random")]
    code, _, err = _run(["profiles", "compare", str(folder), "--arm", "kr:probe-grad"], capsys)
    assert code == 1 and "--arm 'kr:probe-grad': no such arm" in err


@pytest.fixture(scope="module")
def budgets(tmp_path_factory) -> Path:
    """Two budgets, as in the study: at B = 3 five seeds, kr right on 60 more examples per seed
    than random and static-random (which agree); at B = 6 three seeds, kr identical to random,
    static-random wrong on 30 more; all (budget-free) five seeds, kr's B = 3 pattern."""
    path = tmp_path_factory.mktemp("budgets")
    for seed in SEEDS:
        base = np.random.default_rng(seed).random(N) < 0.6
        better = base.copy()
        better[np.flatnonzero(~base)[:EXTRA]] = True
        for arm in ("random", "static-random"):
            _save(path, arm, seed, base)
        _save(path, "kr", seed, better)
        _save(path, "all", seed, better)
        if seed < 3:
            worse = base.copy()
            worse[np.flatnonzero(base)[:30]] = False
            _save(path, "random", seed, base, budget=6)
            _save(path, "kr", seed, base, budget=6)
            _save(path, "static-random", seed, worse, budget=6)
    return path


def _budget_tables(folder: Path):
    runs, _ = load_runs(folder)
    rows = [c for b in ("random", "static-random") for c in compare_arms(runs, b, resamples=300)]
    return summarise_arms(runs, resamples=300), rows


def test_mixed_budgets_group_by_budget_and_say_how_many_seeds_paired(budgets):
    """One table per budget; at B = 6 the five-seed arm all is paired on the three seeds random has,
    and the table says so (with † for fewer than 5 seeds)."""
    from dlora_sim.study.tables import summary_markdown

    arms, rows = _budget_tables(budgets)
    text = summary_markdown(arms, rows)
    b3, b6 = text.split("B = 6**")
    assert "B = 3**" in b3 and "| kr | 5 | " in b3 and "| kr | 3† | " in b6
    all6 = next(line for line in b6.splitlines() if line.startswith("| all |"))
    assert "| all | 5 | " in all6 and all6.count("(3† seeds)") == 2
    assert "(3† seeds)" not in next(line for line in b3.splitlines() if line.startswith("| all |"))
    assert "† fewer than 5 seeds" in text


def test_verdicts_and_the_plain_answer_follow_the_intervals(budgets):
    """kr at B = 3: ahead of both random arms by an interval around +4.0; at B = 6: identical to
    random (no difference, [0, 0]) and ahead of static-random (+2.0)."""
    from dlora_sim.study.tables import answer_markdown, verdict, verdict_markdown

    _, rows = _budget_tables(budgets)
    at = {(c.variant, c.baseline, c.budget): c for c in rows}
    assert verdict(at[("kr", "random", 3)]).startswith("ahead by ")
    assert verdict(at[("kr", "random", 6)]) == "no difference shown: at most 0.0 better, 0.0 worse"
    assert at[("kr", "static-random", 6)].intervals.both.estimate == pytest.approx(0.02)
    assert verdict(at[("kr", "static-random", 6)]).startswith("ahead by ")
    table = verdict_markdown(rows)
    assert "| 3 | kr | 5 | +4.0 [" in table and "| 6 | kr | 3† | +0.0 [+0.0, +0.0] | no difference shown" in table
    answer = answer_markdown(rows).splitlines()
    assert answer[0].startswith("- **ahead of random and static-random**: ") and "B = 3 (5 seeds): +4.0 [" in answer[0]
    assert answer[1].startswith("- **ahead of static-random only**: ") and "B = 6 (3† seeds)" in answer[1]
    assert len(answer) == 2


def test_a_loss_reads_behind(budgets):
    """random − kr at B = 3 (kr as the baseline) is 4 points behind."""
    from dlora_sim.study.tables import verdict

    runs, _ = load_runs(budgets)
    back = next(c for c in compare_arms(runs, "kr", 3, resamples=300) if c.variant == "random")
    assert verdict(back).startswith("behind by ") and back.intervals.both.estimate == pytest.approx(-0.04)


def test_budget_curve_puts_budgets_in_columns_with_the_differences(budgets):
    from dlora_sim.study.tables import budget_markdown

    arms, rows = _budget_tables(budgets)
    setting = next(a.setting for a in arms)
    lines = budget_markdown(arms, rows, setting).splitlines()
    assert lines[0] == "| arm | B = 3 | B = 6 |"
    kr = next(line for line in lines if line.startswith("| kr |"))
    assert kr.endswith("(3†) |") and "(5) |" in kr
    diff = next(line for line in lines if line.startswith("| kr − random |"))
    assert "+4.0 [" in diff and "*" in diff.split("|")[2] and "+0.0 [+0.0, +0.0] |" in diff
    assert "For scale: all " in lines[-1]
