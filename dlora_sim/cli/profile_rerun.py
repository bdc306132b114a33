"""``dlora-sim profile --rerun FILE``: the options a profile was trained with, rebuilt exactly.

A profile records how it was made twice: the command line (``setup.command``) and the set-up it
produced (``setup``: task, arm, budget, steps, lr, batch, seed, every KR constant, the PEFT
shape). A command line alone is not enough to repeat a run, because an option left out takes
whatever default dlora-sim has *today* (issue 16: a README command without ``--batch`` and
``--window`` trained with other defaults than the committed profile and gave 71.3% instead of
65.2%). So the rerun takes every value the set-up records from the set-up, the rest (test and
dev limits, evaluation cadence, model, LoRA targets) from the recorded command, refuses a file
whose command and set-up disagree, and writes the result as a full command line with every
option explicit, the form every new profile records (:func:`command_line`), so later reruns do
not depend on defaults at all.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from dlora_sim.errors import InputError
from dlora_sim.profile import Profile, load_profile

#: options that say where and how visibly to run, not what to train; a rerun may change them
PLACE_OPTIONS = ("output", "threads", "progress", "rerun")

#: profile option -> how to read its value from a profile, where the name differs from the
#: ``setup`` field's (an option named like a ``setup`` field, e.g. ``steps``, reads that field;
#: options neither here nor in ``setup`` are not recorded there and come from the command)
_FROM_PROFILE = {
    "max_len": lambda p: p.setup.seq_len, "peft": lambda p: p.peft.method,
    "window": lambda p: p.setup.kr.window_steps, "warmup_rounds": lambda p: p.setup.kr.warmup_rounds,
    "hysteresis": lambda p: p.setup.kr.hysteresis, "score": lambda p: p.setup.kr.score,
    "normalisation": lambda p: p.setup.kr.normalisation, "ema": lambda p: p.setup.kr.ema,
    "revival_pressure": lambda p: p.setup.kr.revival_pressure, "probe": lambda p: p.setup.kr.probe,
    "probe_calibration": lambda p: p.setup.kr.probe_calibration,
    "kill_keep_fraction": lambda p: p.setup.kr.kill_keep_fraction,
    "rank": lambda p: p.peft.rank, "alpha": lambda p: p.peft.alpha, "adapter_size": lambda p: p.peft.adapter_size,
    "eval_test": lambda p: p.traces.test_eval is not None,
}


def recorded_value(profile: Profile, option: str) -> Any:
    """What ``profile`` records for ``option``; None where it records nothing for it."""
    if option in _FROM_PROFILE:
        return _FROM_PROFILE[option](profile)
    if option in type(profile.setup).model_fields and option not in ("command", "hardware", "kr"):
        return getattr(profile.setup, option)
    return None


# The click objects are duck-typed: typer 0.29 vendors its own copy of click (``typer._click``)
# while older typer uses click itself, so neither module's classes can be named here.


def _options(command: Any) -> list[Any]:
    """The command's options (click ``Option`` objects), in declaration order."""
    return [p for p in command.params if p.param_type_name == "option"]


def _typed(ctx: Any, name: str) -> bool:
    """True when option ``name`` was given on the command line (not a default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def command_line(params: dict[str, Any], command: Any) -> str:
    """``dlora-sim profile`` with every training option explicit, in the command's own order.

    Unset optional limits (None) are left out: None is what leaving them out means. ``--rerun``
    and ``--progress`` are never written (they do not change what is trained).
    """
    words = ["dlora-sim", "profile"]
    output = None
    for option in _options(command):
        name, value = option.name, params.get(option.name)
        if name == "output":
            output = value
            continue
        if name in ("rerun", "progress") or value is None:
            continue
        if option.is_flag:
            words.append(option.opts[0] if value else option.secondary_opts[0])
        else:
            words += [option.opts[0], str(value)]
    if output is not None:
        words += ["-o", str(output)]
    return " ".join(shlex.quote(w) for w in words)


def _recorded(path: Path, profile: Profile, command: Any) -> Any:
    """The recorded command parsed by today's ``profile`` command (defaults filled in)."""
    text = profile.setup.command
    if not text:
        raise InputError(f"{path}: setup.command: not recorded, so the run cannot be repeated exactly")
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise InputError(f"{path}: setup.command: not a command line ({error})") from None
    if words[:2] != ["dlora-sim", "profile"]:
        raise InputError(f"{path}: setup.command: not a `dlora-sim profile` command: {text!r}")
    try:
        return command.make_context("profile", words[2:])
    except Exception as error:  # click's usage errors (their classes cannot be named, see above)
        if not hasattr(error, "format_message"):
            raise
        raise InputError(f"{path}: setup.command: this dlora-sim cannot read it ({error.format_message()})") from None


def rerun_options(path: Path, given: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Every option of ``dlora-sim profile`` for an exact repeat of the profile in ``path``.

    Args:
        path: the profile to repeat.
        given: this invocation's options (only ``output``, ``threads`` and ``progress`` may be
            set with ``--rerun``; an output left out becomes ``<name>-rerun.json`` beside it).
        ctx: this invocation's context, to tell options typed from defaults.

    Raises:
        InputError: a training option given with ``--rerun``; no recorded command, or one this
            version cannot parse; a recorded option that contradicts the recorded set-up.
    """
    typed = [p.opts[0] for p in _options(ctx.command)
             if p.name not in PLACE_OPTIONS and _typed(ctx, p.name)]
    if typed:
        raise InputError(f"--rerun repeats the options recorded in {path}; remove {', '.join(typed)} "
                         "(only -o, --threads and --progress may change)")
    profile = load_profile(path)
    recorded = _recorded(path, profile, ctx.command)
    options = dict(recorded.params)
    for name in list(options):
        value = recorded_value(profile, name)
        if value is None:  # not recorded (limits, model), or unused (a LoRA rank in an adapter run)
            continue
        if _typed(recorded, name) and options[name] != value:
            raise InputError(f"{path}: setup.command gives --{name.replace('_', '-')} {options[name]} but the set-up "
                             f"records {value}; the file was edited, it cannot be repeated exactly")
        options[name] = value
    if _typed(ctx, "threads"):
        options["threads"] = given["threads"]
    options["progress"] = given["progress"]  # this terminal's choice, not the recorded one
    options["output"] = given["output"] if given["output"] is not None else path.with_name(f"{path.stem}-rerun.json")
    options["rerun"] = None
    return options
