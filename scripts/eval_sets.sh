#!/usr/bin/env bash
# CER/WER of a model on every evaluation set the default model's card reports, greedy and with its
# default decoding; one JSON object per line.
#
#   scripts/eval_sets.sh MODEL [REAL_DIR] [SYNTH_HELDOUT] [TYPED_HELDOUT]
#
# REAL_DIR: scripts/prepare_htr_united.py's output (writer-disjoint validation of Testaments de Poilus
# and CREMMA-MSS-19; every 10th line of LECTAUREP, and all of CREMMA-MSS-20 and Celestine Doniau-Danest's
# diary: sources never trained on; the held-out documents of two typewritten sets, EHRI's English and the Tapus
# Corpus' French); SYNTH_HELDOUT: `handwrite
# synth` lines drawn with font families held out of training (English text), the stand-in for unseen
# English hands; TYPED_HELDOUT: typed lines in fixed-pitch faces never trained on (`fetch_fonts.sh DIR
# typewriter-heldout`). Sets that are absent are skipped.
set -uo pipefail
MODEL=$1; REAL=${2:-}; HELDOUT=${3:-}; TYPED=${4:-}
SHARED=${SHARED:-../shared/data}
HW=${HANDWRITE:-.venv/bin/handwrite}
SETS=("$SHARED/iam-hooker test" "$SHARED/iam-hooker validation" "$SHARED/copiste-fr validation")
[ -n "$REAL" ] && SETS+=("$REAL/poilus validation" "$REAL/mss19 validation" "$REAL/mss20 validation"
  "$REAL/celestine validation" "$REAL/ehri validation" "$REAL/tapus validation")
if [ -f "$REAL/lectaurep/validation.txt" ]; then
  sample=$(mktemp); trap 'rm -f "$sample"' EXIT
  awk 'NR % 10 == 1' "$REAL/lectaurep/validation.txt" > "$sample"
  SETS+=("$REAL/lectaurep $sample lectaurep 1-in-10")
fi
[ -n "$HELDOUT" ] && SETS+=("$HELDOUT -")
[ -n "$TYPED" ] && SETS+=("$TYPED - typed-heldout")
[ -d "$SHARED/iam-sample" ] && SETS+=("$SHARED/iam-sample -")   # 4 real IAM lines (research-only)
for set in "${SETS[@]}"; do
  read -r data split label <<< "$set"
  [ -e "$data" ] || continue
  args=(); [ "$split" != "-" ] && args=(--split "$split")
  for decoder in greedy default; do
    dec=(); [ "$decoder" = greedy ] && dec=(--decoder greedy)
    summary=$($HW eval -m "$MODEL" "$data" "${args[@]}" "${dec[@]}" --json -q 2>/dev/null)
    echo "{\"set\": \"${label:-$(basename "$data") $split}\", \"decoding\": \"$decoder\", \"result\": ${summary:-null}}"
  done
done
