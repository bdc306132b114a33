"""The federated result file: what one real FedAvg-of-LoRA run measured, next to what it costs.

The ``fed-lora`` strategy prices federated LoRA (local training, an upload of the LoRA weights
every round); this record says what accuracy that buys when the users' data are not alike. One
file per run (``profiles/federated/*.json``), written by ``dlora-sim fed run``: the set-up
(task, users, Dirichlet alpha, rounds, local steps, batch, lr, seed), the split it drew (every
user's examples per class), accuracy of the global model after every round, and the bytes one
user uploads per round as :mod:`dlora_sim.cost`'s ``fed-lora`` counts them.

Layering: pydantic + numpy only, like :mod:`dlora_sim.profile` (no torch), so tables and
dashboards read these files without the training stack. :func:`load_fed_record` refuses anything
malformed with one line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dlora_sim.errors import InputError, first_problem
from dlora_sim.io import MAX_DEPTH, MAX_EXACT_INT, atomic_write_json, first_at, read_json_object, too_deep_at

__all__ = ["KIND", "SCHEMA_VERSION", "FedCost", "FedPeft", "FedRecord", "FedResult", "FedSetup", "FedSplit",
           "load_fed_record", "save_fed_record"]

#: what the file is, so a reader never mistakes it for a profile (and vice versa)
KIND = "fed-lora-result"
#: bumped whenever a field changes meaning or a required field is added
SCHEMA_VERSION = 1

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[int, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]


class _Frozen(BaseModel):
    """Immutable, strict about unknown keys and types, no NaN/inf (JSON cannot carry them)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)


class FedPeft(_Frozen):
    """The LoRA every user trains (the same on all of them, so the weights can be averaged)."""

    method: Literal["lora"]
    rank: Positive
    alpha: Annotated[float, Field(gt=0)]
    targets: list[Literal["q", "k", "v", "o", "up", "down"]] = Field(min_length=1)


class FedSetup(_Frozen):
    """How the run was made: enough to rerun it (``command``) and to tell it apart."""

    task: str = Field(min_length=1)
    model: Literal["minilm-l6"]
    users: Positive
    rounds: Positive
    local_steps: Positive
    batch: Positive
    lr: Annotated[float, Field(gt=0)]
    seed: int
    max_len: Positive
    train_examples: Positive
    test_examples: Positive
    #: AdamW, a fresh one per user per round (the client starts each round from the global
    #: weights, so moments of its own previous trajectory do not apply); weight decay 0
    optimizer: Literal["adamw-fresh-per-round"]
    #: every LoRA A and B tensor and the classifier head, weighted by the users' example counts
    aggregation: Literal["fedavg-sample-weighted"]
    lora_params: Positive
    head_params: Positive
    library_versions: dict[str, str]
    hardware: str | None = None
    command: str | None = None


class FedSplit(_Frozen):
    """The non-IID split: Dirichlet(alpha) per class over the users, drawn from ``seed``."""

    method: Literal["dirichlet"]
    alpha: Annotated[float, Field(gt=0)]
    seed: int
    user_examples: list[Positive] = Field(min_length=1)
    #: users × classes
    user_label_counts: list[list[Count]] = Field(min_length=1)
    #: mean total-variation distance of a user's label mix from the pooled one (0 = IID)
    label_skew: Fraction

    @model_validator(mode="after")
    def _counts_add_up(self) -> FedSplit:
        if len(self.user_label_counts) != len(self.user_examples):
            raise ValueError(f"user_label_counts has {len(self.user_label_counts)} rows for "
                             f"{len(self.user_examples)} users")
        widths = {len(row) for row in self.user_label_counts}
        if len(widths) != 1:
            raise ValueError("user_label_counts: every row needs one count per class")
        for k, (row, n) in enumerate(zip(self.user_label_counts, self.user_examples)):
            if sum(row) != n:
                raise ValueError(f"user_label_counts[{k}] sums to {sum(row)}, user_examples[{k}] is {n}")
        return self


class FedCost(_Frozen):
    """What one user's round costs on the link, as ``dlora_sim.cost``'s ``fed-lora`` counts it
    for the same model, LoRA and round length (its sync exchange), at ``dtype_bytes`` per value.

    The cost model counts the LoRA weights only; the run also averages the small classifier
    head (``setup.head_params``), which the cost model does not price.
    """

    strategy: Literal["fed-lora"]
    dtype_bytes: Positive
    bytes_up_per_round: Annotated[float, Field(ge=0)]
    bytes_down_per_round: Annotated[float, Field(ge=0)]
    sync_rounds: Count
    #: one user's whole job (rounds × per round + the one-off model download), from job_totals
    job_bytes_up: Annotated[float, Field(ge=0)]
    job_bytes_down: Annotated[float, Field(ge=0)]


class FedResult(_Frozen):
    """Accuracy of the global model on the shared test split, and the local training loss."""

    test_accuracy: Fraction
    #: after each round's aggregation; the last entry is ``test_accuracy``
    round_accuracy: list[Fraction] = Field(min_length=1)
    #: rounds × users: mean loss of the user's local steps in the round
    round_loss: list[list[Annotated[float, Field(ge=0)]]] = Field(min_length=1)
    #: arg-max class per test example, in the split's order (paired comparison with profiles)
    test_predictions: list[Count]
    wall_s: Annotated[float, Field(ge=0)]


class FedRecord(_Frozen):
    """One federated run, validated as a whole (lengths agree with users, rounds and test size)."""

    kind: Literal["fed-lora-result"]
    schema_version: Literal[1]
    setup: FedSetup
    peft: FedPeft
    split: FedSplit
    cost: FedCost
    result: FedResult

    @model_validator(mode="after")
    def _shapes_agree(self) -> FedRecord:
        s, r = self.setup, self.result
        if len(self.split.user_examples) != s.users:
            raise ValueError(f"split.user_examples has {len(self.split.user_examples)} entries, setup.users is {s.users}")
        if sum(self.split.user_examples) > s.train_examples:
            raise ValueError(f"split.user_examples sum to {sum(self.split.user_examples)}, more than "
                             f"setup.train_examples ({s.train_examples})")
        if len(r.round_accuracy) != s.rounds:
            raise ValueError(f"result.round_accuracy has {len(r.round_accuracy)} entries, setup.rounds is {s.rounds}")
        if len(r.round_loss) != s.rounds or any(len(row) != s.users for row in r.round_loss):
            raise ValueError(f"result.round_loss must be setup.rounds × setup.users ({s.rounds} × {s.users})")
        if r.test_accuracy != r.round_accuracy[-1]:
            raise ValueError(f"result.test_accuracy {r.test_accuracy} is not the last round's accuracy "
                             f"{r.round_accuracy[-1]}")
        if len(r.test_predictions) != s.test_examples:
            raise ValueError(f"result.test_predictions has {len(r.test_predictions)} entries, "
                             f"setup.test_examples is {s.test_examples}")
        classes = len(self.split.user_label_counts[0])
        if r.test_predictions and max(r.test_predictions) >= classes:
            raise ValueError(f"result.test_predictions: class {max(r.test_predictions)} is not one of the {classes}")
        return self


def load_fed_record(path: str | Path) -> FedRecord:
    """Read and validate one federated result file.

    Raises:
        InputError: ``"<path>: <problem>"`` on one line, for a missing or unreadable file, bad or
            truncated JSON, another kind of file or schema version, or a field that fails
            validation (the message names the field).
    """
    path = Path(path)
    data = read_json_object(path, "federated result")
    where = too_deep_at(data)
    if where is not None:
        raise InputError(f"{path}: {where}: nested more than {MAX_DEPTH} levels deep")
    where = first_at(data, lambda node: type(node) is int and abs(node) > MAX_EXACT_INT)
    if where is not None:
        raise InputError(f"{path}: {where}: integer above 2**53 in magnitude")
    if data.get("kind") != KIND:
        raise InputError(f"{path}: kind is {data.get('kind')!r}, not {KIND!r} (is this a profile? "
                         f"read those with 'dlora-sim profiles')")
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version is {version!r}; this dlora-sim reads "
                         f"version {SCHEMA_VERSION}")
    try:
        return FedRecord.model_validate(data)
    except ValidationError as error:
        raise InputError(f"{path}: {first_problem(error)}") from None


def save_fed_record(record: FedRecord, path: str | Path) -> None:
    """Write ``record`` as sorted, indented JSON, atomically (all or nothing)."""
    atomic_write_json(path, record.model_dump(mode="json"))
