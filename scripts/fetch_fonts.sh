#!/usr/bin/env bash
# Download the fonts of the default model's synthetic data into a folder.
#
#   scripts/fetch_fonts.sh [OUT_DIR [SET]]    (default: runs/fonts handwriting)
#
# SET: handwriting (the families below, regular and bold), typewriter (two typewriter faces, regular
# only, as a typewriter strikes one weight: typed lines in the mix since the fifteenth session's GPU run) or
# typewriter-heldout (three other fixed-pitch faces, never trained on: the typed lines' evaluation set).
#
# A build step of the model recipe, not a run-time download: `handwrite synth --fonts OUT_DIR`
# reads the result. The fonts come from the npm registry's @fontsource packages (Google Fonts'
# files, versions pinned below); each family's folder keeps its LICENSE and metadata.json
# (licence type and copyright). Only the `latin` subset's WOFF files are kept: they cover
# English and French (Latin-1 plus œ, ’, “ ”, – —), and FreeType reads WOFF without extra libraries.
# Font names are made of letters, digits and hyphens only, which the unquoted $files below relies on.
# Left out after looking at what they draw: rock-salt and walter-turncoat (capitals for lowercase),
# kristi and just-me-again-down-here (capital-shaped r, b: images would not match the label's case),
# nanum-pen-script (no accented letters in its latin subset).
set -euo pipefail
source "$(dirname "$0")/npm_unpack.sh"
OUT=${1:-runs/fonts}
SET=${2:-handwriting}
WEIGHTS=(400 700)
FAMILIES=(
  homemade-apple@5.3.0 cedarville-cursive@5.3.0 reenie-beanie@5.3.0 la-belle-aurore@5.3.0
  nothing-you-could-do@5.3.0 dawning-of-a-new-day@5.3.0 mrs-saint-delafield@5.3.0
  over-the-rainbow@5.3.0 sue-ellen-francisco@5.3.0 gloria-hallelujah@5.3.0
  architects-daughter@5.3.0 patrick-hand@5.3.0 gochi-hand@5.3.0 meddon@5.3.0
  the-girl-next-door@5.3.0 schoolbell@5.3.0 sacramento@5.3.0 allura@5.3.0 pinyon-script@5.3.0
  parisienne@5.3.0 tangerine@5.3.0 marck-script@5.3.0 herr-von-muellerhoff@5.3.0 mr-de-haviland@5.3.0
  monsieur-la-doulaise@5.3.0 bad-script@5.3.0 bilbo@5.3.0 italianno@5.3.0 ms-madi@5.3.0 whisper@5.3.0
  cookie@5.3.0 damion@5.3.0 yellowtail@5.3.0 satisfy@5.3.0 courgette@5.3.0 kaushan-script@5.3.0
  alex-brush@5.3.0 licorice@5.3.0 oooh-baby@5.3.0 neucha@5.3.0 handlee@5.3.0
  short-stack@5.3.0 delius@5.3.0 mali@5.3.0 itim@5.3.0 sriracha@5.3.0 charm@5.2.7 caveat-brush@5.3.0
  covered-by-your-grace@5.3.0 annie-use-your-telescope@5.3.0 swanky-and-moo-moo@5.3.0
  waiting-for-the-sunrise@5.3.0 loved-by-the-king@5.3.0 coming-soon@5.3.0 calligraffitti@5.3.0
  crafty-girls@5.3.0
)
case $SET in
  handwriting) ;;
  typewriter) FAMILIES=(special-elite@5.3.0 courier-prime@5.3.0); WEIGHTS=(400) ;;
  typewriter-heldout) FAMILIES=(cutive-mono@5.3.0 anonymous-pro@5.3.0 pt-mono@5.3.0); WEIGHTS=(400) ;;
  *) echo "fetch_fonts.sh: unknown set '$SET' (handwriting, typewriter or typewriter-heldout)" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$OUT"
for spec in "${FAMILIES[@]}"; do
  name=${spec%@*}
  [ -f "$OUT/$name/LICENSE" ] && continue
  mkdir -p "$tmp/$name" "$OUT/$name.part"
  npm_unpack "@fontsource/$spec" "$tmp/$name"
  # Regular and bold only: a family with nine weights should not be drawn nine times as often.
  files=$(for w in "${WEIGHTS[@]}"; do ls "$tmp/$name/package/files/$name-latin-$w-normal.woff" 2>/dev/null; done || true)
  [ -n "$files" ] || files=$(ls "$tmp/$name"/package/files/"$name"-latin-[0-9]*-normal.woff)
  cp $files "$OUT/$name.part/"
  cp "$tmp/$name/package/LICENSE" "$tmp/$name/package/metadata.json" "$OUT/$name.part/"
  rm -rf "$OUT/$name" && mv "$OUT/$name.part" "$OUT/$name"
done
echo "$(ls "$OUT" | wc -l) font families in $OUT"
