#!/usr/bin/env bash
# The accuracy cost of noise on the uploaded embeddings, from real training (issue 12).
#
# One profile per noise scale σ and seed, on noun-supersense with the KR study's classification
# set-up (LoRA r = 8 on every module, 150 steps of 8 examples, the full test split), written to
# profiles/privacy/noun-supersense-lora-all-noise<σ>-s<seed>.json. The noise is on in training
# and at test (dlora_sim/profiling/upload.py says why). Existing files are kept, so a batch can
# be stopped and resumed. `dlora-sim privacy --profiles profiles/privacy` reads them.
#
# PRIVACY_SIGMAS / PRIVACY_SEEDS override the grid; DLORA_SIM the launcher.
set -euo pipefail
OUT=${PRIVACY_OUT:-profiles/privacy}
DLORA_SIM=${DLORA_SIM:-dlora-sim}
SIGMAS=${PRIVACY_SIGMAS:-"0 0.5 1 2 4"}
SEEDS=${PRIVACY_SEEDS:-"0 1 2"}
export TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
for seed in $SEEDS; do
    for sigma in $SIGMAS; do
        file="$OUT/noun-supersense-lora-all-noise$sigma-s$seed.json"
        [[ -f $file ]] && continue
        $DLORA_SIM profile --threads 1 --no-progress --window 15 --warmup-rounds 1 --peft lora --rank 8 \
            --task noun-supersense --seed "$seed" --arm all --budget 3 --steps 150 --batch 8 \
            --dev-limit 200 --eval-every 150 --upload-noise "$sigma" -o "$file"
    done
done
