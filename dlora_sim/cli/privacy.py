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
    seed: Annotated[int, typer.Option(min=0, help="Seeds the noise, the public head, the rotation and the table's training.")] = 0,
    public_examples: Annotated[int, typer.Option(min=10, max=5000, help="Paragraphs of public text the block-k inversion models are fitted on.")] = 1500,
    table_steps: Annotated[int, typer.Option(min=0, help="Steps the device trains its own embedding table before it is attacked (0: skip).")] = 150,
    profiles: Annotated[Path | None, typer.Option(help="Folder of noise profiles (scripts/privacy_profiles.sh) to read the accuracy cost from.")] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch threads; keep 1 on a shared machine.")] = 1,
) -> None:
    """Measure what the cloud recovers: tokens from uploaded embeddings, labels from gradients.

    Tokens are matched against the public embedding table at each noise scale, under a private
    rotation and from a device-trained table; hidden states at every split-learning cut are
    inverted by a model fitted on public text; labels are recovered through a frozen public head.
    All on real task text and the real MiniLM-L6 (the profile extra). With --profiles, the
    accuracy each noise scale costs is read from real training runs.
    """
    sigmas = _sigmas(sigma)
    try:
        from dlora_sim.privacy.audit import audit
    except ImportError as error:
        raise InputError(f"dlora-sim privacy needs the [profile] extra (torch, transformers): {error}") from None
    from dlora_sim.io import atomic_write_json
    from dlora_sim.report.page import Section, write_page
    from dlora_sim.report.privacy import inversion_figure, recovery_figure, tradeoff_figure

    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out exists and is not a folder")
    record = audit(task, examples, sigmas, max_len, seed, public_examples=public_examples,
                   table_steps=table_steps, profiles=profiles, threads=threads)
    atomic_write_json(out / "privacy.json", record)
    write_page(out / "privacy.html", "dlora-sim — privacy audit", f"{record['task']}, {record['examples']} examples",
               [Section("What the cloud recovers", "The cloud holds the same public embedding table and head, "
                        "so it matches what the device uploads against them.", recovery_figure(record)),
                Section("What each defence costs", "Tokens the cloud recovers against the test accuracy the "
                        "device keeps: noise of growing σ (accuracy from real training with the noise on), a "
                        "device-trained embedding table, and a private rotation under each attack.",
                        tradeoff_figure(record)),
                Section("Split learning: hidden states at the cut", "Tokens recovered from the hidden state "
                        "after block k by a linear inversion fitted on public text the tasks do not contain.",
                        inversion_figure(record))])
    rates = ", ".join(f"σ={r['sigma']:g}: {100 * r['rate']:.1f}%" for r in record["token_recovery"])
    cuts = ", ".join(f"k={b['block']}: {100 * b['rate']:.1f}%" for b in record["inversion"]["blocks"])
    typer.echo(f"tokens recovered: {rates}; rotated, via the public weights: "
               f"{100 * record['rotation']['rate']['public_weights']:.1f}%; split cut {cuts}; "
               f"labels recovered: {100 * record['label_recovery']['rate']:.1f}% "
               f"-> {out / 'privacy.json'}, {out / 'privacy.html'}")
