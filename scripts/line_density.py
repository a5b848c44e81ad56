"""How densely lines are written, as a model reads them: characters per output frame; how much of a
line's height its ink fills; how steeply its writing runs.

Usage: python scripts/line_density.py MODEL DATASET:SPLIT [DATASET:SPLIT ...] [--sample N]

A line of w x h pixels is read at the model's height H as round(w * H / h) columns, and the network
gives one frame per ``width_reduction`` columns; CTC needs at least one frame per character (two
between repeated ones). Prints one JSON object per dataset and one for all of them: the lines
measured and the 10th/50th/75th/90th percentiles. The median of a model's training lines is the
``max_density`` its decoding settings use (denser lines are read again, stretched to it), since that
is the density the network learned most from. ``ink_height``: the same percentiles of the fraction of
a line's height that its ink fills (handwrite.preprocess.ink_extent), what ``min_ink_height`` compares
with (lines cut with wider margins than a model's training lines are cropped to it); ``slope``: those of
how many degrees the writing rises or falls (handwrite.preprocess.ink_slope, either way), what
``max_slope`` compares with. Each dataset is read by handwrite's own readers (SPLIT
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
from handwrite.errors import HandwriteError
from handwrite.preprocess import ink_extent, ink_slope, prepare_line, read_line_image


def measure(records, height: int, reduction: int) -> tuple[list[float], list[float], list[float]]:
    """Each line's characters per output frame, the fraction of its height its ink fills, and how many
    degrees its writing slopes."""
    density, ink, slope = [], [], []
    for r in records:
        grey = read_line_image(r.image)
        try:
            line = prepare_line(grey, height, r.image)
        except HandwriteError as e:  # a blank crop (one of TIME US's 1858 lines): nothing to measure
            print(f"skipped: {e}", file=sys.stderr)
            continue
        w, h = grey.size
        frames = max(1, round(w * height / h) // reduction)
        density.append(len(r.text) / frames)
        ink.append(ink_extent(line)[0] / height)
        slope.append(abs(ink_slope(line)))
    return density, ink, slope


def main(argv: list[str]) -> None:
    sample = None
    if "--sample" in argv:
        k = argv.index("--sample")
        sample = int(argv[k + 1])
        argv = argv[:k] + argv[k + 2 :]
    model, sources = argv[0], argv[1:]
    cfg = handwrite.load(model, decoder="greedy").network.cfg
    everything: tuple[list[float], list[float], list[float]] = ([], [], [])

    def percentiles(values: list[float]) -> dict:
        return dict(zip(("p10", "median", "p75", "p90"), np.percentile(values, [10, 50, 75, 90]).round(3).tolist()))

    def report(name: str, values: tuple[list[float], list[float], list[float]]) -> None:
        density, ink, slope = values
        more = {"ink_height": percentiles(ink), "slope": percentiles(slope)}
        print(json.dumps({"data": name, "lines": len(density), **percentiles(density), **more}))

    for source in sources:
        path, _, split = source.rpartition(":")
        records = load_dataset(path, split=None if split == "-" else split)
        if sample is not None and len(records) > sample:
            records = random.Random(0).sample(records, sample)
        values = measure(records, cfg.height, cfg.width_reduction)
        for kept, new in zip(everything, values):
            kept += new
        report(source, values)
    if len(sources) > 1:
        report("all", everything)


if __name__ == "__main__":
    main(sys.argv[1:])
