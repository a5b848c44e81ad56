#!/usr/bin/env bash
# The public handwriting ground truth the default model trains on, and LECTAUREP's registers, CREMMA-MSS-20 and
# Celestine Doniau-Danest's diary, which it is only evaluated on, and two sets of typewritten pages (EHRI's
# English documents, the Tapus Corpus), at pinned commits (all CC-BY 4.0; attribution in models/default/README.md):
#
#   scripts/fetch_htr_united.sh DEST
#
# Clones each repository into DEST/<name> and checks out its pinned commit; a repository already
# there at that commit is kept. (On machines without GitHub access, put the repositories there by
# other means at these commits; scripts/prepare_htr_united.py only reads DEST.)
# The copies the shipped model and its figures were made from lacked a few page images (the mirrors of the
# machines it was built on leave out some large files): 16 of the Testaments de Poilus (13 wills, 9 of them
# whole: those train on a full clone; the validation wills are named in prepare_htr_united.py) and all 45 of
# LECTAUREP's lectaurep-rigault-6 (one more notary's hand: on a full clone its lines come last in LECTAUREP's
# validation list, so eval_sets.sh's 1-in-10 sample holds the card's 1,863 lines plus a tenth of rigault-6's).
# Never add banq-dcn/Copiste-d-un-jour, jschaefer738b/JosephHookerHTR or
# PSL-Chartes-HTR-Students/HN2021-Memorials_Jane_Lathrop_Stanford: held-out test sets come from them.
set -euo pipefail
DEST=${1:?usage: scripts/fetch_htr_united.sh DEST}
REPOS=(
  "CREMMA-AN-TestamentsDePoilus https://github.com/HTR-United/CREMMA-AN-TestamentsDePoilus 8ffa4a8cd40f691d68f188e2ed1c6458bf2d6ec9"
  "CREMMA-MSS-19 https://github.com/HTR-United/CREMMA-MSS-19 d8f466de72561cd989f957d75a6743c5d8f0a262"
  "timeuscorpus https://github.com/HTR-United/timeuscorpus df8ee63837dabe79c511e8aa748f465da5e2d5e5"
  "peraire-ground-truth https://github.com/alix-tz/peraire-ground-truth 61b321ed05fc1d40e6c6e4351fd2162fd5bff478"
  "lectaurep-repertoires https://github.com/HTR-United/lectaurep-repertoires 3d1c86cf5389265a1ce8b620301d36b4709eb435"
  "CREMMA-MSS-20 https://github.com/HTR-United/CREMMA-MSS-20 f737d0cb53d28edf1573c5956460bfdd58be6267"
  "dataset-celestine-doniau-danest https://github.com/alix-tz/dataset-celestine-doniau-danest 645616d5cc8ffd0d84fd63284cde0647f17a1167"
  "ehri-dataset https://github.com/FloChiff/ehri-dataset 20a5e002031c1f9e66176133b4602ed439db6521"
  "tapuscorpus https://github.com/HTR-United/tapuscorpus f18a6afe067bdb213d58ba2b69c3a04013149685"
)
mkdir -p "$DEST"
for entry in "${REPOS[@]}"; do
  read -r name url commit <<< "$entry"
  if [ "$(git -C "$DEST/$name" rev-parse HEAD 2>/dev/null)" != "$commit" ]; then
    [ -d "$DEST/$name/.git" ] || git clone --quiet "$url" "$DEST/$name"
    git -C "$DEST/$name" checkout --quiet "$commit"
  fi
  echo "$name $commit"
done
