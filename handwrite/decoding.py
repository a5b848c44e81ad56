"""Turning per-frame class scores into text.

Greedy (best-path) decoding: take the most likely class in every frame, merge
repeats, drop blanks.
"""

from __future__ import annotations

import torch

from .codec import BLANK


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[tuple[list[int], float]]:
    """log_probs (T, N, C), lengths (N,) -> per line: (labels, confidence).

    The confidence is the geometric mean of the chosen frames' probabilities:
    1.0 when the network is certain of every frame, lower as it hesitates.
    """
    best, idx = log_probs.max(-1)  # T, N
    out = []
    for n, t_len in enumerate(lengths.tolist()):
        path = idx[:t_len, n]
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]
        labels = path[keep & (path != BLANK)].tolist()
        conf = float(best[:t_len, n].mean().exp()) if t_len else 0.0
        out.append((labels, conf))
    return out
