"""The profile file: what one real fine-tuning run measured, for the simulator to replay.

A profile is the lab notebook of a training run: the model and PEFT shapes, the measured FLOPs of
every PEFT module, the set-up (task, KR arm and settings, seed, library versions), and the traces
(weight norms and active set per KR round, loss per step, accuracy per evaluation, time per step).
The simulator and the dashboards never run torch; they read these files through
:func:`load_profile`, which refuses anything malformed with one line naming the file and field.

Layering: pydantic + numpy only; no other project module except ``errors`` and ``io``. The KR
settings are mirrored field by field in :class:`KRSettings` (a test keeps them in step with
``dlora_sim.kr.KRConfig``) rather than imported, so the schema stands alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dlora_sim.errors import InputError, first_problem
from dlora_sim.io import MAX_DEPTH, MAX_EXACT_INT, atomic_write_json, first_at, read_json_object, too_deep_at

__all__ = [
    "SCHEMA_VERSION",
    "READABLE_VERSIONS",
    "ARM_NAMES",
    "SCORE_NAMES",
    "ModelInfo",
    "PeftInfo",
    "ModuleRow",
    "FlopInfo",
    "KRSettings",
    "Setup",
    "EvalPoint",
    "Traces",
    "KROverhead",
    "Result",
    "Profile",
    "load_profile",
    "save_profile",
    "active_matrix",
    "active_fraction_series",
    "churn_series",
    "mean_trainable_params",
]

#: Bumped whenever a field changes meaning or a required field is added.
#: 2: ``result.trainable_params`` counts what the arm really trained (head + active modules,
#: averaged over the steps) instead of every module; arms ``static-random`` and ``head-only``
#: (budget 0); score ``update-norm-diff``; optional ``result.head_params``,
#: ``result.test_predictions``, ``traces.update_norms`` and ``setup.hardware``.
SCHEMA_VERSION = 2
#: Versions :func:`load_profile` reads; version 1 files are upgraded on load (see there).
READABLE_VERSIONS = (1, 2)

#: Mirrors ``dlora_sim.kr.ARMS`` and ``SCORES`` (a test keeps them equal; no import, see above).
ARM_NAMES = ("all", "kr", "kill-only", "random", "static-topB", "static-random", "head-only")
SCORE_NAMES = ("norm-diff", "diff-norm", "probe-grad", "update-norm-diff")
Arm = Literal["all", "kr", "kill-only", "random", "static-topB", "static-random", "head-only"]
ScoreName = Literal["norm-diff", "diff-norm", "probe-grad", "update-norm-diff"]


class _Frozen(BaseModel):
    """Immutable, strict about unknown keys and types (no string or boolean is read as a
    number), and no NaN/inf (JSON cannot carry them anyway)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


NonNegFloat = Annotated[float, Field(ge=0)]


class ModelInfo(_Frozen):
    """The base model's shape (the frozen part that the cloud holds)."""

    name: str = Field(min_length=1)
    n_layers: int = Field(ge=1)
    d_model: int = Field(ge=1)
    n_heads: int = Field(ge=1)
    d_ff: int = Field(ge=1)
    vocab: int = Field(ge=1)
    dtype: str = Field(min_length=1, description="dtype of the trained weights, e.g. 'float32'")
    n_params: int = Field(ge=1, description="parameters of the base model, frozen ones included")


class PeftInfo(_Frozen):
    """The PEFT scheme: which modules were added and how big they are."""

    method: Literal["lora", "adapter", "ia3"]
    rank: int | None = Field(default=None, ge=1, description="LoRA rank r")
    alpha: float | None = Field(default=None, gt=0, description="LoRA scaling alpha")
    adapter_size: int | None = Field(default=None, ge=1, description="Adapter bottleneck width")
    targets: list[str] = Field(min_length=1, description="targeted sub-layers, e.g. ['query', 'key']")


class ModuleRow(_Frozen):
    """One PEFT module (the unit KR kills and revives), with its measured FLOPs per token."""

    name: str = Field(min_length=1)
    layer: int = Field(ge=0)
    kind: str = Field(min_length=1, description="e.g. 'q', 'k', 'v', 'o', 'adapter-attn', 'ia3-ffn'")
    d_in: int = Field(ge=1)
    d_out: int = Field(ge=1)
    params: int = Field(ge=1, description="trainable parameters of the module")
    fwd_flops_per_token: NonNegFloat
    bwd_flops_per_token: NonNegFloat


class FlopInfo(_Frozen):
    """Where the FLOP numbers come from and how they are counted."""

    source: str = Field(min_length=1, description="e.g. 'torch.utils.flop_counter' or 'fvcore'")
    convention: str = Field(min_length=1, description="e.g. '1 MAC = 2 FLOPs'")
    base_fwd_flops_per_token: float = Field(gt=0, description="frozen base model, forward")
    base_bwd_flops_per_token: float = Field(ge=0, description="frozen base model, backward (input grads only)")


class KRSettings(_Frozen):
    """``dlora_sim.kr.KRConfig`` as recorded: every KR constant of the run, field by field."""

    budget: int = Field(ge=0, description="0 only for arm 'head-only'")
    arm: Arm
    window_steps: int = Field(ge=1)
    warmup_rounds: int = Field(ge=0)
    hysteresis: NonNegFloat
    score: ScoreName
    normalisation: Literal["none", "sqrt-params", "relative"]
    ema: float = Field(ge=0, lt=1)
    revival_pressure: NonNegFloat
    probe: Literal["all", "killed", "none"]
    probe_calibration: Literal["per-module", "global"] = "global"  # absent in early profiles: they used global
    probe_scale: float = Field(gt=0)
    kill_keep_fraction: float = Field(ge=0, lt=1)
    seed: int = Field(ge=0)

    @classmethod
    def from_config(cls, config: Any) -> KRSettings:
        """Copy every field from a ``KRConfig`` (read by attribute, so no import is needed)."""
        return cls(**{name: getattr(config, name) for name in cls.model_fields})


class Setup(_Frozen):
    """How the run was set up; enough to reproduce it with ``dlora-sim profile``."""

    task: str = Field(min_length=1)
    arm: Arm
    budget: int = Field(ge=0, description="0 only for arm 'head-only'")
    steps: int = Field(ge=1)
    lr: float = Field(gt=0)
    batch: int = Field(ge=1)
    seq_len: int = Field(ge=1)
    seed: int = Field(ge=0)
    kr: KRSettings
    library_versions: dict[str, str] = Field(description="e.g. {'torch': '2.13.0', 'peft': '0.13.2'}")
    command: str | None = Field(default=None, description="the command line that produced the file")
    hardware: str | None = Field(default=None, description="where it ran, e.g. 'cpu: <model> (2 cores), 1 torch thread'")
    upload_noise: float = Field(default=0.0, ge=0, description="Gaussian noise scale σ on the uploaded embedding "
                                "output, in training and at evaluation (0 = none)")
    train_embeddings: bool = Field(default=False, description="the device also trained its word-embedding table")

    @model_validator(mode="after")
    def _kr_agrees(self) -> Setup:
        if (self.budget == 0) != (self.arm == "head-only"):
            raise ValueError(f"budget is 0 exactly for arm 'head-only'; got budget {self.budget} with arm {self.arm!r}")
        if self.kr.arm != self.arm:
            raise ValueError(f"kr.arm {self.kr.arm!r} differs from arm {self.arm!r}")
        if self.kr.budget != self.budget:
            raise ValueError(f"kr.budget {self.kr.budget} differs from budget {self.budget}")
        return self


class EvalPoint(_Frozen):
    """Accuracy at one step (on the dev split in ``traces.eval``, the test split in ``traces.test_eval``)."""

    step: int = Field(ge=0)
    accuracy: float = Field(ge=0, le=1)


class Traces(_Frozen):
    """Per-round, per-step and per-evaluation records of the run.

    ``norms[r][m]`` is what KR round r was given for module m (the weight norm ‖W(t)‖ with score
    ``norm-diff``; the change ‖W(t) − W(t−w)‖ with ``diff-norm``). ``active[r]`` is the sorted list
    of module indices active *after* round r. ``probe_change[r][m]`` is the probe estimate, null
    where no probe ran. ``update_norms[r][m]`` (LoRA runs since schema 2) is ‖ΔW‖ = (α/r)·‖B·A‖
    of module m at round r, what score ``update-norm-diff`` ranks by.
    """

    round_steps: list[int]
    norms: list[list[float]]
    active: list[list[int]]
    probe_change: list[list[float | None]] | None = None
    update_norms: list[list[NonNegFloat]] | None = None
    loss: list[float] = Field(min_length=1)
    eval: list[EvalPoint] = Field(default_factory=list)
    step_time_s: list[float] = Field(default_factory=list)
    test_eval: list[EvalPoint] | None = Field(default=None, description="test accuracy at the eval steps "
                                              "(`dlora-sim profile --eval-test`): the accuracy-vs-steps curve")


class KROverhead(_Frozen):
    """KR's own cost, averaged per training step (so it adds directly to a step's cost)."""

    norm_s_per_step: NonNegFloat
    probe_s_per_step: NonNegFloat
    norm_flops_per_step: NonNegFloat
    probe_flops_per_step: NonNegFloat
    probe_batches: int = Field(ge=0, description="probe batches over the whole run")
    rounds: int = Field(ge=0)


class Result(_Frozen):
    """Final numbers of the run."""

    dev_accuracy: float = Field(ge=0, le=1)
    test_accuracy: float = Field(ge=0, le=1)
    trainable_params: int = Field(ge=0, description="what the arm trained: the head plus the active "
                                  "modules' parameters, averaged over the steps (rounded)")
    head_params: int | None = Field(default=None, ge=0, description="the task head's parameters (always trained)")
    test_predictions: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None, description="predicted class (choice) index per test example, in test-split order")
    wall_s: NonNegFloat


class Profile(_Frozen):
    """One profile file; ``docs/kr.md`` describes every field."""

    schema_version: Literal[2]
    model: ModelInfo
    peft: PeftInfo
    modules: list[ModuleRow] = Field(min_length=1)
    flops: FlopInfo
    setup: Setup
    traces: Traces
    kr_overhead: KROverhead
    result: Result

    @property
    def n_modules(self) -> int:
        """Number of PEFT modules (N)."""
        return len(self.modules)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        """Cross-field rules: shapes agree, indices are in range, the budget is honoured."""
        n, setup, tr = self.n_modules, self.setup, self.traces
        names = [m.name for m in self.modules]
        if len(set(names)) != n:
            raise ValueError("modules: names must be unique")
        if setup.arm != "all" and setup.budget > n:
            raise ValueError(f"setup.budget: {setup.budget} exceeds the {n} modules")
        rounds = len(tr.round_steps)
        if len(tr.norms) != rounds or len(tr.active) != rounds:
            raise ValueError(f"traces: round_steps, norms and active need one entry per round ({rounds}); got {len(tr.norms)} norms, {len(tr.active)} active")
        if tr.probe_change is not None and len(tr.probe_change) != rounds:
            raise ValueError(f"traces.probe_change: needs {rounds} rows, got {len(tr.probe_change)}")
        if tr.update_norms is not None and (len(tr.update_norms) != rounds or any(len(row) != n for row in tr.update_norms)):
            raise ValueError(f"traces.update_norms: needs {rounds} rows of {n} values")
        if any(b <= a for a, b in zip(tr.round_steps, tr.round_steps[1:])) or any(not 0 <= s <= setup.steps for s in tr.round_steps):
            raise ValueError(f"traces.round_steps: must increase strictly within 0..{setup.steps}")
        for r in range(rounds):
            if len(tr.norms[r]) != n:
                raise ValueError(f"traces.norms[{r}]: needs {n} values (one per module), got {len(tr.norms[r])}")
            if any(v < 0 for v in tr.norms[r]):
                raise ValueError(f"traces.norms[{r}]: norms must be >= 0")
            if tr.probe_change is not None and len(tr.probe_change[r]) != n:
                raise ValueError(f"traces.probe_change[{r}]: needs {n} values, got {len(tr.probe_change[r])}")
            row = tr.active[r]
            if row != sorted(set(row)) or any(not 0 <= i < n for i in row):
                raise ValueError(f"traces.active[{r}]: must be sorted unique indices in 0..{n - 1}")
        _check_active_rule(tr.active, setup.arm, setup.budget, n)
        if len(tr.loss) != setup.steps:
            raise ValueError(f"traces.loss: needs {setup.steps} values (one per step), got {len(tr.loss)}")
        if tr.step_time_s and len(tr.step_time_s) != setup.steps:
            raise ValueError(f"traces.step_time_s: needs {setup.steps} values or none, got {len(tr.step_time_s)}")
        if any(p.step > setup.steps for p in tr.eval):
            raise ValueError(f"traces.eval: steps must be <= setup.steps ({setup.steps})")
        if tr.test_eval is not None and any(p.step > setup.steps for p in tr.test_eval):
            raise ValueError(f"traces.test_eval: steps must be <= setup.steps ({setup.steps})")
        res = self.result
        if res.head_params is not None:
            expected = mean_trainable_params(self, res.head_params)
            if abs(res.trainable_params - expected) > 1:
                raise ValueError(f"result.trainable_params: {res.trainable_params} is not head_params + the mean "
                                 f"active module parameters over the steps ({expected:.0f})")
        if res.test_predictions is not None and not res.test_predictions:
            raise ValueError("result.test_predictions: empty; omit the field instead")
        return self


def _check_active_rule(active: list[list[int]], arm: str, budget: int, n: int) -> None:
    """Each arm's active-set rule (see ``dlora_sim.kr``), checked on the recorded history.

    ``all``: every row holds all N modules. Other arms: rows hold N (warm-up) until the first
    cut, and exactly B from the first row of size B on; ``kill-only`` may shrink through sizes in
    between, each row a subset of the one before; ``static-topB``, ``static-random`` and
    ``head-only`` (B = 0) never change after their cut.
    """
    for r, row in enumerate(active):
        size = len(row)
        if arm == "all":
            if size != n:
                raise ValueError(f"traces.active[{r}]: arm 'all' keeps all {n} modules active, got {size}")
            continue
        previous = active[r - 1] if r else list(range(n))
        if len(previous) == budget and size != budget:
            raise ValueError(f"traces.active[{r}]: must hold exactly budget={budget} modules after the cut, got {size}")
        if arm == "kill-only":
            if not set(row) <= set(previous) or size < budget:
                raise ValueError(f"traces.active[{r}]: arm 'kill-only' only removes modules and keeps >= {budget}")
        elif size not in (n, budget) or (size == n and len(previous) != n):
            raise ValueError(f"traces.active[{r}]: arm {arm!r} needs {n} (warm-up) or exactly budget={budget} modules, got {size}")
        if arm in ("static-topB", "static-random", "head-only") and len(previous) == budget and row != previous:
            raise ValueError(f"traces.active[{r}]: arm {arm!r} must not change after its cut")


# -- reading and writing -------------------------------------------------------------------


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file.

    Args:
        path: a JSON file written by :func:`save_profile`.

    Returns:
        The validated profile.

    Raises:
        InputError: ``"<path>: <problem>"`` on one line, for a missing or unreadable file, bad
            JSON (corrupt or truncated), a different ``schema_version``, or a field that fails
            validation (the message names the field).
    """
    path = Path(path)
    data = read_json_object(path, "profile")
    _refuse_unreadable_values(data, path)
    version = data.get("schema_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise InputError(f"{path}: schema_version is {version!r}; this dlora-sim reads versions {readable}")
    try:
        profile = Profile.model_validate({**data, "schema_version": SCHEMA_VERSION})
    except ValidationError as error:
        raise InputError(f"{path}: {first_problem(error)}") from None
    return _upgrade_v1(profile) if version == 1 else profile


def _upgrade_v1(profile: Profile) -> Profile:
    """A version 1 profile read as version 2: its ``trainable_params`` counted every module.

    Version 1 wrote head + all modules for every arm; the head is that minus the modules, and
    the traces say which modules trained when, so the real average is recovered exactly.
    """
    head = profile.result.trainable_params - sum(m.params for m in profile.modules)
    if head < 0:
        return profile  # not what version 1 wrote; keep the number rather than guess
    mean = round(mean_trainable_params(profile, head))
    result = profile.result.model_copy(update={"trainable_params": mean, "head_params": head})
    return profile.model_copy(update={"result": result})


def _refuse_unreadable_values(data: dict[str, Any], path: Path) -> None:
    """Nesting no profile has and integers beyond float precision (the readers compute with
    numpy), refused before validation meets them."""
    where = too_deep_at(data)
    if where is not None:
        raise InputError(f"{path}: {where}: nested more than {MAX_DEPTH} levels deep")
    where = first_at(data, lambda node: type(node) is int and abs(node) > MAX_EXACT_INT)
    if where is not None:
        raise InputError(f"{path}: {where}: integer above 2**53 in magnitude")


def save_profile(profile: Profile, path: str | Path) -> None:
    """Write ``profile`` as sorted, indented JSON, atomically (all or nothing)."""
    atomic_write_json(path, profile.model_dump(mode="json"))


# -- helpers for the simulator and the dashboards -------------------------------------------


def active_matrix(profile: Profile) -> np.ndarray:
    """Bool array rounds × modules: True where the module was active after the round."""
    matrix = np.zeros((len(profile.traces.active), profile.n_modules), dtype=bool)
    for r, row in enumerate(profile.traces.active):
        matrix[r, row] = True
    return matrix


def mean_trainable_params(profile: Profile, head_params: int) -> float:
    """Head plus the parameters of the modules that trained, averaged over the steps.

    Every module trains until the first round (after step ``round_steps[0]``); after round r
    the modules in ``active[r]`` train until the next round. A device-trained word-embedding
    table (``setup.train_embeddings``) trains at every step.
    """
    sizes = np.array([m.params for m in profile.modules], dtype=float)
    steps, tr = profile.setup.steps, profile.traces
    bounds = [0, *tr.round_steps, steps]
    rows = [list(range(profile.n_modules)), *tr.active]
    total = sum((end - start) * sizes[row].sum() for start, end, row in zip(bounds, bounds[1:], rows))
    table = profile.model.vocab * profile.model.d_model if profile.setup.train_embeddings else 0
    return head_params + table + float(total) / steps


def active_fraction_series(profile: Profile) -> np.ndarray:
    """Per round, the fraction of modules active after it (B/N after the cut, 1.0 in warm-up)."""
    return active_matrix(profile).mean(axis=1)


def churn_series(profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Per round, how many modules were killed and how many revived (int arrays).

    Round 0 is compared with the all-active start, so the warm-up cut shows as N − B kills.
    """
    matrix = active_matrix(profile)
    before = np.vstack([np.ones((1, profile.n_modules), dtype=bool), matrix[:-1]])
    kills = (before & ~matrix).sum(axis=1)
    revivals = (~before & matrix).sum(axis=1)
    return kills, revivals
