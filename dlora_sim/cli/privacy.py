"""``dlora-sim privacy``: measure what the cloud recovers from what crosses the link (issue 12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlora_sim.cli.app import app
from dlora_sim.errors import InputError


def _sigmas(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--sigma: {text!r} is not a comma-separated list of numbers") from None
    if not values or any(not (v >= 0 and v < float("inf")) for v in values):
        raise InputError(f"--sigma: give finite noise scales >= 0, got {text!r}")
    return values


@app.command()
def privacy(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write privacy.json and privacy.html into.")],
    task: Annotated[str, typer.Option(help="WordNet task whose test text is attacked.")] = "noun-supersense",
    examples: Annotated[int, typer.Option(min=1, max=1500, help="Test examples attacked.")] = 64,
    sigma: Annotated[str, typer.Option(help="Noise scales on the uploaded embeddings, comma-separated.")] =
        "0,0.5,1,2,4,8",
    max_len: Annotated[int, typer.Option(min=2, max=128, help="Tokens per example (truncated).")] = 32,
    seed: Annotated[int, typer.Option(min=0, help="Seeds the noise and the public head.")] = 0,
) -> None:
    """Measure what the cloud recovers: tokens from uploaded embeddings, labels from gradients.

    Tokens are matched against the public embedding table at each noise scale, labels recovered
    through a frozen public head, on real task text and the real MiniLM-L6 (the profile extra).
    """
    sigmas = _sigmas(sigma)
    try:
        from dlora_sim.privacy.audit import audit
    except ImportError as error:
        raise InputError(f"dlora-sim privacy needs the [profile] extra (torch, transformers): {error}") from None
    from dlora_sim.io import atomic_write_json
    from dlora_sim.report.page import Section, write_page
    from dlora_sim.report.privacy import recovery_figure

    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out exists and is not a folder")
    record = audit(task, examples, sigmas, max_len, seed)
    atomic_write_json(out / "privacy.json", record)
    write_page(out / "privacy.html", "dlora-sim — privacy audit", f"{record['task']}, {record['examples']} examples",
               [Section("What the cloud recovers", "The cloud holds the same public embedding table and head, "
                        "so it matches what the device uploads against them.", recovery_figure(record))])
    rates = ", ".join(f"σ={r['sigma']:g}: {100 * r['rate']:.1f}%" for r in record["token_recovery"])
    typer.echo(f"tokens recovered: {rates}; labels recovered: {100 * record['label_recovery']['rate']:.1f}% "
               f"-> {out / 'privacy.json'}, {out / 'privacy.html'}")
