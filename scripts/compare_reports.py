"""Two models on the same lines, compared line by line: from `handwrite eval --report` files (TSV).

    python scripts/compare_reports.py 'runs/x/A-*.tsv' 'runs/x/B-*.tsv' [--rounds 2000] [--seed 0]

Files are paired by what the ``*`` stands for (A-hooker.tsv with B-hooker.tsv), and so are their lines,
by id. One JSON object: wrong characters of A and B per pair and in all, B - A, how many lines B reads
better and worse, and a 95 % bootstrap interval for B - A that resamples whole pages (a line's page from
its id, as `handwrite eval` groups documents; a line whose id names none is its own page), since lines of
one page succeed or fail together. Why: differences between two recipes are often a fraction of a per
cent, and the total alone does not say whether they are more than noise.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

from handwrite.datasets import group_of


def read_report(path: Path) -> dict[str, int]:
    """Line id -> wrong characters (the report's CER times the reference's length)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {r["id"]: round(float(r["cer"]) * max(len(r["reference"]), 1)) for r in rows}


def pairs(pattern_a: str, pattern_b: str) -> dict[str, tuple[Path, Path]]:
    """What ``*`` stands for -> (A's file, B's file); an unpaired file is an error."""

    def by_key(pattern: str) -> dict[str, Path]:
        if pattern.count("*") != 1 or any(c in pattern for c in "?["):
            sys.exit(f"compare_reports: {pattern}: the pattern needs exactly one '*' and no other wildcard")
        head, tail = pattern.split("*")
        rx = re.compile(re.escape(head) + "(.*)" + re.escape(tail) + "$")
        return {rx.match(p).group(1): Path(p) for p in glob.glob(pattern)}

    a, b = by_key(pattern_a), by_key(pattern_b)
    if not a or set(a) != set(b):
        sys.exit(f"compare_reports: the files do not pair up: {sorted(a)} against {sorted(b)}")
    return {k: (a[k], b[k]) for k in sorted(a)}


def compare(files: dict[str, tuple[Path, Path]], rounds: int = 2000, seed: int = 0) -> dict:
    sets, pages = {}, defaultdict(int)  # page -> B - A
    better = worse = 0
    for key, (path_a, path_b) in files.items():
        a, b = read_report(path_a), read_report(path_b)
        if set(a) != set(b):
            sys.exit(f"compare_reports: {path_a} and {path_b} do not hold the same lines")
        for line, errors in a.items():
            diff = b[line] - errors
            pages[(key, group_of(line) or line)] += diff
            better, worse = better + (diff < 0), worse + (diff > 0)
        sets[key] = {"a": sum(a.values()), "b": sum(b.values()), "lines": len(a)}
    total_a, total_b = sum(s["a"] for s in sets.values()), sum(s["b"] for s in sets.values())
    diffs = list(pages.values())
    rng = random.Random(seed)
    boots = sorted(sum(rng.choice(diffs) for _ in diffs) for _ in range(rounds))
    return {
        "sets": sets,
        "a": total_a,
        "b": total_b,
        "b_minus_a": total_b - total_a,
        "relative": round((total_b - total_a) / max(total_a, 1), 5),
        "lines_b_better": better,
        "lines_b_worse": worse,
        "pages": len(diffs),
        "interval_95": [boots[int(0.025 * rounds)], boots[int(0.975 * rounds) - 1]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="A's report files: a pattern with one '*' (quote it)")
    ap.add_argument("b", help="B's report files, the same pattern for B")
    ap.add_argument("--rounds", type=int, default=2000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(compare(pairs(args.a, args.b), args.rounds, args.seed)))


if __name__ == "__main__":
    main()
