"""Training-time distortions of line images: other hands, pens and scanners, imitated.

Written with torch alone: the same transforms from torchvision (which this module used before)
import torch's compiler stack with it, 156 MB resident in every process that augments (a training
process, or its DataLoader worker), for four small geometric operations. Each function below is
checked against torchvision's own in the tests (same output at the same parameters).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The elastic distortion blurs with a 33-pixel kernel and cannot pad a narrower image (a crash seen
# on a one-character line 15 pixels wide); such lines are rare and are trained on undistorted.
AUGMENT_MIN_WIDTH = 33


def gaussian_blur(x: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Blurs an (N, C, H, W) tensor with a ``size``-tap Gaussian, edges reflected (torchvision's
    ``gaussian_blur``, done as two 1-D passes: 16 times fewer operations for the elastic field's
    33-tap kernel)."""
    t = torch.linspace(-(size // 2), size // 2, size, dtype=x.dtype)
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    w = w / w.sum()
    c = x.shape[1]
    x = F.pad(x, [size // 2] * 4, mode="reflect")
    x = F.conv2d(x, w.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
    return F.conv2d(x, w.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)


def _resample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of a (C, H, W) image at ``grid`` (1, H, W, 2) in [-1, 1] coordinates;
    paper (0) outside the image."""
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def affine(x: torch.Tensor, angle: float, scale: float, shear: float) -> torch.Tensor:
    """Rotates by ``angle`` and shears along the line by ``shear`` (degrees), scales by ``scale``,
    all about the image centre (torchvision's ``affine`` with no translation and no vertical shear)."""
    rot, sx = math.radians(angle), math.radians(shear)
    a, b = math.cos(rot), -math.cos(rot) * math.tan(sx) - math.sin(rot)
    c, d = math.sin(rot), -math.sin(rot) * math.tan(sx) + math.cos(rot)
    h, w = x.shape[-2:]
    # Output pixel -> source pixel is the inverse [[d, -b], [-c, a]] / scale (a determinant of 1 by
    # construction); in [-1, 1] coordinates the off-diagonal terms take the aspect ratio.
    theta = torch.tensor([[d, -b * h / w, 0.0], [-c * w / h, a, 0.0]], dtype=x.dtype) / scale
    return _resample(x, F.affine_grid(theta[None], [1, *x.shape], align_corners=False))


def elastic(x: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """Moves each pixel by smooth random noise: uniform, blurred with ``sigma``, of strength
    ``alpha`` (torchvision's ``ElasticTransform``)."""
    h, w = x.shape[-2:]
    size = int(8 * sigma + 1) | 1
    field = gaussian_blur(torch.rand(1, 2, h, w) * 2 - 1, size, sigma)
    field = field * torch.tensor([alpha / w, alpha / h]).view(1, 2, 1, 1)
    identity = F.affine_grid(torch.eye(2, 3)[None], [1, *x.shape], align_corners=False)
    return _resample(x, identity + field.permute(0, 2, 3, 1))


def stroke_width(x: torch.Tensor) -> torch.Tensor:
    """Thicker or thinner strokes, even odds: ink is high, so max-pooling thickens and min-pooling thins."""
    if torch.rand(()) < 0.5:
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return -F.max_pool2d(-x, 3, stride=1, padding=1)


def _uniform(low: float, high: float) -> float:
    return float(torch.empty(1).uniform_(low, high))


def augment(x: torch.Tensor) -> torch.Tensor:
    """One random distortion of a (1, H, W) ink-high tensor.

    Each is mild and applied with a probability, so most lines stay close to
    the real thing; together they mimic other hands, pens and scanners.
    Draws from torch's global generator (LineDataset seeds it per line).
    """
    if torch.rand(()) < 0.5:
        x = affine(x, angle=_uniform(-1.5, 1.5), scale=_uniform(0.9, 1.05), shear=_uniform(-15, 15))
    if torch.rand(()) < 0.2:
        x = elastic(x, alpha=12.0, sigma=4.0)
    if torch.rand(()) < 0.25:
        x = stroke_width(x)
    if torch.rand(()) < 0.2:
        x = gaussian_blur(x[None], 3, _uniform(0.3, 1.0))[0]
    return x
