"""The accuracy each noise scale costs, read from real training profiles.

``scripts/privacy_profiles.sh`` trains the same job once per noise scale σ and seed with the
noise applied (``dlora-sim profile --upload-noise σ``); this module groups those profiles by
the σ they record, so the audit sets the accuracy a device keeps beside the text it protects.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from dlora_sim.errors import InputError
from dlora_sim.profile import load_profile


def noise_accuracy(folder: Path, task: str) -> list[dict[str, object]]:
    """Test accuracy per recorded noise scale (profiles of ``task`` in ``folder``, sorted by σ).

    Profiles that also trained the embedding table are another defence and are left out.

    Raises:
        InputError: ``folder`` is not a folder or holds no noise profile of ``task``, or a
            profile does not load (the message names the file).
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: --profiles is not a folder")
    runs: dict[float, list[tuple[int, float]]] = defaultdict(list)
    for path in sorted(folder.glob("*.json")):
        if path.name == "privacy.json":
            continue
        profile = load_profile(path)
        if profile.setup.task == task and not profile.setup.train_embeddings:
            runs[profile.setup.upload_noise].append((profile.setup.seed, profile.result.test_accuracy))
    if not runs:
        raise InputError(f"{folder}: no profile of task {task!r} (scripts/privacy_profiles.sh writes them)")
    out = []
    for sigma in sorted(runs):
        seeds, accuracy = zip(*sorted(runs[sigma]))
        out.append({"sigma": sigma, "seeds": list(seeds), "test_accuracy": list(accuracy),
                    "mean": float(np.mean(accuracy))})
    return out
