"""Token recovery from uploaded embeddings: nearest row of the public embedding table.

Under DLoRA the device uploads the output of the embedding layer. For MiniLM (a BERT encoder)
that is ``LayerNorm(word[v] + position[p] + type[0])`` for the token ``v`` at position ``p``.
The cloud runs the same public model, so for every position it can compute that vector for every
vocabulary entry and pick the nearest one (Euclidean distance) to what arrived. Gaussian noise of
scale ``σ`` on the uploaded values (a defence the device can add) blurs the match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class TokenRecovery:
    """Outcome of one attack: tokens recovered exactly, of those tried, at noise scale ``sigma``."""

    sigma: float
    recovered: int
    tokens: int

    @property
    def rate(self) -> float:
        return self.recovered / self.tokens if self.tokens else 0.0


@torch.no_grad()
def uploaded_embeddings(embeddings: torch.nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """What the device sends up for ``input_ids`` (batch × length): the embedding layer's output."""
    embeddings.eval()  # no dropout: the device's uploads are deterministic functions of the text
    return embeddings(input_ids=input_ids)


@torch.no_grad()
def position_table(embeddings: torch.nn.Module, position: int, vocab: int, chunk: int = 8192) -> torch.Tensor:
    """Every vocabulary entry at ``position`` as the embedding layer emits it (vocab × d)."""
    rows = []
    for start in range(0, vocab, chunk):
        ids = torch.arange(start, min(vocab, start + chunk))[None, :]
        rows.append(embeddings(input_ids=ids, position_ids=torch.full_like(ids, position))[0])
    return torch.cat(rows)


@torch.no_grad()
def nearest_row_hits(embeddings: torch.nn.Module, plain: torch.Tensor, input_ids: torch.Tensor,
                     attention_mask: torch.Tensor) -> int:
    """Real tokens (``attention_mask``) whose estimated plain upload ``plain`` (batch × length × d)
    has its own token as the nearest row of the public table at its position."""
    vocab = embeddings.word_embeddings.weight.shape[0]
    real = attention_mask.bool()
    hits = 0
    for p in range(input_ids.shape[1]):
        guesses = torch.cdist(plain[:, p, :], position_table(embeddings, p, vocab)).argmin(dim=1)
        hits += int(((guesses == input_ids[:, p]) & real[:, p]).sum())
    return hits


@torch.no_grad()
def recover_tokens(embeddings: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   sigmas: list[float], seed: int) -> list[TokenRecovery]:
    """Upload ``input_ids`` with Gaussian noise of each scale in ``sigmas`` and count the tokens the
    cloud recovers exactly by nearest row (padding excluded).

    Raises:
        ValueError: a negative or non-finite ``sigma``.
    """
    for sigma in sigmas:
        if not (np.isfinite(sigma) and sigma >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    clean = uploaded_embeddings(embeddings, input_ids)
    generator = torch.Generator().manual_seed(seed)
    noisy = [clean + sigma * torch.randn(clean.shape, generator=generator) for sigma in sigmas]
    real = attention_mask.bool()
    vocab = embeddings.word_embeddings.weight.shape[0]
    hits = [0] * len(sigmas)
    for p in range(input_ids.shape[1]):
        table = position_table(embeddings, p, vocab)  # one table per position serves every sigma
        for k, uploaded in enumerate(noisy):
            guesses = torch.cdist(uploaded[:, p, :], table).argmin(dim=1)
            hits[k] += int(((guesses == input_ids[:, p]) & real[:, p]).sum())
    return [TokenRecovery(float(sigma), hit, int(real.sum())) for sigma, hit in zip(sigmas, hits)]
