#!/usr/bin/env bash
# Ablation of the training recipe: each row trains from scratch on the same mix for STEPS optimizer
# steps (batch 8, one thread), then every row's model is read on the same sets with
# `handwrite eval -m A -m B ...` (one table per set: CER, WER, 95 % CI, lines/s). Equal steps, not
# equal minutes: on a shared machine a row's minutes depend on what else runs. What a step costs
# is measured apart, in quiet conditions (scripts/bench.py train, same flags), and each row's
# budget in CPU-minutes is steps x that cost.
#
#   scripts/ablation.sh MIX_TRAIN.tsv MIX_VAL.tsv [OUT_DIR]   (environment: STEPS, SHARED, ROWS)
#
# MIX_TRAIN / MIX_VAL are the manifests scripts/default_model.sh builds (stage 2). The sets read at the
# end: iam-hooker test, copiste-fr validation, and MIX_VAL's lines of the held-out French writers
# (Poilus, CREMMA-MSS-19, TIME US validation writers) and of the six held-out fonts (unseen English "hands").
# Rows run one after another; a row whose folder already holds best.pt is not trained again.
set -euo pipefail
TRAIN=$1
VAL=$2
OUT=${3:-runs/ablation}
STEPS=${STEPS:-1148}
SHARED=${SHARED:-../shared/data}
HW=${HANDWRITE:-.venv/bin/handwrite}
declare -A FLAGS=(
    [lstm-fp32]="--precision fp32"
    [lstm-bf16]="--precision bf16"
    [gru-bf16]="--precision bf16 --cell gru"
    [lstm-bf16-shortcut]="--precision bf16 --shortcut-weight 0.1"
    [gru-bf16-shortcut]="--precision bf16 --cell gru --shortcut-weight 0.1"
)
ROWS=${ROWS:-lstm-fp32 lstm-bf16 gru-bf16 lstm-bf16-shortcut gru-bf16-shortcut}
mkdir -p "$OUT"
for row in $ROWS; do
    [ -f "$OUT/$row/best.pt" ] && continue
    # shellcheck disable=SC2086  # FLAGS holds several words on purpose
    $HW train "$TRAIN" --train-split train --val "$VAL" --val-split validation -o "$OUT/$row" \
        --max-steps "$STEPS" --workers 0 --threads 1 -q ${FLAGS[$row]} > "$OUT/$row.json"
done

# The evaluation sets, cut from MIX_VAL by source.
{ head -1 "$VAL"; grep -E '/(poilus|mss19|timeus)/' "$VAL"; } > "$OUT/french-heldout-writers.tsv"
{ head -1 "$VAL"; grep -E '/synth-heldout/' "$VAL"; } > "$OUT/heldout-fonts.tsv"
models=()
for row in $ROWS; do models+=(-m "$OUT/$row/best.pt"); done
# Exit status 1 means some lines could not be read (counted as errors in the figures): not a failure here.
ev() { $HW eval "$@" "${models[@]}" --decoder greedy --threads 1 --json -q || [ $? -eq 1 ]; }
ev "$SHARED/iam-hooker" --split test > "$OUT/eval-hooker-test.jsonl"
ev "$SHARED/copiste-fr" --split validation > "$OUT/eval-copiste-val.jsonl"
ev "$OUT/french-heldout-writers.tsv" --split validation > "$OUT/eval-french-heldout.jsonl"
ev "$OUT/heldout-fonts.tsv" --split validation > "$OUT/eval-heldout-fonts.jsonl"
