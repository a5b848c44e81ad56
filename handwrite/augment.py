"""Training-time distortions of line images: other hands, pens and scanners, imitated."""

from __future__ import annotations

import torch

# The elastic distortion blurs with a 33-pixel kernel and cannot pad a narrower image (a crash seen
# on a one-character line 15 pixels wide); such lines are rare and are trained on undistorted.
AUGMENT_MIN_WIDTH = 33


def make_augmenter():
    """Training-time distortions of a (1, H, W) ink-high tensor.

    Each is mild and applied with a probability, so most lines stay close to
    the real thing; together they mimic other hands, pens and scanners.
    """
    from torchvision.transforms import v2

    def stroke_width(x: torch.Tensor) -> torch.Tensor:
        # Ink is high, so max-pooling thickens strokes and min-pooling thins them.
        if torch.rand(()) < 0.5:
            return torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1)
        return -torch.nn.functional.max_pool2d(-x, 3, stride=1, padding=1)

    return v2.Compose(
        [
            v2.RandomApply([v2.RandomAffine(degrees=1.5, shear=(-15, 15, 0, 0), scale=(0.9, 1.05))], p=0.5),
            v2.RandomApply([v2.ElasticTransform(alpha=12.0, sigma=4.0)], p=0.2),
            v2.RandomApply([v2.Lambda(stroke_width)], p=0.25),
            v2.RandomApply([v2.GaussianBlur(3, sigma=(0.3, 1.0))], p=0.2),
        ]
    )
