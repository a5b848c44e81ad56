"""How densely lines are written, as a model reads them: characters per output frame.

Usage: python scripts/line_density.py MODEL DATASET:SPLIT [DATASET:SPLIT ...] [--sample N]

A line of w x h pixels is read at the model's height H as round(w * H / h) columns, and the network
gives one frame per ``width_reduction`` columns; CTC needs at least one frame per character (two
between repeated ones). Prints one JSON object per dataset and one for all of them: the lines
measured and the 10th/50th/75th/90th percentiles. The median of a model's training lines is the
``max_density`` its decoding settings use (denser lines are read again, stretched to it), since that
is the density the network learned most from. Each dataset is read by handwrite's own readers (SPLIT
a split name or list file, '-' for the whole set); ``--sample N`` measures N random lines of each
(seed 0), enough for percentiles and quicker than opening every image.
"""

from __future__ import annotations

import json
import random
import sys

import numpy as np

import handwrite
from handwrite.datasets import load_dataset
from handwrite.preprocess import read_line_image


def densities(records, height: int, reduction: int) -> list[float]:
    out = []
    for r in records:
        w, h = read_line_image(r.image).size
        frames = max(1, round(w * height / h) // reduction)
        out.append(len(r.text) / frames)
    return out


def main(argv: list[str]) -> None:
    sample = None
    if "--sample" in argv:
        k = argv.index("--sample")
        sample = int(argv[k + 1])
        argv = argv[:k] + argv[k + 2 :]
    model, sources = argv[0], argv[1:]
    cfg = handwrite.load(model, decoder="greedy").network.cfg
    everything: list[float] = []

    def report(name: str, values: list[float]) -> None:
        p10, p50, p75, p90 = np.percentile(values, [10, 50, 75, 90]).round(3).tolist()
        print(json.dumps({"data": name, "lines": len(values), "p10": p10, "median": p50, "p75": p75, "p90": p90}))

    for source in sources:
        path, _, split = source.rpartition(":")
        records = load_dataset(path, split=None if split == "-" else split)
        if sample is not None and len(records) > sample:
            records = random.Random(0).sample(records, sample)
        values = densities(records, cfg.height, cfg.width_reduction)
        everything += values
        report(source, values)
    if len(sources) > 1:
        report("all", everything)


if __name__ == "__main__":
    main(sys.argv[1:])
