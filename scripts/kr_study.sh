#!/usr/bin/env bash
# The Kill-and-Revive study (issue 11): enough seeds and controls to tell whether KR beats random.
#
#   scripts/kr_study.sh [phase ...]     # phases: main (default), mc, budget, peft, plateau, long,
#                                       # mc-long;
#                                       # out: profiles/kr-study
#
# main:   noun-supersense, LoRA r=8 on q,k,v,o (24 modules), B=3, 150 steps, window 15, warm-up 1,
#         arms all, head-only (B=0), kr, kr with the update-norm-diff score (kr-upd), random,
#         static-random, static-topB, kill-only; seeds 0..9, seed-major, so a batch cut short
#         still holds every arm for the seeds it finished (the comparisons are paired by seed).
# mc:     the same eight arms on definition-mc (lr 3e-4, batch 2 questions), seeds 0..4.
# budget: kr, random and static-random at B = 1, 6, 12 on noun-supersense, seeds 0..2.
# peft:   Adapter (m = 16, 12 modules, B = 2, lr 1e-3) and IA3 (18 modules, B = 3, lr 3e-3) on
#         noun-supersense, arms all, kr, random, static-random, seeds 0..2 (the set-up of the
#         single-seed profiles/noun-supersense-{adapter,ia3}-*.json, now with a random control).
# plateau: all-modules LoRA on noun-supersense for 600 steps, dev (500) and test (1500) accuracy
#         every 50 steps (traces.eval, traces.test_eval), seeds from KR_PLATEAU_SEEDS (default
#         "0 1"): where does the all-modules curve stop improving? KR_PLATEAU_STEPS and
#         KR_PLATEAU_EVERY change the length and the spacing (e.g. 1500 and 100 for a longer look;
#         the file name carries the length).
# long:   the main comparison at plateau length: noun-supersense, B=3, KR_LONG_STEPS (default 1000,
#         where the 1500-step all-modules curve levels off), seeds 0..4. The four arms the question
#         turns on (all, kr, random, static-random) run first for every seed, then kr-upd,
#         static-topB, kill-only and head-only; file names carry the length.
# mc-long: the same on definition-mc (lr 3e-4, batch 2 questions, KR_LONG_STEPS steps); the
#         all-modules arm also records its test accuracy every KR_MC_CURVE_EVERY (default 250)
#         steps, so the runs themselves show whether that length has plateaued.
#
# Every run tests on the full test split (1500 examples) and stores its per-example predictions,
# so `dlora-sim profiles compare profiles/kr-study --baseline random` can pair arms example by
# example. One run at a time on 1 torch thread (about 45 s on an idle core, 1.5-3 min on a busy
# shared one). A profile that exists is skipped, so an interrupted batch resumes where it stopped.
#
# DLORA_SIM overrides the launcher (default: the `dlora-sim` console script). KR_STUDY_COMMIT=1
# commits each new profile on its own (`git commit --only <file>`, retried while the index is
# locked), so a long batch leaves its results in history as they land.
set -euo pipefail
OUT=${KR_STUDY_OUT:-profiles/kr-study}
DLORA_SIM=${DLORA_SIM:-dlora-sim}
COMMIT=${KR_STUDY_COMMIT:-0}
export TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"

CLS=(--steps 150 --batch 8 --dev-limit 200 --eval-every 150)                 # full test split
MC=(--steps 150 --batch 2 --dev-limit 100 --eval-every 150 --lr 3e-4)         # 4 rows per question
KR=(--window 15 --warmup-rounds 1)
LORA=(--peft lora --rank 8)
ADAPTER=(--peft adapter --adapter-size 16)                                      # B = 2 of 12
IA3=(--peft ia3 --lr 3e-3)                                                      # B = 3 of 18
PLATEAU_STEPS=${KR_PLATEAU_STEPS:-600}
PLATEAU=(--steps "$PLATEAU_STEPS" --batch 8 --dev-limit 500 --eval-every "${KR_PLATEAU_EVERY:-50}" --eval-test)
ARMS=(all head-only kr kr-upd random static-random static-topB kill-only)
LONG_STEPS=${KR_LONG_STEPS:-1000}
LONG=(--steps "$LONG_STEPS" --batch 8 --dev-limit 200)
MC_LONG=(--steps "$LONG_STEPS" --batch 2 --dev-limit 100 --lr 3e-4)
MC_CURVE=(--eval-every "${KR_MC_CURVE_EVERY:-250}" --eval-test)

commit() {  # commit <file>: only that file, whatever else is staged; wait out a busy index
    local file=$1 try
    for try in $(seq 1 30); do
        if git add -- "$file" 2>/dev/null && git commit -q --only -m "kr-study: $(basename "$file" .json)" -- "$file" 2>/dev/null; then
            return 0
        fi
        sleep 2
    done
    echo "warning: could not commit $file (index busy?); commit it by hand" >&2
}

run() {  # run <file stem> <options...>
    local name=$1; shift
    if [ -f "$OUT/$name.json" ]; then echo "skip $name (exists)"; return; fi
    echo "$(date -u +%H:%M:%S) start $name"
    $DLORA_SIM profile --threads 1 --no-progress "${KR[@]}" "$@" -o "$OUT/$name.json"
    if [ "$COMMIT" = 1 ]; then commit "$OUT/$name.json"; fi
}

arm_options() {  # arm_options <arm> <budget>: the CLI options of one arm of the study
    case $1 in
        head-only) echo "--arm head-only --budget 0" ;;
        kr-upd) echo "--arm kr --score update-norm-diff --budget $2" ;;
        *) echo "--arm $1 --budget $2" ;;
    esac
}

arm_budget() {  # the budget in the file name (head-only trains no module: b0)
    if [ "$1" = head-only ]; then echo 0; else echo "$2"; fi
}

grid() {  # grid <task> <seeds> <options...>: every arm at B=3 for each seed
    local task=$1 seeds=$2 seed arm; shift 2
    for seed in $seeds; do
        for arm in "${ARMS[@]}"; do
            # shellcheck disable=SC2046
            run "$task-lora-$arm-b$(arm_budget "$arm" 3)-s$seed" --task "$task" --seed "$seed" \
                "${LORA[@]}" $(arm_options "$arm" 3) "$@"
        done
    done
}

budget_curve() {
    local seed budget arm
    for seed in 0 1 2; do
        for budget in 1 6 12; do
            for arm in kr random static-random; do
                # shellcheck disable=SC2046
                run "noun-supersense-lora-$arm-b$budget-s$seed" --task noun-supersense --seed "$seed" \
                    "${LORA[@]}" $(arm_options "$arm" "$budget") "${CLS[@]}"
            done
        done
    done
}

peft_grid() {  # Adapter and IA3 with a random control; seed-major, so every seed finished pairs
    local seed arm
    for seed in 0 1 2; do
        for arm in all kr random static-random; do
            # shellcheck disable=SC2046
            run "noun-supersense-adapter-$arm-b2-s$seed" --task noun-supersense --seed "$seed" \
                "${ADAPTER[@]}" $(arm_options "$arm" 2) "${CLS[@]}"
        done
        for arm in all kr random static-random; do
            # shellcheck disable=SC2046
            run "noun-supersense-ia3-$arm-b3-s$seed" --task noun-supersense --seed "$seed" \
                "${IA3[@]}" $(arm_options "$arm" 3) "${CLS[@]}"
        done
    done
}

plateau() {  # the all-modules accuracy-vs-steps curve (600 steps, test accuracy every 50)
    local seed
    for seed in ${KR_PLATEAU_SEEDS:-0 1}; do
        run "noun-supersense-lora-all-${PLATEAU_STEPS}steps-s$seed" --task noun-supersense --seed "$seed" \
            "${LORA[@]}" --arm all --budget 3 "${PLATEAU[@]}"
    done
}

long_grid() {  # long_grid <task> <options...>: the comparison at plateau length, deciding arms first
    local task=$1 arms seed arm; shift
    for arms in "all kr random static-random" "kr-upd static-topB kill-only head-only"; do
        for seed in 0 1 2 3 4; do
            for arm in $arms; do
                local curve=(--eval-every "$LONG_STEPS")
                if [ "$task" = definition-mc ] && [ "$arm" = all ]; then curve=("${MC_CURVE[@]}"); fi
                # shellcheck disable=SC2046
                run "$task-lora-$arm-b$(arm_budget "$arm" 3)-${LONG_STEPS}steps-s$seed" \
                    --task "$task" --seed "$seed" "${LORA[@]}" $(arm_options "$arm" 3) "$@" "${curve[@]}"
            done
        done
    done
}

PHASES=("$@")
[ ${#PHASES[@]} -gt 0 ] || PHASES=(main)
for phase in "${PHASES[@]}"; do
    case $phase in
        main) grid noun-supersense "0 1 2 3 4 5 6 7 8 9" "${CLS[@]}" ;;
        mc) grid definition-mc "0 1 2 3 4" "${MC[@]}" ;;
        budget) budget_curve ;;
        peft) peft_grid ;;
        plateau) plateau ;;
        long) long_grid noun-supersense "${LONG[@]}" ;;
        mc-long) long_grid definition-mc "${MC_LONG[@]}" ;;
        *) echo "unknown phase '$phase'; allowed: main, mc, budget, peft, plateau, long, mc-long" >&2; exit 2 ;;
    esac
done
echo "$(date -u +%H:%M:%S) phases ${PHASES[*]} done"
