"""What every scenario section shares: frozen, strict about keys, paths relative to the file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]


class _Section(BaseModel):
    """Base of every section: frozen, unknown keys rejected, no silent int→str coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, validate_default=True)


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", Path.cwd()))


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the scenario file's folder (see docs/scenarios.md)."""
    path = Path(path).expanduser()
    return (path if path.is_absolute() else _base_dir(info) / path).resolve()
