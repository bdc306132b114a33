"""Accuracy for a simulated point, pooled only from profiles trained alike.

The simulator does not train; sweeps and ``dlora-sim plan`` look a point's accuracy up in real
training profiles with the strategy's KR arm and a budget fraction B/N close to the point's, and
average their seeds. Averaging is only sound over runs that differ in nothing but the seed: a
profile trained for more steps, with another batch, KR window, learning rate, test set or privacy
defence (upload noise, device-trained embeddings) measures something else (issue 16: one such file moved KR at B = 16 from 62.8% to 67.8%). So a profile is
pooled only when its *setting* (:class:`dlora_sim.study.paired.Setting`, the very notion
``profiles compare`` pairs by) equals the reference profile's, the one the scenario names; the
others are reported as excluded, so the page can say which files its accuracy came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dlora_sim.errors import InputError
from dlora_sim.profile import load_profile
from dlora_sim.study.paired import Setting, setting_of

__all__ = ["ARM_OF_STRATEGY", "BUDGET_FRACTION_TOLERANCE", "ProfileFacts", "AccuracyMatch", "profile_facts",
           "index_profiles", "match_accuracy"]

#: simulator strategy -> the profile arm whose accuracy it reaches. Cloud-only, edge-only and split
#: learning train every module on the user's data, so their accuracy is the all-modules arm's (the
#: 4-bit base of edge-only-int4 is taken to cost no accuracy, an assumption). Federated LoRA's
#: accuracy is not a single user's (profiles/federated/), so it has none here.
ARM_OF_STRATEGY: dict[str, str] = {
    "dlora-all": "all", "cloud-only": "all", "edge-only": "all", "edge-only-int4": "all", "split-lora": "all",
    "dlora-kr": "kr", "dlora-random": "random", "dlora-static-random": "static-random",
}

#: a profile's budget fraction B/N may differ from a point's by this much (relative) and match
BUDGET_FRACTION_TOLERANCE = 0.25


@dataclass(frozen=True)
class ProfileFacts:
    """What accuracy matching needs from one profile file."""

    path: str
    setting: Setting
    arm: str
    budget_fraction: float
    test_accuracy: float
    seed: int

    @property
    def task(self) -> str:
        return self.setting.task

    @property
    def method(self) -> str:
        return self.setting.peft


@dataclass(frozen=True)
class AccuracyMatch:
    """The accuracy of one (strategy, budget) point and the files behind it."""

    accuracy: float  # NaN when no comparable profile matches
    used: tuple[str, ...]  # the profiles averaged
    excluded: tuple[str, ...]  # same task, PEFT, arm and budget, but trained otherwise
    budget_fraction: float  # of the profiles used; NaN when none

    @property
    def n(self) -> int:
        return len(self.used)


def profile_facts(path: Path) -> ProfileFacts:
    """Load one profile (validated) and keep the matching keys and its test accuracy."""
    p = load_profile(path)
    return ProfileFacts(str(path), setting_of(p), p.setup.arm, p.setup.budget / p.n_modules, p.result.test_accuracy,
                        p.setup.seed)


def index_profiles(folder: Path) -> list[ProfileFacts]:
    """Every loadable profile in ``folder`` (not recursive); unreadable files are skipped."""
    facts = []
    for path in sorted(folder.glob("*.json")):
        try:
            facts.append(profile_facts(path))
        except InputError:
            continue
    return facts


def _within(facts: list[ProfileFacts], want: float) -> list[ProfileFacts]:
    """Those whose budget fraction is within the tolerance of ``want``."""
    return [f for f in facts if abs(f.budget_fraction - want) <= BUDGET_FRACTION_TOLERANCE * want]


def _closest(facts: list[ProfileFacts], want: float) -> list[ProfileFacts]:
    """Of ``facts``, those at the fraction closest to ``want`` (the seeds of one budget)."""
    if not facts:
        return []
    best = min(abs(f.budget_fraction - want) for f in facts)
    return [f for f in facts if abs(f.budget_fraction - want) == best]


def _one_per_seed(facts: list[ProfileFacts]) -> list[ProfileFacts]:
    """The first profile of each seed, in the given (path) order.

    Two alike files with one seed are one run measured twice (``profile --rerun`` writes its
    repeat beside the original, into the very folder that is pooled; arm ``all`` trains the same
    whatever B its file names), so averaging both would count that seed double.
    """
    seeds: set[int] = set()
    out = []
    for f in facts:
        if f.seed not in seeds:
            seeds.add(f.seed)
            out.append(f)
    return out


def match_accuracy(strategy: str, budget: float, module_count: float, reference: ProfileFacts,
                   index: list[ProfileFacts]) -> AccuracyMatch:
    """Mean test accuracy of the comparable profiles matching a (strategy, budget) point.

    A profile matches when it has the reference profile's setting (task, PEFT method, steps, lr,
    batch, KR window and warm-up, test examples, upload noise, device-trained embeddings), the
    strategy's arm, and (except for arm
    ``all``) a budget fraction B/N within 25% of the point's; of those, the closest fraction wins
    and its seeds are averaged, each seed once. Profiles that would match but for their setting
    are ``excluded``.
    """
    arm = ARM_OF_STRATEGY.get(strategy)
    same_arm = [f for f in index if f.task == reference.task and f.method == reference.method and f.arm == arm]
    alike = [f for f in same_arm if f.setting == reference.setting]
    others = [f for f in same_arm if f.setting != reference.setting]
    if arm != "all":
        want = budget / module_count
        alike, others = _closest(_within(alike, want), want), _within(others, want)
    alike = _one_per_seed(alike)
    if not alike:
        return AccuracyMatch(math.nan, (), tuple(f.path for f in others), math.nan)
    acc = sum(f.test_accuracy for f in alike) / len(alike)
    return AccuracyMatch(acc, tuple(f.path for f in alike), tuple(f.path for f in others), alike[0].budget_fraction)
