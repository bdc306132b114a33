"""``[job]``: the fine-tuning job every device in the fleet runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dlora_sim.errors import InputError
from dlora_sim.scenario import _catalog, _files
from dlora_sim.scenario._base import Lax, NonNegativeInt, PositiveInt, _resolve, _Section
from dlora_sim.scenario._files import FieldError

#: tokens per step (batch × seq_len, and the probe batch's): 250× the largest pretraining
#: batches; beyond it the cost model's FLOP and byte counts only head for overflow
MAX_TOKENS_PER_STEP = 10**9


class JobConfig(_Section):
    """The fine-tuning job every device in the fleet runs (``[job]``).

    ``steps`` and ``target_accuracy`` are alternatives: with a target, the step count is the
    first evaluated step at which the profile's recorded accuracy reaches it
    (:attr:`total_steps`).
    """

    model: str = "llama-7b"
    peft: Literal["lora", "adapter", "ia3"] = "lora"
    rank: PositiveInt = 8
    targets: Annotated[tuple[str, ...], Lax] = ()
    adapter_size: PositiveInt = 64
    batch: PositiveInt = 4
    seq_len: PositiveInt = 256
    dtype_bytes: Literal[1, 2, 4] = 2
    steps: PositiveInt | None = None
    target_accuracy: Annotated[float, Field(gt=0, le=1)] | None = None
    budget: PositiveInt = 16
    kr_interval_steps: PositiveInt = 50
    kr_warmup_rounds: NonNegativeInt = 1
    probe_batch: PositiveInt | None = None
    loss_tokens_per_sample: PositiveInt = 1
    head_out_dim: PositiveInt | None = None
    killed_policy: Literal["offload", "edge-forward"] = "offload"
    head_placement: Literal["edge", "cloud"] = "edge"
    exchange: Literal["activations", "weights"] = "activations"
    share_inputs: bool = True
    split_blocks: PositiveInt = 1
    split_lora: Literal["edge", "both"] = "both"
    fed_round_steps: PositiveInt = 50
    # DLoRA's upload defences (docs/privacy.md); the cost model prices their device FLOPs
    upload_noise: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    upload_rotation: bool = False
    profile: Annotated[Path, Lax]

    @model_validator(mode="before")
    @classmethod
    def _default_targets(cls, data: Any) -> Any:
        """No ``targets`` → the PEFT method's default (lora q,k,v,o; adapter attn,ffn; ia3 k,v,down)."""
        if isinstance(data, dict) and "targets" not in data and isinstance(data.get("peft", "lora"), str):
            data = {**data, "targets": _catalog.default_targets(data.get("peft", "lora"))}
        return data

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str, info: ValidationInfo) -> str:
        """A catalog name, or a Hugging Face config.json (relative to the scenario file), whose
        shape is read and checked now; the path is kept absolute."""
        if _catalog.is_model_file(name):
            path = _resolve(Path(name), info)
            _files.load_model_config_cached(path)  # raises ValueError naming the file and key
            return str(path)
        return _catalog.check_name("model", name)

    @field_validator("dtype_bytes", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # True == 1 would pass the literal check
            raise ValueError(f"must be 1, 2 or 4 (bytes), not {str(value).lower()}")
        return value

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, targets: tuple[str, ...]) -> tuple[str, ...]:
        if not targets:
            raise ValueError("at least one target module kind is needed, e.g. ['q', 'v']")
        if len(set(targets)) != len(targets):
            raise ValueError(f"targets repeat a name: {list(targets)}")
        return targets

    @field_validator("profile")
    @classmethod
    def _profile_loads(cls, path: Path, info: ValidationInfo) -> Path:
        path = _resolve(path, info)
        _files.load_profile_cached(path)  # raises ValueError naming the problem
        return path

    @model_validator(mode="after")
    def _consistent(self) -> JobConfig:
        self._check_sizes()
        if self.loss_tokens_per_sample > self.seq_len:
            raise FieldError("loss_tokens_per_sample", f"{self.loss_tokens_per_sample} is above seq_len {self.seq_len}")
        if (self.steps is None) == (self.target_accuracy is None):
            raise FieldError("steps", "give exactly one of 'steps' or 'target_accuracy'")
        try:
            n_modules = self.module_count
        except ValueError as error:  # a target the model does not have
            raise FieldError("targets", str(error)) from None
        if self.budget > n_modules:
            raise FieldError(
                "budget",
                f"{self.budget} is above the {n_modules} PEFT modules of {self.model} "
                f"{self.peft} on targets {','.join(self.targets)}; allowed: 1..{n_modules}",
            )
        if self.target_accuracy is not None:
            _files.steps_to_accuracy(self.profile, self.target_accuracy)  # raises if never
        try:  # whatever else the cost model refuses is refused here, at the boundary
            self.to_job_spec()
        except InputError as error:
            first_word = str(error).split(" ", 1)[0].rstrip(":")
            raise FieldError(first_word if first_word in type(self).model_fields else "", str(error)) from None
        except ArithmeticError as error:  # an overflow the bounds above did not foresee
            raise FieldError("", f"the cost model cannot price this job: {error}") from None
        return self

    def _check_sizes(self) -> None:
        """Shapes no model has: a rank or bottleneck wider than the model, absurd token counts."""
        width = _catalog.model_width(self.model)
        for field in ("rank", "adapter_size"):
            if getattr(self, field) > width:
                raise FieldError(field, f"{getattr(self, field)} is above d_model = {width} of {self.model}; "
                                        f"allowed: 1..{width}")
        for field, samples in (("batch", self.batch), ("probe_batch", self.probe_batch)):
            if samples is not None and samples * self.seq_len > MAX_TOKENS_PER_STEP:
                raise FieldError(field, f"{field} × seq_len = {samples * self.seq_len:.2e} tokens per step, "
                                        f"above the {MAX_TOKENS_PER_STEP:,} this cost model is meant for")

    @property
    def module_count(self) -> int:
        """Number of PEFT modules of this model/PEFT/targets (the cost model's module table)."""
        return _catalog.module_count(self)

    @property
    def total_steps(self) -> int:
        """Training steps per device: ``steps``, or the profile's steps to ``target_accuracy``."""
        if self.steps is not None:
            return self.steps
        assert self.target_accuracy is not None
        return _files.steps_to_accuracy(self.profile, self.target_accuracy)

    def load_profile(self) -> Any:
        """The job's :class:`dlora_sim.profile.Profile` (loaded once per file version)."""
        return _files.load_profile_cached(self.profile)

    def to_job_spec(self, **overrides: Any) -> Any:
        """This job as the cost model's ``JobSpec`` (one source of truth for per-step costs).

        ``overrides`` set ``JobSpec`` fields the scenario does not own, e.g. the KR churn that
        is otherwise measured in the profile (``kr_churn=...``).
        """
        return _catalog.job_spec(self, **overrides)
