#!/usr/bin/env python3
"""Build the committed WordNet tasks from a local WordNet 3.0 installation.

WordNet is to these tasks what a dictionary is to a vocabulary quiz: each synset gives a
gloss (the definition), its lemmas (the answer words) and its lexicographer file (a coarse
"supersense" such as noun.animal or verb.motion). Three tasks come out of it:

* ``noun-supersense``: noun gloss -> one of 26 noun lexicographer classes;
* ``verb-supersense``: verb gloss -> one of 15 verb lexicographer classes;
* ``definition-mc``: noun gloss -> which of 4 words it defines; the 3 distractors are nouns
  of the *same* supersense (harder than random nouns), drawn with a fixed seed.

The output (``dlora_sim/data/tasks/*.jsonl.gz`` + ``index.json``) is committed, so users and
CI need neither WordNet nor the network. Rerunning with the same seed and WordNet files gives
byte-identical files (gzip mtime is fixed to 0).

Usage: ``python scripts/build_wordnet_tasks.py [--wordnet /usr/share/wordnet] [--seed 0]``
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import re
from pathlib import Path

# Lexicographer file names, numbered as in WordNet's lexnames(5WN): 03..28 nouns, 29..43 verbs.
LEXNAMES = {
    3: "noun.Tops", 4: "noun.act", 5: "noun.animal", 6: "noun.artifact", 7: "noun.attribute",
    8: "noun.body", 9: "noun.cognition", 10: "noun.communication", 11: "noun.event",
    12: "noun.feeling", 13: "noun.food", 14: "noun.group", 15: "noun.location", 16: "noun.motive",
    17: "noun.object", 18: "noun.person", 19: "noun.phenomenon", 20: "noun.plant",
    21: "noun.possession", 22: "noun.process", 23: "noun.quantity", 24: "noun.relation",
    25: "noun.shape", 26: "noun.state", 27: "noun.substance", 28: "noun.time",
    29: "verb.body", 30: "verb.change", 31: "verb.cognition", 32: "verb.communication",
    33: "verb.competition", 34: "verb.consumption", 35: "verb.contact", 36: "verb.creation",
    37: "verb.emotion", 38: "verb.motion", 39: "verb.perception", 40: "verb.possession",
    41: "verb.social", 42: "verb.stative", 43: "verb.weather",
}
SPLIT_SIZES = {"train": 8000, "dev": 500, "test": 1500}
OUT_DIR = Path(__file__).resolve().parent.parent / "dlora_sim" / "data" / "tasks"


def read_synsets(path: Path) -> list[dict]:
    """Parse a WordNet ``data.*`` file into {lexfile, words, definition} records."""
    synsets = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("  "):  # licence header lines start with two spaces
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        lexfile = int(fields[1])
        n_words = int(fields[3], 16)
        words = [fields[4 + 2 * i] for i in range(n_words)]
        words = [re.sub(r"\(.*\)$", "", w).replace("_", " ") for w in words]
        # The definition is the gloss up to the first quoted example.
        definition = gloss.split('; "')[0].split(' "')[0].strip().rstrip(";").strip()
        if definition:
            synsets.append({"lexfile": lexfile, "words": words, "definition": definition})
    return synsets


def split(records: list, rng: random.Random) -> dict[str, list]:
    """Shuffle and cut into the fixed train/dev/test sizes (smaller if the pool is short)."""
    rng.shuffle(records)
    out, start = {}, 0
    for name in ("test", "dev", "train"):  # test and dev first so they are always full size
        out[name] = records[start : start + SPLIT_SIZES[name]]
        start += SPLIT_SIZES[name]
    return out


def supersense_task(synsets: list[dict], lexfiles: list[int], rng: random.Random) -> dict:
    """Gloss -> lexicographer class, labels numbered in lexfile order."""
    label_of = {lf: i for i, lf in enumerate(lexfiles)}
    records = [{"text": s["definition"], "label": label_of[s["lexfile"]]} for s in synsets]
    return split(records, rng)


def definition_mc_task(synsets: list[dict], rng: random.Random) -> dict:
    """Gloss -> which of four nouns; distractors share the answer's supersense."""
    by_lexfile: dict[int, list[str]] = {}
    for s in synsets:
        by_lexfile.setdefault(s["lexfile"], []).append(s["words"][0])
    records = []
    for s in synsets:
        answer = s["words"][0]
        if answer.lower() in s["definition"].lower():
            continue  # the gloss would give the answer away
        pool = by_lexfile[s["lexfile"]]
        if len(pool) < 50:
            continue
        distractors: list[str] = []
        while len(distractors) < 3:
            word = pool[rng.randrange(len(pool))]
            if word != answer and word not in s["words"] and word not in distractors:
                distractors.append(word)
        choices = distractors + [answer]
        rng.shuffle(choices)
        records.append({"text": s["definition"], "choices": choices, "label": choices.index(answer)})
    return split(records, rng)


def write_jsonl_gz(path: Path, splits: dict[str, list]) -> None:
    """One JSON object per line with its split name; gzip mtime 0 for reproducible bytes."""
    text = "".join(
        json.dumps({"split": name, **rec}, ensure_ascii=False, sort_keys=True) + "\n"
        for name in ("train", "dev", "test")
        for rec in splits[name]
    )
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
        handle.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    nouns = read_synsets(args.wordnet / "data.noun")
    verbs = read_synsets(args.wordnet / "data.verb")
    noun_lex, verb_lex = list(range(3, 29)), list(range(29, 44))
    tasks = {
        "noun-supersense": ("classification", [LEXNAMES[i] for i in noun_lex],
                            supersense_task(nouns, noun_lex, random.Random(args.seed))),
        "verb-supersense": ("classification", [LEXNAMES[i] for i in verb_lex],
                            supersense_task(verbs, verb_lex, random.Random(args.seed + 1))),
        "definition-mc": ("multiple-choice", ["A", "B", "C", "D"],
                          definition_mc_task(nouns, random.Random(args.seed + 2))),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    index = {}
    for name, (kind, labels, splits) in tasks.items():
        write_jsonl_gz(args.out / f"{name}.jsonl.gz", splits)
        index[name] = {
            "kind": kind, "labels": labels, "file": f"{name}.jsonl.gz",
            "sizes": {k: len(v) for k, v in splits.items()},
            "source": "WordNet 3.0 (Princeton University), see LICENSE-WordNet.txt",
            "seed": args.seed,
        }
        print(name, index[name]["sizes"])
    (args.out / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
