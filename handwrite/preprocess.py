"""Image preparation: from a line image to what the network reads.

A line image becomes a uint8 array (height, width) with ink as high values
(paper 0, ink 255), scaled to a fixed height with its aspect ratio kept and its
contrast stretched from the paper tone to the darkest strokes; ``pad_lines``
makes a batch of them the (N, 1, height, width) float array in [0, 1] the network takes.
When lines are read (not trained on), ``prepare_for_reading`` may first turn a sloping line level,
crop a wide margin above and below its writing and add paper at both ends: the reading settings of
``DecoderSpec``.
No torch here: recognition with an ONNX model runs without it.
Images that cannot be text lines (blank, 100 times wider than high, a few
pixels wide) are refused here, for training and recognition alike.
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image

from .errors import HandwriteError
from .imageio import open_image, to_grey
from .pagexml import LineCrop, crop_line

MIN_WIDTH = 8  # narrower than a few pixels after scaling is not a text line
# IAM's longest lines are about 20 times as wide as high; 100 admits every real line and refuses
# a 5000 x 1 image, which would scale to 320,000 columns and gigabytes of activations.
MAX_ASPECT = 100
# Ink-to-paper contrast (grey levels, 99.5th percentile against the median) below which an image holds
# no writing: the faintest of 1,505 real validation lines (iam-hooker, copiste-fr, poilus, mss19) had 31.
MIN_CONTRAST = 16


def read_line_image(source) -> Image.Image:
    """The greyscale image of a line: a file, a :class:`~handwrite.pagexml.LineCrop` of a page,
    a PIL image, or a numpy array (H x W greyscale or H x W x 3/4 colour, uint8)."""
    if isinstance(source, LineCrop):
        return crop_line(source)
    if isinstance(source, Image.Image):
        return to_grey(source)
    if isinstance(source, np.ndarray):
        try:
            return to_grey(Image.fromarray(source))
        except (TypeError, ValueError) as e:
            raise HandwriteError(
                f"array of shape {source.shape} and type {source.dtype} is not an image ({e})"
            ) from None
    return open_image(source)


def load_line(
    source, height: int, max_slope: float = 0.0, min_ink_height: float = 0.0, margin: float = 0.0
) -> np.ndarray:
    """Read one line image (a path or a page crop) as uint8 (height, width), ink high, contrast-stretched;
    with reading settings, levelled, cropped and given margins as :func:`prepare_for_reading` does."""
    return prepare_for_reading(read_line_image(source), height, source, max_slope, min_ink_height, margin)


def scale_to_height(grey: Image.Image, height: int, source="image") -> Image.Image:
    """A greyscale line image scaled to ``height`` pixels high, its aspect ratio kept: an image that
    cannot be a line (empty, too long for its height, too narrow) is an error naming ``source``."""
    w, h = grey.size
    if w == 0 or h == 0:
        raise HandwriteError(f"{source}: image is empty ({w}x{h} pixels)")
    if w > MAX_ASPECT * h:
        raise HandwriteError(
            f"{source}: {w}x{h} pixels is too long for its height to be a text line "
            f"(more than {MAX_ASPECT} times as wide as high)"
        )
    new_w = max(1, round(w * height / h))
    if new_w < MIN_WIDTH:
        raise HandwriteError(f"{source}: image is too narrow to hold text ({w}x{h} pixels)")
    return grey.resize((new_w, height), Image.Resampling.BILINEAR)


def prepare_line(grey: Image.Image, height: int, source="image", refuse_blank: bool = True) -> np.ndarray:
    """A greyscale line image as the network reads it: uint8 (height, width), ink high, contrast-stretched;
    one with too little contrast to hold writing is an error naming ``source`` unless ``refuse_blank`` is off.

    uint8 rather than float keeps an in-memory cache of a whole training set
    four times smaller.
    """
    grey = scale_to_height(grey, height, source)
    ink = 255.0 - np.asarray(grey, dtype=np.float32)
    # Paper is the most common tone of a line image; stretching from it to the
    # darkest strokes removes tinted paper and faint scans in one step.
    paper = np.median(ink)
    top = np.percentile(ink, 99.5)
    if top - paper < MIN_CONTRAST and refuse_blank:
        raise HandwriteError(f"{source}: no writing found (blank or near-blank image)")
    scale = 255.0 / max(top - paper, 1.0)
    return np.clip((ink - paper) * scale, 0, 255).astype(np.uint8)


def ink_extent(line: np.ndarray) -> tuple[int, float]:
    """(rows, centre row) of a prepared line's ink: the height of the central 90 % of its mass (row
    sums), so that a stray stroke of the lines above or below, or a long descender, does not count."""
    profile = line.sum(axis=1, dtype=np.float64)
    total = max(profile.sum(), 1e-9)
    cumulative = np.cumsum(profile) / total
    rows = int(np.searchsorted(cumulative, 0.95) - np.searchsorted(cumulative, 0.05) + 1)
    return rows, float((np.arange(len(profile)) * profile).sum() / total)


def crop_to_ink(grey: Image.Image, line: np.ndarray, min_fill: float) -> Image.Image | None:
    """``grey`` cropped above and below, around its ink's centre, so that its ink (:func:`ink_extent`)
    fills ``min_fill`` of the height; None when it fills that much already. ``line``: ``grey`` as
    :func:`prepare_line` made it."""
    rows, centre = ink_extent(line)
    if rows >= min_fill * line.shape[0]:
        return None
    scale = grey.size[1] / line.shape[0]  # the image's rows per row of ``line``
    height = max(1, round(rows / min_fill * scale))
    top = min(max(0, round(centre * scale - height / 2)), grey.size[1] - height)
    return grey.crop((0, top, grey.size[0], top + height))


def ink_slope(line: np.ndarray) -> float:
    """How steeply a prepared line's writing rises or falls, in degrees (positive: falling to the right):
    a straight line fitted through the ink's centre of each strip one line-height wide, strips weighted by
    the square root of their ink."""
    height, width = line.shape
    strips = max(2, width // height)
    xs, ys, weights = [], [], []
    for j in range(strips):
        strip = line[:, j * width // strips : (j + 1) * width // strips].sum(axis=1, dtype=np.float64)
        if strip.sum() > 0:
            xs.append((j + 0.5) * width / strips)
            ys.append((np.arange(height) * strip).sum() / strip.sum())
            weights.append(np.sqrt(strip.sum()))
    if len(xs) < 2:
        return 0.0
    return float(np.degrees(np.arctan(np.polyfit(xs, ys, 1, w=weights)[0])))


# Lines shorter than this many line-heights are read as given whatever their slope: fitted through two
# or three strip centres, a capital or a descender in one strip reads as a slope. Measured 2026-11-30 on
# the validation lines under 6 line-heights that max_slope 3 turned (112 in four sets): 4 / 5 / 6 left
# 426 / 433 / 462 wrong characters, and 0 / 3 / 4 left 239 / 235 / 231 on those under 4; on a LECTAUREP
# register's short cells (616 turned) 0 / 3 / 4 left 2,055 / 1,906 / 1,875 (models/default/DEVELOPMENT.md).
LEVEL_MIN_LENGTH = 4


def level(grey: Image.Image, degrees: float) -> Image.Image:
    """``grey`` turned by ``degrees`` (:func:`ink_slope`'s sign) so that its writing runs level, enlarged to
    keep every pixel, the corners filled with its paper tone (its median)."""
    paper = int(np.median(np.asarray(grey)))
    return grey.rotate(degrees, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=paper)


def prepare_for_reading(
    grey: Image.Image,
    height: int,
    source="image",
    max_slope: float = 0.0,
    min_ink_height: float = 0.0,
    margin: float = 0.0,
) -> np.ndarray:
    """:func:`prepare_line`, after turning level a line whose writing slopes more than ``max_slope``
    degrees (one at least ``LEVEL_MIN_LENGTH`` line-heights long) and cropping one whose ink fills less
    than ``min_ink_height`` of its height (0: never), with :func:`margin_columns` of paper added at each
    end: recognition's reading settings (``DecoderSpec``);
    training prepares its lines the same way when its ``TrainConfig`` holds them (``adapt`` takes the
    starting model's), so that a model learns lines as it will read them."""
    line = prepare_line(grey, height, source)
    # The line as given holds writing (checked just above); turned, it may not look as if it did: the
    # turn blurs thin strokes and the taller image is scaled down more (a faint pencil line of CREMMA-MSS-20,
    # 18 grey levels of contrast as given, had 14 levelled and was refused as blank).
    if max_slope and line.shape[1] >= LEVEL_MIN_LENGTH * height:
        slope = ink_slope(line)
        if abs(slope) > max_slope:
            grey = level(grey, slope)
            line = prepare_line(grey, height, source, refuse_blank=False)
    if min_ink_height:
        cropped = crop_to_ink(grey, line, min_ink_height)
        if cropped is not None:
            line = prepare_line(cropped, height, source, refuse_blank=False)
    return add_margin(line, margin_columns(margin, height))


def margin_columns(margin: float, height: int) -> int:
    """The columns of paper that a margin of ``margin`` line heights adds at each end of a line ``height`` high."""
    return round(margin * height)


def add_margin(line: np.ndarray, columns: int) -> np.ndarray:
    """A prepared line with ``columns`` of paper (0) added at each end."""
    return np.pad(line, ((0, 0), (columns, columns))) if columns else line


def stretch_line(line: np.ndarray, factor: float) -> np.ndarray:
    """A prepared line ``factor`` times as wide (bilinear), its height kept."""
    width = max(1, round(line.shape[1] * factor))
    return np.asarray(Image.fromarray(line).resize((width, line.shape[0]), Image.Resampling.BILINEAR))


def pack_line(line: np.ndarray) -> bytes:
    """A prepared line compressed for keeping in memory (training sets, validation caches): zlib at
    level 1 made real lines 3.5x smaller, and unpacking one takes about 0.2 ms, under 1 % of its
    share of a training step."""
    return zlib.compress(np.ascontiguousarray(line).tobytes(), 1)


def try_pack_line(
    source, height: int, max_slope: float = 0.0, min_ink_height: float = 0.0, margin: float = 0.0
) -> tuple[bytes, int] | str:
    """(:func:`pack_line` of :func:`load_line`, its width), or why the image cannot be used: a value
    rather than an exception, so that one bad image does not end a pool's whole map."""
    try:
        line = load_line(source, height, max_slope, min_ink_height, margin)
    except HandwriteError as e:
        return str(e)
    return pack_line(line), line.shape[1]


def unpack_line(blob: bytes, height: int) -> np.ndarray:
    """The uint8 (height, width) line that :func:`pack_line` packed (read-only)."""
    return np.frombuffer(zlib.decompress(blob), np.uint8).reshape(height, -1)


def to_unit(line: np.ndarray) -> np.ndarray:
    """uint8 ink-high line -> float32 in [0, 1], as the network reads it."""
    return line.astype(np.float32) / 255.0


def pad_lines(lines: list[np.ndarray], multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Float lines (H, W_i) -> a batch (N, 1, H, W) right-padded with paper (0), and the widths;
    W is the widest line's width rounded up to a ``multiple``."""
    widths = np.array([x.shape[-1] for x in lines], dtype=np.int64)
    width = -(-int(widths.max()) // multiple) * multiple
    batch = np.zeros((len(lines), 1, lines[0].shape[-2], width), dtype=np.float32)
    for k, x in enumerate(lines):
        batch[k, 0, :, : x.shape[-1]] = x
    return batch, widths
