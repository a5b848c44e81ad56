#!/usr/bin/env bash
# Rebuild models/default/ from nothing but the shared development data, with handwrite's own
# commands: synthetic pretraining, fine-tuning on the real training splits of iam-hooker and
# copiste-fr, a character LM of their training transcriptions, decoder tuning on their
# validation splits, packaging and evaluation. CPU, 1 thread; about 2.5 hours with the defaults.
#   scripts/default_model.sh [OUT_DIR]          (environment: SHARED, SYNTH_LINES, PRE_MIN, FT_MIN, MODEL_DIR)
set -euo pipefail
OUT=${1:-runs/default}
SHARED=${SHARED:-../shared/data}
SYNTH_LINES=${SYNTH_LINES:-20000}
PRE_MIN=${PRE_MIN:-25}     # pretraining budget on synthetic lines (minutes)
FT_MIN=${FT_MIN:-110}      # fine-tuning budget on real lines (minutes)
MODEL_DIR=${MODEL_DIR:-models/default}
HW=${HANDWRITE:-.venv/bin/handwrite}
PY=${PYTHON:-.venv/bin/python}
REAL=("$SHARED/iam-hooker" "$SHARED/copiste-fr")

# 1. Synthetic lines: the shipped English corpus (iam-hooker train transcriptions) and the
#    copiste-fr train transcriptions, so the pretraining sees the French characters too.
[ -f "$OUT/synth/ascii/lines.txt" ] || $HW synth "$OUT/synth" --lines "$SYNTH_LINES" --seed 1 \
    --text handwrite/resources/hooker-train-lines.txt.gz --text "$SHARED/copiste-fr" --text-split train \
    --sheet "$OUT/synth-sheet.png" -q
# 2. Pretraining, 3. fine-tuning (new characters get new output rows).
$HW train "$OUT/synth" --train-split train --val-split validation -o "$OUT/pretrain" --max-minutes "$PRE_MIN" -q
$HW train "${REAL[@]}" --train-split train --val-split validation --init "$OUT/pretrain/best.pt" \
    -o "$OUT/finetune" --max-minutes "$FT_MIN" -q
# 4. Package (float16), LM from the training transcriptions, decoder settings tuned on validation.
$PY scripts/package_model.py "$OUT/finetune/best.pt" "$MODEL_DIR/model.pt"
$HW lm build "${REAL[@]}" --split train --order 6 -o "$MODEL_DIR/train-6gram.arpa.gz"
$HW lm compile "$MODEL_DIR/train-6gram.arpa.gz" -o "$MODEL_DIR/train-6gram.npz"   # loads ~8x faster
$HW lm tune -m "$MODEL_DIR/model.pt" "${REAL[@]}" --split validation --lm "$MODEL_DIR/train-6gram.npz" -q
# 5. Figures for the model card: every split the model did not train on.
for decoder in greedy beam; do
    for set in "iam-hooker validation" "iam-hooker test" "copiste-fr validation"; do
        read -r name split <<< "$set"
        echo "== $name $split $decoder"
        $HW eval -m "$MODEL_DIR/model.pt" "$SHARED/$name" --split "$split" --decoder "$decoder" --json -q
    done
done
