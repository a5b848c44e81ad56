#!/usr/bin/env bash
# Paper-strength IAM recipe (Puigcerver 2017-like CNN + 5 x BiLSTM-256 + CTC) for users who hold
# the real IAM database. handwrite cannot ship or fetch IAM (research-only licence).
#
#   scripts/iam_recipe.sh IAM_ROOT SPLITS_DIR [OUT_DIR]
#
# IAM_ROOT   the IAM release: ascii/lines.txt and lines/<a01>/<a01-000u>/<id>.png
# SPLITS_DIR the Aachen/RWTH split lists you have: train.txt, validation.txt, test.txt
#            (one line id such as a01-000u-00, or one form id such as a01-000u, per row)
#
# Environment: NPROC (processes, default 1; >1 starts torchrun), DEVICE (auto|cuda|cpu),
# PRECISION (bf16|fp32; bf16 applies on CUDA only), EPOCHS (default 200), BATCH (per process, 16).
#
# Expected (literature, IAM line level, Aachen split): Puigcerver 2017 test CER/WER 5.8 / 18.4 %
# without an LM, 4.4 / 12.2 % with a word LM trained on external corpora (LOB, Brown, Wellington;
# this recipe's character LM uses only the IAM training text, so expect less of a gain);
# PyLaia reproducing it: 7.6 / 23.8 %. Time: see "Training on several GPUs or machines" in README.md.
set -euo pipefail
IAM=${1:?usage: scripts/iam_recipe.sh IAM_ROOT SPLITS_DIR [OUT_DIR]}
SPLITS=${2:?usage: scripts/iam_recipe.sh IAM_ROOT SPLITS_DIR [OUT_DIR]}
OUT=${3:-runs/iam}
NPROC=${NPROC:-1}
HW=${HANDWRITE:-.venv/bin/handwrite}
PY=${PYTHON:-.venv/bin/python}
if [ "$NPROC" -gt 1 ]; then
    TRAIN=("$PY" -m torch.distributed.run --standalone --nproc_per_node="$NPROC" -m handwrite train)
else
    TRAIN=("$HW" train)
fi
RESUME=()
[ -f "$OUT/last.pt" ] && RESUME=(--resume)   # rerunning the script continues an interrupted run

# Height 128, 5 conv blocks of 16..80 channels (the first 3 also halve the width), 5 BiLSTM layers
# of 256 units, dropout 0.5 (Puigcerver 2017). Early stopping after 20 epochs without progress.
"${TRAIN[@]}" "$IAM" --train-split "$SPLITS/train.txt" --val-split "$SPLITS/validation.txt" -o "$OUT" \
    --height 128 --channels 16,32,48,64,80 --width-pools 3 --lstm-layers 5 --lstm-hidden 256 --dropout 0.5 \
    -b "${BATCH:-16}" --lr 3e-4 --epochs "${EPOCHS:-200}" --patience 20 \
    --device "${DEVICE:-auto}" --precision "${PRECISION:-bf16}" --workers 2 "${RESUME[@]}"
$HW lm build "$IAM" --split "$SPLITS/train.txt" --order 8 -o "$OUT/iam-train-8gram.arpa.gz"
$HW lm tune -m "$OUT/best.pt" "$IAM" --split "$SPLITS/validation.txt" --lm "$OUT/iam-train-8gram.arpa.gz" -q
for decoder in greedy beam; do
    echo "== test $decoder"
    $HW eval -m "$OUT/best.pt" "$IAM" --split "$SPLITS/test.txt" --decoder "$decoder" --json -q
done
