#!/usr/bin/env bash
# Reproduce the committed profiles (profiles/*.json) and the table in profiles/README.md.
#
#   scripts/reproduce_profiles.sh [out_dir]        # default out_dir: profiles
#
# Runs one training job at a time on 1 torch thread (about 25 minutes of one idle CPU core, 75 on a busy shared one).
# A profile that already exists is skipped, so an interrupted batch resumes where it stopped.
# DLORA_SIM overrides the launcher (default: the `dlora-sim` console script).
# Deterministic given the seed on the same machine and library versions (see each profile's
# setup.library_versions); other CPUs may differ in the last float bits and hence slightly.
set -euo pipefail
OUT=${1:-profiles}
DLORA_SIM=${DLORA_SIM:-dlora-sim}
mkdir -p "$OUT"

# Shared settings (docs/profiling.md explains the choices).
CLS=(--steps 150 --batch 8 --dev-limit 200 --test-limit 600 --eval-every 75)   # classification
MC=(--steps 150 --batch 2 --dev-limit 100 --test-limit 400 --eval-every 75)    # 4 rows per question
KR=(--window 15 --warmup-rounds 1)

run() {  # run <file stem> <options...>
    local name=$1; shift
    if [ -f "$OUT/$name.json" ]; then echo "skip $name (exists)"; return; fi
    echo "$(date -u +%H:%M:%S) start $name"
    $DLORA_SIM profile --threads 1 --no-progress "${KR[@]}" "$@" -o "$OUT/$name.json"
}

# 3 tasks x {all, kr, random, kill-only} x 2 seeds, LoRA r=8 on q,k,v,o (24 modules), B=3 (1/8).
lora_seed() {  # lora_seed <seed>
    local seed=$1 task arm
    for task in noun-supersense verb-supersense definition-mc; do
        if [ "$task" = definition-mc ]; then opts=("${MC[@]}"); else opts=("${CLS[@]}"); fi
        for arm in all kr random kill-only; do
            run "$task-lora-$arm-b3-s$seed" --task "$task" --peft lora --rank 8 --budget 3 \
                --arm "$arm" --seed "$seed" "${opts[@]}"
        done
    done
}

lora_seed 0
# KR with the other two schemes on one task, B ~ 1/8 of their module count, rounded up:
# Adapter 12 modules -> B=2, IA3 18 modules -> B=3. (Before seed 1, so that a batch cut short
# still covers every scheme.)
run noun-supersense-adapter-kr-b2-s0 --task noun-supersense --peft adapter --adapter-size 16 \
    --budget 2 --arm kr --seed 0 "${CLS[@]}"
run noun-supersense-ia3-kr-b3-s0 --task noun-supersense --peft ia3 --budget 3 --arm kr \
    --seed 0 --lr 3e-3 "${CLS[@]}"
lora_seed 1
# Their all-module baselines, for comparison.
run noun-supersense-adapter-all-b2-s0 --task noun-supersense --peft adapter --adapter-size 16 \
    --budget 2 --arm all --seed 0 "${CLS[@]}"
run noun-supersense-ia3-all-b3-s0 --task noun-supersense --peft ia3 --budget 3 --arm all \
    --seed 0 --lr 3e-3 "${CLS[@]}"

# Learning-rate check on definition-mc: seed 0 of arm `all` diverged at lr 1e-3 (batch 2), so
# the four arms are rerun at lr 3e-4 in a subfolder with its own table.
LR="$OUT/definition-mc-lr3e-4"
mkdir -p "$LR"
for seed in 0 1; do
    for arm in all kr random kill-only; do
        OUT=$LR run "definition-mc-lora-$arm-b3-s$seed" --task definition-mc --peft lora --rank 8 \
            --budget 3 --arm "$arm" --seed "$seed" --lr 3e-4 "${MC[@]}"
    done
done

# How the budget matters (the paper's open question): KR and random-B at B = 1, 6, 12 of 24 on
# noun-supersense, seeds 0 and 1. Budget sweep dashboards pick these up by budget fraction B/N.
for seed in 0 1; do
    for budget in 1 6 12; do
        for arm in kr random; do
            run "noun-supersense-lora-$arm-b$budget-s$seed" --task noun-supersense --peft lora \
                --rank 8 --budget "$budget" --arm "$arm" --seed "$seed" "${CLS[@]}"
        done
    done
done

echo "$(date -u +%H:%M:%S) all profiles done"
if [ "$OUT" = profiles ]; then
    $DLORA_SIM profiles table profiles --write profiles/README.md
    $DLORA_SIM profiles table "$LR" --write "$LR/README.md"
fi
