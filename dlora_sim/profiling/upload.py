"""What the device does to the embedding layer's output before it crosses to the cloud.

Under DLoRA the device uploads the embedding output, and the cloud, holding the same public
table, reads the text back from it (``dlora_sim.privacy.tokens``). A device can blur what it
uploads with Gaussian noise of scale ``σ``; this module applies that noise inside real training,
so a profile measures the accuracy it costs.

The noise is on in training *and* at evaluation: the device uploads its embeddings whenever the
cloud runs the blocks for it, at inference as much as in training, so a defence that were off at
test time would leave the test text exposed and the accuracy it reports would not be the one a
protected user gets. It comes from its own generator (seeded from the run's seed), so the
dropout stream and batch order are those of the un-noised run with the same seed.
"""

from __future__ import annotations

import torch

# Offset of the noise generator's seed from the run's seed: an independent stream.
_NOISE_SEED_OFFSET = 104_729


def add_upload_noise(embeddings: torch.nn.Module, sigma: float, seed: int) -> None:
    """Make ``embeddings`` emit its output plus ``sigma``·N(0, 1) noise, in train and eval mode.

    Nothing is attached for ``sigma == 0``, so an un-noised run is the very run it always was.

    Raises:
        ValueError: a negative or non-finite ``sigma``.
    """
    if not (sigma >= 0 and sigma < float("inf")):
        raise ValueError(f"upload noise sigma must be a finite number >= 0, got {sigma!r}")
    if sigma == 0:
        return
    generator = torch.Generator().manual_seed(seed + _NOISE_SEED_OFFSET)

    def _noisy(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return output + sigma * torch.randn(output.shape, generator=generator, dtype=output.dtype)

    embeddings.register_forward_hook(_noisy)


def train_word_embeddings(embeddings: torch.nn.Module) -> int:
    """Let the device train its word-embedding table (a private table the cloud does not hold);
    returns the number of parameters that now train."""
    weight = embeddings.word_embeddings.weight
    weight.requires_grad_(True)
    return weight.numel()
