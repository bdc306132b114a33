#!/usr/bin/env bash
# Reproduce the committed federated LoRA results (profiles/federated/*.json) and their table.
#
#   scripts/reproduce_federated.sh [out_dir]        # default out_dir: profiles/federated
#
# Real FedAvg of LoRA (r=8 on q,k,v,o) over 5 simulated users with a Dirichlet non-IID split of
# noun-supersense: alpha 0.1 (very non-IID) and 100 (near IID), seeds 0 and 1, then alpha 1 (in
# between) for both seeds, so that a batch cut short still has both ends. Every user runs
# 10 rounds x 15 local steps of batch 8, i.e. the 150 steps of the single-user profiles, and the
# global model is scored on the same first 600 test examples. One job at a time on 1 torch
# thread; a result that already exists is skipped, so an interrupted batch resumes.
# DLORA_SIM overrides the launcher (default: the `dlora-sim` console script).
set -euo pipefail
OUT=${1:-profiles/federated}
DLORA_SIM=${DLORA_SIM:-dlora-sim}
mkdir -p "$OUT"

FED=(--task noun-supersense --users 5 --rounds 10 --local-steps 15 --batch 8 --lr 1e-3 --rank 8
     --lora-targets attention --test-limit 600 --threads 1)

run() {  # run <alpha> <seed>
    local name="noun-supersense-fedlora-u5-a$1-r10x15-s$2"
    if [ -f "$OUT/$name.json" ]; then echo "skip $name (exists)"; return; fi
    echo "$(date -u +%H:%M:%S) start $name"
    $DLORA_SIM fed run "${FED[@]}" --alpha "$1" --seed "$2" -o "$OUT/$name.json"
}

for seed in 0 1; do
    for alpha in 0.1 100; do run "$alpha" "$seed"; done
done
for seed in 0 1; do run 1 "$seed"; done

echo "$(date -u +%H:%M:%S) all federated runs done"
$DLORA_SIM fed table "$OUT" --baseline profiles/noun-supersense-lora-all-b3-s0.json \
    --baseline profiles/noun-supersense-lora-all-b3-s1.json --write "$OUT/README.md"
