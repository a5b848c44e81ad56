#!/usr/bin/env bash
# Train, decode-tune and evaluate a model on the iam-hooker development set alone (the first
# shipped default model; the current one comes from scripts/default_model.sh). CPU only, 1 thread; about 75 minutes on a 2-core machine.
#   scripts/hooker_recipe.sh [DATA_DIR] [OUT_DIR] [MINUTES]
set -euo pipefail
DATA=${1:-../shared/data/iam-hooker}
OUT=${2:-runs/hooker}
MINUTES=${3:-60}
HW=${HANDWRITE:-.venv/bin/handwrite}

$HW train "$DATA" --train-split train --val-split validation -o "$OUT" --max-minutes "$MINUTES" --threads 1
$HW lm build "$DATA" --split train --order 6 -o "$OUT/hooker-train-6gram.arpa.gz" --lexicon-out "$OUT/hooker-train.words"
$HW lm tune -m "$OUT/best.pt" "$DATA" --split validation --lm "$OUT/hooker-train-6gram.arpa.gz"
for decoder in greedy beam; do
    for split in validation test; do
        echo "== $decoder $split"
        $HW eval -m "$OUT/best.pt" "$DATA" --split "$split" --decoder "$decoder" --json -q
    done
done
