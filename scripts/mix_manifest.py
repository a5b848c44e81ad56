"""Write one TSV manifest (path, text, split) from several datasets' splits, for a training mix.

Usage: python scripts/mix_manifest.py OUT.tsv SPLIT_NAME DATASET:SPLIT [DATASET:SPLIT ...]

Each DATASET is read by handwrite's own readers (any layout; SPLIT a split name or list file,
or '-' for the whole set); the rows are written with absolute image paths under the split
column SPLIT_NAME, so `handwrite train OUT.tsv --train-split SPLIT_NAME` reads the mix.
"""

from __future__ import annotations

import sys
from pathlib import Path

from handwrite.atomic import atomic_write
from handwrite.datasets import load_dataset


def main() -> None:
    out, name, sources = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    rows = []
    for source in sources:
        path, _, split = source.rpartition(":")
        records = load_dataset(path, split=None if split == "-" else split)
        rows += [(str(Path(r.image).resolve()), r.text, name) for r in records]
        print(f"{path} [{split}]: {len(records)} lines", file=sys.stderr)

    def write(f):
        text = "path\ttext\tsplit\n" + "".join(f"{p}\t{t}\t{s}\n" for p, t, s in rows)
        f.write(text.encode("utf-8"))

    atomic_write(out, write)
    print(f"{out}: {len(rows)} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
