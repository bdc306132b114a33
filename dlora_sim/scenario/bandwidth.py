"""Links whose bandwidth follows a trace: a group's own links, or a shared link of the network.

``[[fleet.groups]] bandwidth_trace = { up = ..., down = ..., mode, offset_s, trace, scale }`` and
``[[network.link_traces]]`` (the same keys, plus which shared link: ``access``, ``region`` or
``edge``). The files are bandwidth traces (docs/traces.md), read and checked when the scenario is
validated. A traced link needs the ``step`` or ``module`` engine; the scenario refuses the
``segment`` granularity for it (:func:`segment_problem`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainSerializer, PlainValidator, ValidationInfo, field_validator, model_validator

from dlora_sim.scenario._base import MAX_BITS_PER_SECOND, MAX_SECONDS, Lax, _resolve, _Section
from dlora_sim.scenario._files import FieldError
from dlora_sim.traces.bandwidth import BandwidthTrace, find, load_bandwidth

DIRECTIONS = ("up", "down")


def _offset(value: Any) -> float | str:
    """Seconds (a number in [0, MAX_SECONDS]) or "random"; one message for anything else."""
    if value == "random" and isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f'must be a number of seconds or "random", got {value!r}'[:120])
    if not (math.isfinite(value) and 0 <= value <= MAX_SECONDS):
        raise ValueError(f"must be in [0, {MAX_SECONDS:g}] s or \"random\", got {value!r}")
    return float(value)


#: seconds into the trace where simulated time 0 falls, or "random"
Offset = Annotated[float | str, PlainValidator(_offset), PlainSerializer(lambda v: v)]
Scale = Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)]


class BandwidthTraceSpec(_Section):
    """A link whose capacity follows a bandwidth trace, per direction.

    ``up`` (toward the cloud) and ``down``: trace files (CSV or Parquet), at least one; a
    direction without one keeps its constant rate. ``mode``: ``looped`` (the trace repeats) or
    ``clipped`` (after its end the last rate holds). ``offset_s``: seconds into the trace at
    simulated time 0, or ``"random"``: uniform over the trace's duration, drawn with the run seed
    (per device for a group). ``trace``: which trace of a file holding several (default: each
    device, or the shared link, draws one with the run seed). ``scale``: multiplies every rate.
    """

    up: Annotated[Path | None, Lax] = None
    down: Annotated[Path | None, Lax] = None
    mode: Literal["looped", "clipped"] = "looped"
    offset_s: Offset = "random"
    trace: str | None = None
    scale: Scale = 1.0

    @field_validator("up", "down")
    @classmethod
    def _trace_loads(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        path = _resolve(path, info)
        load_bandwidth(path)  # raises ValueError naming the file, row and column
        return path

    @model_validator(mode="after")
    def _consistent(self) -> BandwidthTraceSpec:
        if self.up is None and self.down is None:
            raise FieldError("up", "give the trace of at least one direction: up, down or both")
        for direction in DIRECTIONS:
            path = getattr(self, direction)
            if path is None:
                continue
            if self.trace is not None:
                try:
                    find(load_bandwidth(path), self.trace, path)
                except ValueError as error:
                    raise FieldError("trace", str(error)) from None
            peak = max(float(t.mbit_s.max()) for t in self.traces(direction)) * 1e6 * self.scale
            if peak > MAX_BITS_PER_SECOND:
                raise FieldError("scale", f"{self.scale:g} × the {direction} trace's peak is {peak:.3g} bit/s, "
                                          f"above {MAX_BITS_PER_SECOND:g}")
        return self

    def traces(self, direction: str) -> tuple[BandwidthTrace, ...]:
        """The traces a device (or the link) may follow in ``direction`` (empty: none)."""
        path = getattr(self, direction)
        if path is None:
            return ()
        traces = load_bandwidth(path)
        return (find(traces, self.trace, path),) if self.trace is not None else traces

    def mean_bps(self, direction: str) -> float | None:
        """The time-average rate (bit/s, scaled) over the traces of ``direction``; None: untraced."""
        traces = self.traces(direction)
        if not traces:
            return None
        return self.scale * 1e6 * sum(t.mean_mbit_s for t in traces) / len(traces)


class LinkTrace(BandwidthTraceSpec):
    """``[[network.link_traces]]``: one shared link of the network follows a trace.

    Which link: ``access`` (built-in tree: that access network's link to its region),
    ``region`` (built-in: that region's link to the cloud) or ``edge`` (GraphML: the edge between
    two nodes); exactly one. ``offset_s`` defaults to 0 (the trace's start at time 0).
    """

    access: str | None = None
    region: str | None = None
    edge: Annotated[tuple[str, str] | None, Lax] = None
    offset_s: Offset = 0.0

    @model_validator(mode="after")
    def _one_link(self) -> LinkTrace:
        named = [key for key in ("access", "region", "edge") if getattr(self, key) is not None]
        if len(named) != 1:
            raise FieldError(named[1] if len(named) > 1 else "access",
                             "name exactly one shared link: access = \"<access network>\", region = "
                             "\"<region>\" (built-in network) or edge = [\"<node>\", \"<node>\"] (GraphML)")
        return self

    @property
    def selector(self) -> str:
        """The key that names the link (``access``, ``region`` or ``edge``)."""
        return next(key for key in ("access", "region", "edge") if getattr(self, key) is not None)


def segment_problem(scenario) -> tuple[str, str] | None:
    """``(field, problem)`` when a traced link meets ``granularity = "segment"``, else None."""
    if scenario.run.granularity != "segment":
        return None
    why = ('time-varying bandwidth needs granularity "step" or "module"; the segment engine shares '
           "constant capacities only (set run.granularity, or remove the trace)")
    for index, group in enumerate(scenario.fleet.groups):
        if group.bandwidth_trace is not None:
            return f"fleet.groups.{index}.bandwidth_trace", why
    if scenario.network.link_traces:
        return "network.link_traces", why
    return None
