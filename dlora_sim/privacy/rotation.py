"""A private rotation of the uploaded embeddings, and the three ways a cloud undoes it.

The device multiplies every uploaded vector by an orthogonal ``R`` it keeps (``x ↦ R x``). The
nearest row of the public table then matches nothing. But:

* **The cloud cannot run the pretrained blocks on ``R x``** unless it is given first-layer
  weights in the rotated basis, ``W' = W Rᵀ`` (so that ``W' R x = W x``). A cloud that holds the
  public ``W`` (a square, invertible 384 × 384 query matrix in MiniLM) solves ``Rᵀ = W⁻¹ W'``
  at once (:func:`rotation_from_weights`): the rotation is gone. (In MiniLM's post-LayerNorm
  blocks the residual ``x + attention(x)`` and the per-coordinate LayerNorm gain are not
  rotation-equivariant either, so rotated query/key/value weights alone would not even compute
  the same function; more of the network would have to be re-expressed, and revealed.)
* **A rotation keeps distances.** The cloud knows where ``[CLS]``, ``[SEP]`` and ``[PAD]``
  sit (it needs the attention mask to run attention), so it knows the plain vectors of those
  *anchor* uploads. The distances from an uploaded vector to the anchors equal those from its
  plain vector, and matching that profile against every vocabulary entry's recovers tokens
  without knowing ``R`` (:func:`recover_by_distances`).
* **Orthogonal Procrustes.** From pairs (plain, uploaded) the best orthogonal fit is one SVD
  (:func:`procrustes`); fitting it to the tokens the distance attack recovered and taking the
  nearest row again recovers the rest.

So the rotation costs the device a d × d product per token each way (the gradient that comes
back must be rotated too) and protects nothing against a cloud with public weights.
"""

from __future__ import annotations

import torch

from dlora_sim.privacy.tokens import nearest_row_hits, position_table, uploaded_embeddings


def random_rotation(d: int, seed: int) -> torch.Tensor:
    """A uniformly random d × d orthogonal matrix (QR of a Gaussian, signs fixed), the device's secret."""
    generator = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


def procrustes(plain: torch.Tensor, uploaded: torch.Tensor) -> torch.Tensor:
    """The orthogonal ``R`` minimising ‖plain Rᵀ − uploaded‖ over rows (n × d each)."""
    u, _, vh = torch.linalg.svd(plain.double().T @ uploaded.double())
    return (u @ vh).T.float()


def rotation_from_weights(public: torch.Tensor, rotated: torch.Tensor) -> torch.Tensor:
    """``R`` from a public square weight ``W`` (out × in) and the rotated copy ``W Rᵀ`` the cloud was given."""
    return torch.linalg.solve(public.double(), rotated.double()).T.float()


def recover_by_distances(uploaded: torch.Tensor, anchors_uploaded: torch.Tensor,
                         anchors_plain: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Token guesses for ``uploaded`` (n × d, rotated) at one position, whose candidate plain
    vectors are the rows of ``table`` (vocab × d): the entry whose distances to the anchors'
    plain vectors best match the upload's distances to the anchors' rotated vectors."""
    seen = torch.cdist(uploaded.double(), anchors_uploaded.double())  # n × anchors
    candidates = torch.cdist(table.double(), anchors_plain.double())  # vocab × anchors
    return torch.cdist(seen, candidates).argmin(dim=1)


@torch.no_grad()
def rotation_recovery(embeddings: torch.nn.Module, query_weight: torch.Tensor, input_ids: torch.Tensor,
                      attention_mask: torch.Tensor, special: dict[str, int], seed: int) -> dict[str, object]:
    """Rotate the uploads of ``input_ids`` with a secret rotation and count what each attack recovers.

    Args:
        embeddings: the public embedding layer.
        query_weight: the first block's public query weight (what the cloud would need rotated).
        input_ids, attention_mask: the batch (padded; every row ``[CLS] … [SEP] [PAD]…``).
        special: token ids of ``cls``, ``sep`` and ``pad``.
        seed: seeds the rotation.

    Returns:
        ``tokens`` (the real tokens tried), ``anchors`` (distinct structural uploads the cloud
        knows) and the tokens recovered by each attack.
    """
    clean = uploaded_embeddings(embeddings, input_ids)
    rotation = random_rotation(clean.shape[-1], seed)
    uploaded = clean @ rotation.T
    real = attention_mask.bool()
    lengths = real.sum(dim=1)
    # what the attention mask tells the cloud: [CLS] first, [SEP] last, [PAD] after
    known = torch.full_like(input_ids, -1)
    known[:, 0] = special["cls"]
    known[torch.arange(len(lengths)), lengths - 1] = special["sep"]
    known[~real] = special["pad"]
    place = known >= 0
    _, first = torch.unique(known[place] * input_ids.shape[1] + torch.nonzero(place)[:, 1], return_inverse=True)
    keep = torch.zeros(int(first.max()) + 1, dtype=torch.long)
    keep[first] = torch.arange(len(first))  # one upload per distinct (token, position); repeats are equal
    anchors_up, anchors_plain = uploaded[place][keep], clean[place][keep]

    vocab = embeddings.word_embeddings.weight.shape[0]
    by_distance = torch.where(place, known, 0)
    for p in range(input_ids.shape[1]):
        rows = ~place[:, p]
        if rows.any():
            by_distance[rows, p] = recover_by_distances(uploaded[rows, p], anchors_up, anchors_plain,
                                                        position_table(embeddings, p, vocab))
    distance_hits = int(((by_distance == input_ids) & real).sum())
    # Procrustes on every (guessed plain, uploaded) pair, then the nearest row of the un-rotated uploads
    guessed_plain = uploaded_embeddings(embeddings, by_distance)
    fitted = procrustes(guessed_plain.reshape(-1, clean.shape[-1]), uploaded.reshape(-1, clean.shape[-1]))
    from_weights = rotation_from_weights(query_weight, query_weight @ rotation.T)
    return {
        "tokens": int(real.sum()),
        "anchors": int(len(keep)),
        "nearest_row": nearest_row_hits(embeddings, uploaded, input_ids, attention_mask),
        "anchor_distances": distance_hits,
        "procrustes_refit": nearest_row_hits(embeddings, uploaded @ fitted, input_ids, attention_mask),
        "public_weights": nearest_row_hits(embeddings, uploaded @ from_weights, input_ids, attention_mask),
    }
