"""Token recovery from the hidden states at a split-learning cut, by a model trained on public text.

Under ``split-lora`` the device runs blocks ``0 .. k-1`` and uploads the hidden state after
those ``k`` blocks (the cut ``k`` of ``JobSpec.split_blocks``). The cloud has the public
model, so it can make as many (text, hidden state) pairs as it likes from public text, and learn
the way back. The inversion here is the simplest that works: one linear map (ridge regression,
closed form, shared by all positions) from the block-``k`` hidden state to the embedding layer's
output, then the nearest row of the public table at that position (:mod:`.tokens`). A stronger
model (an MLP, a transformer decoder as in Vec2Text or BiSR) can only recover more, so the rates
are a lower bound on what the cut reveals.

The public text is the Python language and library reference shipped with CPython
(``pydoc_data.topics``, the text of ``help()``): English prose on programming, offline on every
Python install, and nothing like the WordNet glosses the tasks are made of.
"""

from __future__ import annotations

import torch

from dlora_sim.privacy.tokens import nearest_row_hits, uploaded_embeddings

RIDGE = 1e-2  # relative ridge: small, only to keep the normal equations well conditioned


def public_text() -> list[str]:
    """Paragraphs of the CPython reference text (``pydoc_data.topics``), in a fixed order."""
    from pydoc_data.topics import topics

    paragraphs = (p.strip() for key in sorted(topics) for p in topics[key].split("\n\n"))
    return [" ".join(p.split()) for p in paragraphs if len(p.split()) >= 8]


@torch.no_grad()
def hidden_states(encoder: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple:
    """The embedding output and the output of every block (index k = after block k; 0 = embeddings)."""
    encoder.eval()
    return encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states


@torch.no_grad()
def fit_inversion(hidden: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Ridge map ``[h, 1] ↦ target`` over the real tokens (rows of ``mask``); returns (d+1) × d."""
    x = hidden[mask].double()
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    y = target[mask].double()
    gram = x.T @ x
    ridge = RIDGE * torch.trace(gram) / len(gram)
    return torch.linalg.solve(gram + ridge * torch.eye(len(gram), dtype=x.dtype), x.T @ y).float()


@torch.no_grad()
def invert(embeddings: torch.nn.Module, weights: torch.Tensor, hidden: torch.Tensor, input_ids: torch.Tensor,
           attention_mask: torch.Tensor) -> int:
    """Tokens recovered exactly from ``hidden`` (batch × length × d): mapped back, then nearest row."""
    estimate = torch.cat([hidden, torch.ones(*hidden.shape[:2], 1)], dim=-1) @ weights
    return nearest_row_hits(embeddings, estimate, input_ids, attention_mask)


@torch.no_grad()
def inversion_recovery(encoder: torch.nn.Module, public: dict, task: dict) -> list[dict[str, object]]:
    """Per cut ``k`` (1 .. blocks): fit on the encoded ``public`` batch, count what comes back on ``task``.

    Both are tokenizer outputs (``input_ids``, ``attention_mask``) padded to the same length, so
    that every position the task uses was seen in the public text.
    """
    public_states = hidden_states(encoder, public["input_ids"], public["attention_mask"])
    task_states = hidden_states(encoder, task["input_ids"], task["attention_mask"])
    target = uploaded_embeddings(encoder.embeddings, public["input_ids"])
    mask = public["attention_mask"].bool()
    tokens = int(task["attention_mask"].sum())
    out = []
    for k in range(1, len(public_states)):
        weights = fit_inversion(public_states[k], target, mask)
        hits = invert(encoder.embeddings, weights, task_states[k], task["input_ids"], task["attention_mask"])
        out.append({"block": k, "recovered": hits, "tokens": tokens, "rate": hits / tokens})
    return out
