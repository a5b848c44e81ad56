"""Turn the prose fetched by fetch_lm_text.sh into LM text: lines of about a handwritten line's length.

    python scripts/lm_text.py LM_TEXT_DIR OUT.txt [--from 1850] [--to 1913] [--every 1]

Why lines and not sentences: the character LM scores each text line from <s> to </s>, and a
handwritten line starts and ends mid-sentence; prose wrapped at the length of a real line
(the mean of the training lines is about 45 characters) gives the LM the same kind of starts and
ends. Typographic quotes become the ASCII ones the English transcriptions use.
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from pathlib import Path

WIDTH = 48
KEEP = re.compile(r"[^A-Za-z0-9 .,;:!?'\"()&$%/£-]")
TYPO = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "—": "-", "–": "-", "‑": "-"})


def paragraphs(root: Path, first: int, last: int) -> list[str]:
    """State of the Union addresses of the chosen years, then Moby-Dick's chapters in order."""
    out = []
    for f in sorted((root / "datasets-sotu" / "data").glob("*.txt")):
        if first <= int(f.name[:4]) <= last:
            out += f.read_text(encoding="utf-8").split("\n")
    chapters = (root / "datasets-moby-dick" / "data").glob("chapter_*.json")
    for f in sorted(chapters, key=lambda p: int(p.stem.split("_")[1])):
        out += json.loads(f.read_text(encoding="utf-8"))["text"].split("\n")
    return out


def lines(paras: list[str]) -> list[str]:
    out = []
    for p in paras:
        p = " ".join(KEEP.sub(" ", p.translate(TYPO)).split())
        out += textwrap.wrap(p, WIDTH)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--from", dest="first", type=int, default=1850)
    ap.add_argument("--to", dest="last", type=int, default=1913)
    ap.add_argument("--every", type=int, default=1, help="keep every n-th line (a smaller LM)")
    args = ap.parse_args()
    text = lines(paragraphs(args.root, args.first, args.last))[:: args.every]
    tmp = args.out.with_suffix(".part")
    tmp.write_text("".join(t + "\n" for t in text), encoding="utf-8")
    tmp.replace(args.out)
    print(f"{len(text)} lines, {sum(map(len, text))} characters -> {args.out}")


if __name__ == "__main__":
    main()
