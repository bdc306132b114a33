"""What ``plan`` may vary, the values it tries by default, and how text becomes a search space.

A varied field is a dotted scenario path, exactly as in ``dlora-sim run --set`` and sweep files.
Only the fields below are understood: each is either a number the vectorised cost model takes as
an array (``job.budget``, ``job.batch``, ``job.rank``, ``job.kr_interval_steps``), a categorical
job option (one cost-model pass per value), or a cloud field that only prices (``cloud.count``,
``cloud.gpu``). The strategies are always a dimension of the search (``strategies``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dlora_sim import cost
from dlora_sim.errors import InputError

#: job fields the cost model evaluates as numpy arrays: scenario field -> CostModel grid field
NUMERIC_JOB = {"job.budget": "budget", "job.batch": "batch", "job.rank": "rank",
               "job.kr_interval_steps": "kr_interval_steps"}
#: job fields that change the protocol: one CostModel per value (scenario field -> JobSpec field)
CATEGORICAL_JOB = {"job.exchange": "exchange", "job.killed_policy": "killed_policy",
                   "job.head_placement": "head_placement"}
CLOUD = ("cloud.count", "cloud.gpu")
VARY_FIELDS = (*NUMERIC_JOB, *CATEGORICAL_JOB, *CLOUD)
#: what ``--vary`` means when it is not given: the planner's question
DEFAULT_VARY = ("job.budget", "job.exchange", "cloud.count")

_BUDGETS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "job.budget": _BUDGETS,
    "job.batch": (1, 2, 4, 8, 16),
    "job.rank": (4, 8, 16, 32),
    "job.kr_interval_steps": (10, 20, 50, 100),
    "job.exchange": cost.EXCHANGES,
    "job.killed_policy": cost.KILLED_POLICIES,
    "job.head_placement": cost.HEAD_PLACEMENTS,
    "cloud.count": (1, 2, 4, 8, 16, 32, 64),
    "cloud.gpu": tuple(cost.GPUS),
}
_INT_FIELDS = ("job.budget", "job.batch", "job.rank", "job.kr_interval_steps", "cloud.count")
_CHOICES = {"job.exchange": cost.EXCHANGES, "job.killed_policy": cost.KILLED_POLICIES,
            "job.head_placement": cost.HEAD_PLACEMENTS, "cloud.gpu": tuple(cost.GPUS)}
#: the most grid points one plan evaluates (the cost model does thousands per second)
MAX_POINTS = 200_000


@dataclass(frozen=True)
class Space:
    """The values tried per varied field (the scenario's own value always among them)."""

    values: dict[str, tuple[Any, ...]]
    strategies: tuple[str, ...]

    def size(self) -> int:
        n = len(self.strategies)
        for v in self.values.values():
            n *= len(v)
        return n


def parse_vary(items: list[str] | tuple[str, ...] | None) -> dict[str, tuple[Any, ...] | None]:
    """``["job.budget,cloud.count", "cloud.gpu=a100,h100"]`` -> ``{field: values or None}``.

    An item is either a comma-separated list of fields (each tried at its default values) or
    one ``FIELD=V1,V2,...`` with explicit values. None or empty -> :data:`DEFAULT_VARY`.

    Raises:
        InputError: an unknown field or a value that field cannot take (one line).
    """
    if not items:
        return {name: None for name in DEFAULT_VARY}
    out: dict[str, tuple[Any, ...] | None] = {}
    for item in items:
        item = item.strip()
        if "=" in item:
            name, _, text = item.partition("=")
            name = name.strip()
            _check_field(name)
            values = tuple(_value(name, v.strip()) for v in text.split(",") if v.strip())
            if not values:
                raise InputError(f"--vary {item!r}: give at least one value after '='")
            out[name] = tuple(dict.fromkeys(values))
            continue
        for name in (n.strip() for n in item.split(",")):
            if not name:
                continue
            _check_field(name)
            out.setdefault(name, None)
    if not out:
        raise InputError("--vary: name at least one field, e.g. job.budget,cloud.count")
    return out


def _check_field(name: str) -> None:
    if name not in VARY_FIELDS:
        hint = " (the strategies are always searched; pick them with --strategies)" if "strateg" in name else ""
        raise InputError(f"--vary: unknown field {name!r}{hint}; allowed: {', '.join(VARY_FIELDS)}")


def _value(name: str, text: str) -> Any:
    if name in _INT_FIELDS:
        if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
            raise InputError(f"--vary {name}: {text!r} is not a positive integer")
        return int(text)
    if text not in _CHOICES[name]:
        raise InputError(f"--vary {name}: {text!r} is not allowed; allowed: {', '.join(_CHOICES[name])}")
    return text


def base_value(scenario: Any, name: str) -> Any:
    section, field = name.split(".")
    return getattr(getattr(scenario, section), field)


def build_space(scenario: Any, vary: dict[str, tuple[Any, ...] | None],
                strategies: tuple[str, ...] | None) -> Space:
    """Default values filled in, clipped to what the scenario allows, its own value included.

    Raises:
        InputError: a strategy the cost model does not know, a budget no value of which fits
            the job, or a space beyond :data:`MAX_POINTS`.
    """
    names = tuple(strategies) if strategies else tuple(scenario.run.strategies)
    for s in names:
        try:
            cost.check_strategy(s)
        except InputError:
            raise InputError(f"--strategies: unknown strategy {s!r}; allowed: {', '.join(cost.STRATEGIES)}") from None
    values: dict[str, tuple[Any, ...]] = {}
    n_modules = scenario.job.module_count
    for name, given in vary.items():
        own = base_value(scenario, name)
        chosen = list(given) if given is not None else list(_DEFAULTS[name])
        if name == "job.budget":
            too_big = [b for b in chosen if b > n_modules]
            if given is not None and too_big:
                raise InputError(f"--vary job.budget: {too_big[0]} is above the {n_modules} PEFT modules "
                                 f"of the job; allowed: 1..{n_modules}")
            chosen = [b for b in chosen if b <= n_modules] + ([n_modules] if given is None else [])
        if name == "job.rank" and scenario.job.peft != "lora":
            raise InputError(f"--vary job.rank: the job's PEFT is {scenario.job.peft}, not lora")
        if given is None and own not in chosen:
            chosen.append(own)
        values[name] = tuple(sorted(dict.fromkeys(chosen), key=_order))
    space = Space(values, tuple(dict.fromkeys(names)))
    if space.size() > MAX_POINTS:
        raise InputError(f"--vary: {space.size():,} points is more than the {MAX_POINTS:,} one plan searches; "
                         "give fewer values (FIELD=V1,V2,...)")
    return space


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(s|sec|min|m|h|d|w)\s*", re.IGNORECASE)


def parse_duration(text: str, what: str = "--deadline") -> float:
    """``"48h"``, ``"2d"``, ``"90min"``, ``"1d12h"``, ``"3600s"`` -> seconds.

    Raises:
        InputError: anything else, e.g. a number without a unit (one line).
    """
    text = str(text).strip()
    pos, total, matched = 0, 0.0, False
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if not m:
            break
        total += float(m.group(1)) * _UNITS[m.group(2).lower()]
        pos, matched = m.end(), True
    if not matched or pos != len(text) or total <= 0:
        raise InputError(f"{what} {text!r}: give a positive duration with a unit, e.g. 48h, 2d, 90min, 1d12h")
    return total
