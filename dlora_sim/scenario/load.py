"""From a TOML file (plus dotted overrides) to a validated :class:`Scenario`, or one clear line.

Every problem ends as ``InputError("<file>: <field.path>: <problem>")``: malformed TOML, an
unknown key, a wrong type, an impossible number, a missing or corrupt referenced file. The
field path is the one the user wrote in the TOML (``fleet.groups.1.link.up_bps``), not
pydantic's internal location, which also carries union tags.
"""

from __future__ import annotations

import copy
import math
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dlora_sim.errors import InputError
from dlora_sim.io import MAX_DEPTH, too_deep_at
from dlora_sim.scenario._files import FieldError
from dlora_sim.scenario.models import Scenario, name_from_file


def load_scenario(path: str | Path, overrides: Mapping[str, object] | None = None) -> Scenario:
    """Read, override and validate a scenario file.

    Args:
        path: the TOML file. Relative paths inside it resolve against its folder.
        overrides: dotted field paths to values, applied to the raw TOML before validation,
            e.g. ``{"job.budget": 8, "fleet.groups.0.count": 50}`` (list items by index).

    Returns:
        The frozen, validated scenario; ``name`` defaults to the file's stem (characters a
        name may not hold replaced by '-').

    Raises:
        InputError: one line naming the file and field, for any problem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: scenario file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read scenario file: {error}") from None
    try:
        raw = tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError, or an integer too long to convert
        raise InputError(f"{path}: malformed TOML: {error}") from None
    except RecursionError:
        raise InputError(f"{path}: malformed TOML: nested too deeply") from None
    raw.setdefault("name", name_from_file(path.stem))
    return scenario_from_dict(raw, source=str(path), base_dir=path.resolve().parent, overrides=overrides)


def scenario_from_dict(
    raw: Mapping[str, Any],
    *,
    source: str = "<scenario>",
    base_dir: str | Path | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Scenario:
    """Validate an already-parsed scenario table (what :func:`load_scenario` does after TOML).

    ``source`` names the input in error messages; ``base_dir`` anchors relative paths
    (default: the current directory).
    """
    _refuse_deep(raw, source)
    for dotted, value in (overrides or {}).items():
        _refuse_deep(value, source, prefix=f"{dotted}.")
    data = apply_overrides(raw, overrides or {}, source=source)
    context = {"base_dir": Path(base_dir) if base_dir is not None else Path.cwd()}
    try:
        return Scenario.model_validate(data, context=context)
    except ValidationError as error:
        raise InputError(f"{source}: {describe_validation_error(error, data)}") from None


# keys that to_resolved_dict adds for readers; they are derived, not settable
DERIVED_KEYS = (("job", "module_count"), ("job", "total_steps"), ("network", "kind"),
                ("cloud", "usd_per_hour_effective"))


def scenario_from_resolved(resolved: Mapping[str, Any], *, source: str = "scenario.json") -> Scenario:
    """Rebuild the :class:`Scenario` that ``to_resolved_dict`` described (e.g. a results folder's
    ``scenario.json``); the derived keys it added are dropped, the files it names re-checked."""
    _refuse_deep(resolved, source)
    data = copy.deepcopy(dict(resolved))
    for section, key in DERIVED_KEYS:
        if isinstance(data.get(section), dict):
            data[section].pop(key, None)
    return scenario_from_dict(data, source=source)


def _refuse_deep(value: Any, source: str, prefix: str = "") -> None:
    """Nesting deeper than any scenario needs is refused before recursive code meets it."""
    where = too_deep_at(value)
    if where is not None:
        raise InputError(f"{source}: {prefix}{where}: nested more than {MAX_DEPTH} levels deep")


def apply_overrides(
    raw: Mapping[str, Any], overrides: Mapping[str, object], *, source: str = "<scenario>"
) -> dict[str, Any]:
    """A deep copy of ``raw`` with each dotted path set; missing tables are created."""
    data = copy.deepcopy(dict(raw))
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if not dotted or any(not part for part in parts):
            raise InputError(f"{source}: override {dotted!r}: not a dotted field path")
        node: Any = data
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise InputError(
                        f"{source}: {where}: override index must be 0..{len(node) - 1}"
                    )
                key: Any = int(part)
            elif isinstance(node, dict):
                key = part
                if not last:
                    node.setdefault(key, {})
            else:
                raise InputError(f"{source}: {where}: override goes inside a value that is not a table")
            if last:
                node[key] = copy.deepcopy(value)
            else:
                node = node[key]
    return data


def parse_override(text: str) -> tuple[str, object]:
    """``"job.budget=8"`` → ``("job.budget", 8)``; the value is read as a TOML value, else a string."""
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected FIELD=VALUE, e.g. job.budget=8")
    dotted, value_text = (part.strip() for part in text.split("=", 1))
    try:
        value: object = tomllib.loads(f"v = {value_text}")["v"]
    except ValueError:  # not a TOML value (or an integer too long to convert): kept as text
        value = value_text
    except RecursionError:
        raise InputError(f"--set {dotted}: value nested too deeply") from None
    return dotted, value


# ------------------------------------------------------------------------- error description


def describe_validation_error(error: ValidationError, data: Any) -> str:
    """``field.path: problem`` for the first error, with a count of the other fields at fault.

    Problems are counted by the field the user wrote, not by pydantic's errors, and a list that
    is only "too short" because its one item failed is not a problem of its own.
    """
    located = [(tuple(_user_location(p["loc"], data)), p) for p in error.errors(include_url=False)]
    own = [(where, p) for where, p in located if not _holds_another(where, located)] or located
    loc, first = list(own[0][0]), own[0][1]
    more = len({where for where, _ in own} - {tuple(loc)})
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc = [*loc, *(cause.field.split(".") if cause.field else [])]
        message = cause.problem
    elif first["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        message = f"unknown key {loc[-1]!r}" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    elif first["type"] == "missing":
        message = "required field is missing"
    else:
        message = first["msg"].removeprefix("Value error, ")
        # the user wrote TOML arrays, not Python tuples
        message = message.replace("valid tuple", "list (TOML array)").replace("Tuple should", "List should")
        given = first.get("input")
        if isinstance(given, (int, float, str, bool)) and not isinstance(cause, Exception):
            message += f" (got {_shown(given)})"
    field = ".".join(str(part) for part in loc) or "(top level)"
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return " ".join(f"{field}: {message}{suffix}".split())


def _holds_another(where: tuple[int | str, ...], located: list[tuple[tuple[int | str, ...], Any]]) -> bool:
    """Whether another problem lies inside the field at ``where`` (so that one is the cause)."""
    return any(len(other) > len(where) and other[: len(where)] == where for other, _ in located)


def _shown(value: object, limit: int = 60) -> str:
    """``repr`` of a user's value, cut short: a megabyte of text or a 4000-digit number is not
    worth echoing."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"  # str() may refuse it
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]}"


def _user_location(loc: tuple[int | str, ...], data: Any) -> list[int | str]:
    """Drop pydantic's union tags: keep the parts that exist in the user's data (and the last)."""
    kept: list[int | str] = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif index == len(loc) - 1:
            pass  # a missing or unknown key: the user needs its name
        else:
            continue  # a union tag such as 'markov' or 'function-after[...]'
        kept.append(part)
    return kept


def _allowed_keys(loc: list[int | str]) -> list[str]:
    """The field names the model at ``loc`` accepts (best effort, for unknown-key messages)."""
    model: Any = Scenario
    for part in loc:
        model = _step_into(model, part)
        if model is None:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _step_into(annotation: Any, part: int | str) -> Any:
    for candidate in _members(annotation):
        if isinstance(part, int) and typing.get_origin(candidate) is tuple:
            return typing.get_args(candidate)[0]
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            field = candidate.model_fields.get(str(part))
            if field is not None:
                return field.annotation
    return None


def _members(annotation: Any) -> list[Any]:
    """Flatten Annotated/Union/Optional into the concrete types it may hold."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [member for arg in typing.get_args(annotation) for member in _members(arg)]
    return [annotation]
