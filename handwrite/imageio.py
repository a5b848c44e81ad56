"""Reading image files as the greyscale a person would see, whatever their pixel format.

Kept free of torch, so that page-file and dataset code can read images cheaply.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import HandwriteError

# File name endings of the images handwrite looks for in folders and beside page files.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2")
# A 600-dpi A3 scan is 70 Mpx; this admits every real page and refuses a decompression bomb
# before its pixels are decoded. Pillow itself refuses twice its MAX_IMAGE_PIXELS (179 Mpx)
# and only warns below that, so the check here is what decides up to its refusal.
MAX_PIXELS = 150_000_000


def open_image(path: str | Path) -> Image.Image:
    """An 8-bit greyscale ("L") image: alpha composited on white, 16-bit scaled, palette and
    CMYK converted. Multi-page files (TIFF) are refused rather than read from page 1 silently."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below decides
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise HandwriteError(
                        f"{path}: image of {w}x{h} pixels is larger than the {MAX_PIXELS:,}-pixel limit"
                    )
                if getattr(im, "n_frames", 1) > 1:
                    raise HandwriteError(f"{path}: holds {im.n_frames} pages; give one image per file")
                im.load()
                return to_grey(im)
    except FileNotFoundError:
        raise HandwriteError(f"{path}: image not found") from None
    except Image.DecompressionBombError as e:
        raise HandwriteError(f"{path}: image too large ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise HandwriteError(f"{path}: not a readable image ({e})") from None


def to_grey(im: Image.Image) -> Image.Image:
    """An image as 8-bit greyscale, as a person would see it (see :func:`open_image`)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        if im.mode == "F" and a.max() <= 1.0:
            top = 1.0
        return Image.fromarray(np.clip(a * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    return im.convert("L")
