"""What every scenario section shares: frozen, strict about keys and types, paths relative to the file.

Numbers are strict: a string or a boolean is never read as a number (``steps = "20"`` or
``budget = true`` is an error, not 20 or 1). Integer fields take integers, or floats with an
integral value such as ``memory_bytes = 8e9``. Physical quantities are bounded to what the
simulator's float arithmetic carries: a positive bandwidth below 1 bit/s would become 0 bytes/s
after a unit change (``5e-324`` bps), and products of huge values overflow to ``inf``, which no
results file can hold. Lists and paths keep their lax parsing (a TOML array is a tuple, a string
a path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationInfo

from dlora_sim.io import MAX_EXACT_INT

#: longest duration, in seconds (about 30 million years): beyond it only overflow is gained
MAX_SECONDS = 1e15
#: bandwidths, in bit/s: a positive value below 1 bit/s would be 0 bytes/s after a unit change
#: (``5e-324 / 8``), and 1 Pbit/s is beyond any link
MIN_BITS_PER_SECOND, MAX_BITS_PER_SECOND = 1.0, 1e15


def _integral_float_to_int(value: Any) -> Any:
    """``8e9`` bytes is a natural way to write an integer in TOML; 8.5 and ``true`` stay errors."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


#: every count ends up in float arithmetic, which is exact for integers only up to 2**53
Int = Annotated[int, BeforeValidator(_integral_float_to_int), Field(le=MAX_EXACT_INT)]
PositiveInt = Annotated[Int, Field(gt=0)]
NonNegativeInt = Annotated[Int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
#: a mean time between events, at least a nanosecond, so that horizon / mean stays a finite count
MeanSeconds = Annotated[float, Field(ge=1e-9, le=MAX_SECONDS, allow_inf_nan=False)]
#: a shared link's or a device's own bandwidth
BitsPerSecond = Annotated[float, Field(ge=MIN_BITS_PER_SECOND, le=MAX_BITS_PER_SECOND, allow_inf_nan=False)]
#: a device's FLOP/s, 1 to 10^18 (an exascale machine)
FlopsPerSecond = Annotated[float, Field(ge=1.0, le=1e18, allow_inf_nan=False)]
#: energy per FLOP, up to 1 J (phones spend ~10^-11 J)
JoulesPerFlop = Annotated[float, Field(gt=0, le=1.0, allow_inf_nan=False)]
UsdPerHour = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]
#: a carrier's price of mobile data; 0 = flat rate (no cost per byte)
UsdPerGb = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]
#: for lists and paths: a TOML array becomes a tuple (its items stay strict), a string a path
Lax = Strict(False)


class _Section(BaseModel):
    """Base of every section: frozen, unknown keys rejected, no coercion into numbers or bools."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, validate_default=True)


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", Path.cwd()))


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """Relative paths are relative to the scenario file's folder (see docs/scenarios.md)."""
    path = Path(path).expanduser()
    return (path if path.is_absolute() else _base_dir(info) / path).resolve()
