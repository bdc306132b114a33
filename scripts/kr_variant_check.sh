#!/usr/bin/env bash
# Quick KR-variant check before the committed batch (docs/profiling.md, "Choosing the KR default").
# One task, one seed, same batches in every run; prints test accuracy per variant.
# Usage: scripts/kr_variant_check.sh [out_dir]   (DLORA_SIM overrides the launcher)
set -euo pipefail
OUT=${1:-kr-variant-check}
DLORA_SIM=${DLORA_SIM:-dlora-sim}
COMMON=(--task noun-supersense --peft lora --budget 3 --steps 250 --seed 0 --batch 16
        --dev-limit 300 --eval-every 250 --window 25 --warmup-rounds 1 --threads 1 --no-progress)
mkdir -p "$OUT"
run() { local name=$1; shift; [ -f "$OUT/$name.json" ] || $DLORA_SIM profile "${COMMON[@]}" "$@" -o "$OUT/$name.json"; }
run all --arm all
run random --arm random
run kr-default --arm kr
run kr-naive --arm kr --normalisation none --revival-pressure 0 --hysteresis 0
run kr-diffnorm --arm kr --score diff-norm
