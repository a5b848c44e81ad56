#!/usr/bin/env bash
# Adapting a model to one hand: CER on a writer's held-out pages after fine-tuning on 0, 16, 64, ...
# corrected lines of the same writer (lines of other pages).
#
#   scripts/adaptation_curve.sh MODEL PAIRS_DIR WRITER_PREFIX OUT_DIR [TEST_PAGES] [SIZES]
#
# PAIRS_DIR is a pairs dataset (image + .gt.txt) whose image names are WRITER_PREFIX_<page>_<line id>.png
# (as scripts/prepare_htr_united.py writes them); LINE_RE matches the line id (default: eScriptorium's
# eSc_line_<hex>), so that page names may hold underscores (LECTAUREP's DAFANCH96_048MIC07644_L-1).
# The last TEST_PAGES pages (default 3) are the test set; the first N lines of the other pages, in page
# order, are the corrected lines. The recipe is `handwrite adapt` (the README's "Adapting the model to your
# hand": from MODEL, --lr 3e-4, 20 warm-up steps, 400 steps at batch 8, the lines repeated to epochs
# of 200); EXTRA adds adapt options (e.g.
# EXTRA="--steps 150", or EXTRA="--seed 7" to repeat the measurement with another draw). (The README's --freeze cnn and --lr variants ran the same recipe through `train`.)
# UNCORRECTED=K (default 0): first self-train MODEL on the first K pool lines (`adapt --uncorrected`; their
# transcriptions are not read; EXTRA applies to it too), then adapt that model on the corrected lines.
set -euo pipefail
MODEL=$1; DATA=$2; WRITER=$3; OUT=$4; TEST_PAGES=${5:-3}; SIZES=${6:-"16 64 128"}
HW=${HW:-handwrite}
UNCORRECTED=${UNCORRECTED:-0}
mkdir -p "$OUT"
( cd "$DATA" && ls | grep "^${WRITER}_.*\.png$" | sort -V ) > "$OUT/all.txt"
LINE_RE=${LINE_RE:-eSc_line_[^_]*}
pages=$(sed -E "s/^${WRITER}_(.+)_${LINE_RE}\.png$/\1/" "$OUT/all.txt" | uniq)
test_pages=$(echo "$pages" | tail -n "$TEST_PAGES")
grep -E "^${WRITER}_($(echo $test_pages | tr ' ' '|'))_" "$OUT/all.txt" > "$OUT/test.txt"
grep -vE "^${WRITER}_($(echo $test_pages | tr ' ' '|'))_" "$OUT/all.txt" > "$OUT/pool.txt"
echo "{\"writer\": \"$WRITER\", \"test_lines\": $(wc -l < "$OUT/test.txt"), \"pool_lines\": $(wc -l < "$OUT/pool.txt")}"
cer() { $HW eval -m "$1" "$DATA" --split "$OUT/test.txt" --decoder greedy --json -q 2>/dev/null; }
echo "{\"lines\": 0, \"eval\": $(cer "$MODEL")}"
if [ "$UNCORRECTED" -gt 0 ]; then
  head -n "$UNCORRECTED" "$OUT/pool.txt" | sed "s#^#$DATA/#" > "$OUT/uncorrected.txt"
  rm -rf "$OUT/self"
  start=$(date +%s)
  $HW adapt --uncorrected - -m "$MODEL" -o "$OUT/self" ${EXTRA:-} -q < "$OUT/uncorrected.txt" > /dev/null
  MODEL=$OUT/self/best.pt
  echo "{\"lines\": 0, \"uncorrected\": $(wc -l < "$OUT/uncorrected.txt"), \"train_s\": $(( $(date +%s) - start )), \"eval\": $(cer "$MODEL")}"
fi
for n in $SIZES; do
  [ "$n" -gt 0 ] || continue  # 0 corrected lines: the row above
  head -n "$n" "$OUT/pool.txt" > "$OUT/train-$n.txt"
  rm -rf "$OUT/run-$n"
  start=$(date +%s)
  $HW adapt "$DATA" --split "$OUT/train-$n.txt" -m "$MODEL" -o "$OUT/run-$n" ${EXTRA:-} -q > /dev/null
  echo "{\"lines\": $(wc -l < "$OUT/train-$n.txt"), \"train_s\": $(( $(date +%s) - start )), \"eval\": $(cer "$OUT/run-$n/best.pt")}"
done
