"""``dlora-sim traces``: convert other simulators' and emulators' traces into dlora-sim's open formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlora_sim.cli.app import app
from dlora_sim.errors import InputError

traces_app = typer.Typer(help="Convert device, availability and bandwidth traces into dlora-sim's formats "
                              "(docs/traces.md).",
                         no_args_is_help=True)
app.add_typer(traces_app, name="traces")


def _write(out: Path, text: str) -> None:
    from dlora_sim.io import atomic_write_text

    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the CSV file to write")
    try:
        atomic_write_text(out, text)
    except OSError as error:
        raise InputError(f"{out}: cannot write: {error.strerror or error}") from None
    typer.echo(f"wrote {out}")


def _write_bytes(out: Path, data: bytes) -> None:
    from dlora_sim.io import atomic_write_bytes

    try:
        atomic_write_bytes(out, data)
    except OSError as error:
        raise InputError(f"{out}: cannot write: {error.strerror or error}") from None
    typer.echo(f"wrote {out}")


@traces_app.command("fedscale-capacity")
def fedscale_capacity(
    source: Annotated[Path, typer.Argument(help="FedScale's client_device_capacity pickle.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The capacity trace (CSV) to write.")],
    ref_model: Annotated[str, typer.Option(help="Model whose per-sample time FedScale's 'computation' is.")] =
        "minilm-l6",
    ref_seq_len: Annotated[int, typer.Option(min=1, help="Tokens per sample of that reference.")] = 128,
    memory_gb: Annotated[float, typer.Option(min=1e-6, help="Memory given every device (FedScale has none).")] = 8.0,
) -> None:
    """Convert FedScale's device capacities (read as plain data only) into a capacity trace."""
    from dlora_sim.traces.capacity import load_capacity
    from dlora_sim.traces.fedscale import capacity_csv

    try:
        text = capacity_csv(source, ref_model, ref_seq_len, memory_gb)
    except ValueError as error:
        raise InputError(str(error)) from None
    _write(out, text)
    try:
        load_capacity(out)  # what was written must read back
    except ValueError as error:
        out.unlink(missing_ok=True)
        raise InputError(f"{source}: converts to an invalid trace: {error}") from None


@traces_app.command("fedscale-behave")
def fedscale_behave(
    source: Annotated[Path, typer.Argument(help="FedScale's client_behave_trace pickle.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The availability trace (CSV) to write.")],
) -> None:
    """Convert FedScale's availability trace (read as plain data only) into online intervals."""
    from dlora_sim.traces.fedscale import availability_csv

    try:
        text = availability_csv(source)
    except ValueError as error:
        raise InputError(str(error)) from None
    _write(out, text)


@traces_app.command("bandwidth")
def bandwidth(
    sources: Annotated[list[Path], typer.Argument(help="Trace files, one trace each (its id: the file's stem).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The bandwidth trace to write (.csv or .parquet).")],
    source_format: Annotated[str, typer.Option("--format", help="pensieve (time_s mbit_s a line: FCC, HSDPA) or "
                                                                "mahimahi (a millisecond a line, one 1500-byte packet each).")]
        = "pensieve",
    bin_ms: Annotated[float, typer.Option(min=1.0, help="mahimahi: the bin width the packets are counted over (ms).")]
        = 100.0,
) -> None:
    """Convert Pensieve/FCC or Mahimahi traces into one bandwidth trace file (docs/traces.md)."""
    from dlora_sim.traces.bandwidth import load_bandwidth, read_mahimahi, read_pensieve, to_csv, to_parquet

    if source_format not in ("pensieve", "mahimahi"):
        raise InputError(f"--format: {source_format!r} is not one of pensieve, mahimahi")
    if out.suffix not in (".csv", ".parquet"):
        raise InputError(f"{out}: give a .csv or .parquet file to write")
    names = [source.stem for source in sources]
    if len(set(names)) != len(names):
        raise InputError("two source files have the same name (a trace's id is its file's stem); rename one")
    try:
        traces = [read_pensieve(source) if source_format == "pensieve" else read_mahimahi(source, bin_ms / 1e3)
                  for source in sources]
    except ValueError as error:
        raise InputError(str(error)) from None
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give the file to write")
    if out.suffix == ".csv":
        _write(out, to_csv(traces))
    else:
        _write_bytes(out, to_parquet(traces))
    try:
        load_bandwidth(out)  # what was written must read back
    except ValueError as error:
        out.unlink(missing_ok=True)
        raise InputError(f"converts to an invalid trace: {error}") from None
