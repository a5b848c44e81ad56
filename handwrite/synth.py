"""Synthetic handwriting: text lines drawn with handwriting fonts, written as an IAM-layout dataset.

Real transcribed handwriting is scarce; pretraining on rendered lines is how
strong HTR systems start (Kang et al. 2020). A font alone looks like print, so
each line is drawn word by word with its own size, baseline and tilt, then
slanted, rotated, warped elastically, given a stroke width, and laid on paper
with uneven ink; with ``crop_effects`` also as a page crop holds it (neighbouring
lines' strokes, a polygon's flat fill, show-through, rulings, pencil). Everything random comes from a generator seeded by
``(seed, line number)``: the same seed gives the same dataset whatever the
number of worker processes.

The output is exactly the IAM line layout (``ascii/lines.txt``, ``lines/``
tree, ``splits/``), so every reader and command works on it unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .atomic import atomic_write
from .datasets import LineRecord, normalize_text, read_texts
from .errors import HandwriteError

# OFL-licensed handwriting fonts installed from PyPI with handwrite; each covers printable ASCII.
# Fonts whose lowercase is drawn as small capitals are left out: their images would not match the label's case.
FONT_PACKAGES = (
    "fontpkg_caveat",
    "fontpkg_shadows_into_light",
    "fontpkg_zeyada",
    "fontpkg_indie_flower",
    "fontpkg_kalam",
    "fontpkg_dancing_script",
)
FONT_SUFFIXES = {".ttf", ".otf", ".woff"}
DEFAULT_TEXT = Path(__file__).with_name("resources") / "hooker-train-lines.txt.gz"
LINES_PER_FORM = 10
MAX_WORDS = 10


@dataclass(frozen=True)
class Font:
    path: str
    chars: frozenset[str]
    weights: tuple[float, float] | None  # range of the 'wght' axis of a variable font

    def covers(self, text: str) -> bool:
        return all(c in self.chars for c in text if not c.isspace())


@dataclass
class SynthReport:
    lines: int = 0
    resampled: int = 0  # lines whose first text had a character the chosen font lacks
    splits: dict[str, int] = field(default_factory=dict)
    fonts: int = 0


def load_font(path: str | Path) -> Font:
    """A font's character coverage, from its cmap table; a clear error for anything unreadable."""
    from fontTools.ttLib import TTFont  # a correct cmap reader for every TrueType/OpenType flavour

    path = Path(path)
    try:
        tt = TTFont(path, lazy=True)
        cmap = tt.getBestCmap()
        axes = {a.axisTag: (a.minValue, a.maxValue) for a in tt["fvar"].axes} if "fvar" in tt else {}
        ImageFont.truetype(str(path), 32)
    except Exception as e:  # fontTools and FreeType raise many types for bad files
        raise HandwriteError(f"{path}: cannot read as a font ({type(e).__name__}: {e})") from None
    if not cmap:
        raise HandwriteError(f"{path}: font has no character map")
    return Font(str(path), frozenset(chr(c) for c in cmap), axes.get("wght"))


def builtin_font_paths() -> list[Path]:
    paths = []
    for name in FONT_PACKAGES:
        try:
            root = Path(importlib.import_module(name).ROOT)
        except ImportError:
            continue
        paths += sorted(p for p in (root / "files").iterdir() if p.suffix.lower() in FONT_SUFFIXES)
    return paths


def find_fonts(paths: Sequence[Path]) -> list[Path]:
    """Font files given directly or found (recursively) in the given folders."""
    found = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in FONT_SUFFIXES)
        elif p.exists():
            found.append(p)
        else:
            raise HandwriteError(f"{p}: font file or folder not found")
    return found


def read_corpus(paths: Sequence[Path] = (), split: str | None = None) -> list[str]:
    """Normalised non-empty lines to draw: from text files or datasets (see ``read_texts``), else the shipped default."""
    # '|' is the IAM word separator, so a line containing one could not be written faithfully.
    lines = [
        t for t in map(normalize_text, read_texts(list(paths) or [DEFAULT_TEXT], split=split)) if t and "|" not in t
    ]
    if not lines:
        raise HandwriteError(f"{', '.join(map(str, paths))}: no text lines to draw from")
    return lines


def _pick_text(corpus: Sequence[str], rng: np.random.Generator) -> str:
    words = corpus[rng.integers(len(corpus))].split()
    if len(words) > MAX_WORDS:  # paragraph-length corpus lines: a window of IAM-like length
        k = int(rng.integers(3, MAX_WORDS + 1))
        start = int(rng.integers(len(words) - k + 1))
        words = words[start : start + k]
    return " ".join(words)


@lru_cache(maxsize=64)
def _truetype(path: str, size: int, weight: int | None) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(path, size)
    if weight is not None:
        font.set_variation_by_axes([weight])
    return font


def _draw_words(text: str, font: Font, weight: int | None, rng: np.random.Generator, x_height: float) -> np.ndarray:
    """Ink coverage (0..1) of the line, each word with its own size, baseline shift and tilt."""
    # Fonts differ in how tall an 'x' is at a given point size; scale so that they agree.
    probe = _truetype(font.path, 100, weight).getbbox("x", anchor="ls")
    size = max(8, round(100 * x_height / max(1, -probe[1])))
    space = _truetype(font.path, size, weight).getlength(" ")
    pieces, x = [], 0.0
    for word in text.split():
        f = _truetype(font.path, max(8, round(size * rng.normal(1.0, 0.06))), weight)
        left, top, right, bottom = f.getbbox(word, anchor="ls")
        pad = int(size * 0.6 + 0.1 * (right - left))
        img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
        origin = (pad - left, pad - top)
        ImageDraw.Draw(img).text(origin, word, font=f, fill=255, anchor="ls")
        img = img.rotate(rng.normal(0, 1.5), resample=Image.BICUBIC, center=origin)
        baseline = rng.normal(0, 0.08 * x_height)
        pieces.append((img, x - origin[0] + left, baseline - origin[1]))
        x += right - left + space * rng.uniform(0.6, 1.6)
    x0 = min(px for _, px, _ in pieces)
    y0 = min(py for _, _, py in pieces)
    w = int(max(px + im.width for im, px, _ in pieces) - x0) + 1
    h = int(max(py + im.height for im, _, py in pieces) - y0) + 1
    canvas = np.zeros((h, w), np.float32)
    for im, px, py in pieces:
        c, r = int(px - x0), int(py - y0)
        region = canvas[r : r + im.height, c : c + im.width]
        np.maximum(region, np.asarray(im, np.float32) / 255, out=region)
    return canvas


def _trim(ink: np.ndarray, margin: int) -> np.ndarray:
    """The ink's bounding box plus ``margin`` blank pixels on each side: less area for the later steps."""
    rows, cols = np.nonzero(ink > 0.01)
    if len(rows) == 0:
        return ink
    box = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return np.pad(box, margin)


def _slant_and_rotate(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = ink.shape
    shear = rng.uniform(-0.35, 0.35)
    angle = np.deg2rad(rng.normal(0, 1.0))
    # Output -> input map: rotation about the centre, then a horizontal shear (slant).
    cos, sin = np.cos(angle), np.sin(angle)
    grow = int(abs(shear) * h + abs(sin) * w) + 2
    out_w, out_h = w + 2 * grow, h + 2 * grow
    cx, cy = out_w / 2, out_h / 2
    a, b = cos, -sin + shear * cos
    d, e = sin, cos
    coeffs = (a, b, w / 2 - a * cx - b * cy, d, e, h / 2 - d * cx - e * cy)
    img = Image.fromarray(ink).transform((out_w, out_h), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    return np.asarray(img, np.float32)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Random values on a coarse grid, interpolated: a smooth field in about [-1, 1]."""
    h, w = shape
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    coarse = Image.fromarray(rng.uniform(-1, 1, (gh, gw)).astype(np.float32))
    return np.asarray(coarse.resize((w, h), Image.BICUBIC), np.float32)


def _elastic(ink: np.ndarray, rng: np.random.Generator, amplitude: float, cell: float) -> np.ndarray:
    """Smooth random displacement: a mesh of cells whose corners move with a smooth field
    (PIL warps each cell bilinearly, in C, which is ~10x faster than remapping in numpy)."""
    h, w = ink.shape
    step = max(8, int(cell / 2))
    nx, ny = -(-w // step) + 1, -(-h // step) + 1
    dx = _smooth_field(rng, (ny, nx), 3) * amplitude
    dy = _smooth_field(rng, (ny, nx), 3) * amplitude
    mesh = []
    for j in range(ny - 1):
        for i in range(nx - 1):
            box = (i * step, j * step, (i + 1) * step, (j + 1) * step)
            corners = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j)]  # PIL's quad order: NW, SW, SE, NE
            quad = [v for a, b in corners for v in (a * step + dx[b, a], b * step + dy[b, a])]
            mesh.append((box, quad))
    img = Image.fromarray(ink).transform((w, h), Image.MESH, mesh, resample=Image.BILINEAR)
    return np.asarray(img, np.float32)


def _stroke(ink: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Thicker or thinner strokes: blur the coverage, then re-threshold it higher or lower."""
    img = Image.fromarray((np.clip(ink, 0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.MaxFilter(3))
    img = img.filter(ImageFilter.GaussianBlur(scale * rng.uniform(0.004, 0.015)))
    lo = rng.uniform(0.05, 0.45)
    return np.clip((np.asarray(img, np.float32) / 255 - lo) / (1 - lo) * 1.6, 0, 1)


def _paper(
    rng: np.random.Generator,
    shape: tuple[int, int],
    ink: np.ndarray,
    faint: np.ndarray | None = None,
    outside: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Compose ink onto paper: grey level, gradient, blotches, noise, uneven ink. Returns the image and
    the grey level halfway between paper and ink (the IAM ``graylevel`` binarisation threshold).
    ``faint``: light marks under the ink (show-through, rulings), as coverage in the ink's tone;
    ``outside``: pixels painted flat with the paper tone, as a crop along a line polygon is."""
    h, w = shape
    paper = rng.uniform(165, 250)
    ink_level = rng.uniform(5, 100)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-25, 25, 2)
    bg = paper + gx * (xs / w - 0.5) + gy * (ys / h - 0.5)
    bg += _smooth_field(rng, shape, rng.uniform(h * 0.5, h * 2)) * rng.uniform(0, 14)  # blotches
    ink_tone = ink_level + _smooth_field(rng, shape, h) * rng.uniform(0, 30)
    cover = ink if faint is None else np.maximum(ink, faint)
    img = bg * (1 - cover) + ink_tone * cover
    img += rng.normal(0, rng.uniform(0, 7), shape)
    if outside is not None and outside.any() and not outside.all():
        # The shared kits' crops paint what lies outside the polygon with the 75th percentile of what lies inside.
        img[outside] = np.percentile(img[~outside], 75)
    return np.clip(img, 0, 255).astype(np.uint8), int((paper + ink_level) / 2)


def _ink_line(text: str, font: Font, weight: int | None, rng: np.random.Generator, height: int) -> np.ndarray:
    """Ink coverage (0..1) of one written line, ``height`` rows, margins included.

    Drawn at twice the output scale, then shrunk, which smooths the edges the way a scanner does."""
    scale = 2 * height
    ink = _draw_words(text, font, weight, rng, x_height=scale * rng.uniform(0.22, 0.3))
    ink = _slant_and_rotate(_trim(ink, 2), rng)
    ink = _elastic(
        _trim(ink, int(0.05 * scale) + 2),
        rng,
        amplitude=scale * rng.uniform(0.0, 0.025),
        cell=scale * rng.uniform(0.3, 0.8),
    )
    ink = _stroke(ink, rng, scale)
    rows, cols = np.nonzero(ink > 0.05)
    if len(rows) == 0:
        raise HandwriteError(f"{font.path}: drew nothing for {text!r}")
    # Margins are added after the ink's bounding box is known, so no stroke can fall outside the image.
    mx = rng.uniform(0.02, 0.25) * scale
    my = rng.uniform(0.02, 0.15) * scale
    top, left = int(max(rows.min() - my, 0)), int(max(cols.min() - mx, 0))
    bottom, right = int(rows.max() + 1 + my), int(cols.max() + 1 + mx)
    crop = np.zeros((bottom - top, right - left), np.float32)
    src = ink[top:bottom, left:right]
    crop[: src.shape[0], : src.shape[1]] = src
    out_w = max(1, round(crop.shape[1] * height / crop.shape[0]))
    small = np.asarray(Image.fromarray(crop).resize((out_w, height), Image.LANCZOS), np.float32)
    return np.clip(small, 0, 1)


# How often each page-crop effect is drawn (`synthesize(crop_effects=True)`; their strengths are drawn where
# they are applied, in `_crop_effects`). What they imitate is seen in the real crops of the shared kits and the HTR-United pages: strokes of the lines above
# and below, cut off by the line polygon's flat fill, the other side of the sheet showing through, printed
# rulings, pencil.
NEIGHBOURS = 0.5  # strokes of the lines above and below reach into the crop
POLYGON = 0.5  # what lies outside a band around the line's own ink is painted flat
SHOW_THROUGH = 0.3  # the other side's writing, mirrored and blurred
RULED = 0.2  # a ruling under the line (and one above)
PENCIL = 0.1  # grainy, lighter strokes


def _fit_width(ink: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """``ink`` cut or padded to ``width`` columns, shifted along the line at random."""
    if ink.shape[1] >= width:
        start = int(rng.integers(ink.shape[1] - width + 1))
        return ink[:, start : start + width]
    out = np.zeros((ink.shape[0], width), np.float32)
    start = int(rng.integers(width - ink.shape[1] + 1))
    out[:, start : start + ink.shape[1]] = ink
    return out


def _ink_rows(ink: np.ndarray) -> np.ndarray:
    """The rows of ``ink`` from its first to its last inked row."""
    rows = np.nonzero(ink.max(axis=1) > 0.05)[0]
    return ink[rows.min() : rows.max() + 1] if len(rows) else ink


def _band(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixels outside a polygon that follows the line's own ink, as a segmenter draws it: per column the
    highest and lowest stroke nearby, widened a little (True: outside)."""
    h, w = ink.shape
    inked = ink > 0.1
    any_ink = inked.any(axis=0)
    first = np.where(any_ink, inked.argmax(axis=0), h)
    last = np.where(any_ink, h - 1 - inked[::-1].argmax(axis=0), -1)
    reach = max(2, int(h * rng.uniform(0.3, 1.0)))  # a polygon's vertices are a few x-heights apart
    window = 2 * reach + 1  # each column's neighbourhood, padded with values that never win
    top = sliding_window_view(np.pad(first, reach, constant_values=h), window).min(axis=1)
    bottom = sliding_window_view(np.pad(last, reach, constant_values=-1), window).max(axis=1)
    empty = top > bottom  # no ink anywhere near: the band of the line's middle
    top[empty], bottom[empty] = h // 4, 3 * h // 4
    grow = rng.uniform(1, 0.06 * h)
    rows = np.arange(h)[:, None]
    return (rows < top[None] - grow) | (rows > bottom[None] + grow)


def _baseline(ink: np.ndarray) -> int:
    """The lowest row where the line's ink is still dense (the foot of its small letters)."""
    profile = ink.sum(axis=1)
    dense = np.nonzero(profile > 0.4 * profile.max())[0]
    return int(dense.max()) if len(dense) else ink.shape[0] * 3 // 4


def _crop_effects(
    ink: np.ndarray, draw: Callable[[str], np.ndarray], texts: Sequence[str], fx: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A line's ink as a page crop holds it: (ink, faint marks or None, outside-the-polygon or None).
    ``draw(text)`` writes another line in the same hand; ``texts``: three other lines of text."""
    h, w = ink.shape
    outside = _band(ink, fx) if fx.random() < POLYGON else None
    ink = ink.copy()
    if fx.random() < NEIGHBOURS:
        for text, above in zip(texts[:2], (True, False)):
            if fx.random() < 0.3:  # the first or last line of a page, or a line between wide gaps
                continue
            other = _fit_width(_ink_rows(draw(text)), w, fx)
            k = min(other.shape[0], max(1, int(h * fx.uniform(0.08, 0.35))))
            if above:
                np.maximum(ink[:k], other[-k:], out=ink[:k])
            else:
                np.maximum(ink[-k:], other[:k], out=ink[-k:])
    faint = np.zeros_like(ink)
    if fx.random() < SHOW_THROUGH:
        back = Image.fromarray((_fit_width(draw(texts[2])[:, ::-1], w, fx) * 255).astype(np.uint8))
        back = np.asarray(back.filter(ImageFilter.GaussianBlur(fx.uniform(0.5, 2.0))), np.float32) / 255
        faint = np.roll(back, int(fx.integers(-h // 4, h // 4 + 1)), axis=0) * fx.uniform(0.1, 0.35)
    if fx.random() < RULED:
        rule = _baseline(ink) + int(fx.integers(0, 3))
        strength, thick = fx.uniform(0.15, 0.45), int(fx.integers(1, 3))
        for row in (rule, rule - int(h * fx.uniform(0.85, 1.2))):
            if 0 <= row < h:
                np.maximum(faint[row : row + thick], strength, out=faint[row : row + thick])
    if fx.random() < PENCIL:
        grain = np.clip(fx.normal(1.0, 0.35, ink.shape), 0, 1).astype(np.float32)
        ink = ink * grain * fx.uniform(0.45, 0.8)
    return ink, (faint if faint.any() else None), outside


def render_line(
    text: str,
    font: Font,
    weight: int | None,
    rng: np.random.Generator,
    height: int,
    effects: tuple[Sequence[str], np.random.Generator] | None = None,
) -> tuple[np.ndarray, int]:
    """One line image (uint8, dark ink on light paper, ``height`` rows) and its binarisation threshold.

    ``effects``: three other lines of text and a generator of their own, to draw the line as a crop of
    a written page (see :func:`_crop_effects`); without, the same ``rng`` gives the same image as before
    they existed."""
    ink = _ink_line(text, font, weight, rng, height)
    if effects is None:
        return _paper(rng, ink.shape, ink)
    texts, fx = effects
    ink, faint, outside = _crop_effects(ink, lambda t: _ink_line(t, font, weight, fx, height), texts, fx)
    return _paper(rng, ink.shape, ink, faint, outside)


@dataclass(frozen=True)
class _Job:
    out: str
    seed: int
    height: int
    crop_effects: bool = False


_fonts: list[Font] = []
_corpus: list[str] = []


def _init_worker(fonts: list[Font], corpus: list[str]) -> None:
    global _fonts, _corpus
    _fonts, _corpus = fonts, corpus


def _line_id(i: int) -> tuple[str, str]:
    form = i // LINES_PER_FORM
    prefix = f"s{form // 100:02d}"
    form_id = f"{prefix}-{form:05d}"
    return f"{form_id}-{i % LINES_PER_FORM:02d}", f"{prefix}/{form_id}"


class _Row(NamedTuple):
    id: str
    text: str
    threshold: int
    width: int
    height: int
    font: str
    weight: int | None
    resamples: int


def _make_line(job: _Job, i: int) -> _Row:
    """Render and save line ``i``."""
    rng = np.random.default_rng([job.seed, i])
    resamples = 0
    for _ in range(100):
        font = _fonts[rng.integers(len(_fonts))]
        text = _pick_text(_corpus, rng)
        if font.covers(text):
            break
        resamples += 1  # a font without a glyph for the text must never give a wrong label
    else:
        raise HandwriteError("no font covers the characters of the text; give fonts that do")
    weight = int(rng.uniform(*font.weights)) if font.weights else None
    effects = None
    if job.crop_effects:
        # A generator of their own: the lines' texts, fonts and shapes stay those of the same seed without effects.
        fx = np.random.default_rng([job.seed, i, 1])
        effects = [_other_text(font, text, fx) for _ in range(3)], fx
    image, threshold = render_line(text, font, weight, rng, job.height, effects)
    line_id, folder = _line_id(i)
    path = Path(job.out) / "lines" / folder / f"{line_id}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, optimize=False)
    return _Row(line_id, text, threshold, image.shape[1], image.shape[0], font.path, weight, resamples)


def _other_text(font: Font, fallback: str, rng: np.random.Generator) -> str:
    """Text of a neighbouring line that ``font`` can write (``fallback``, the line's own, if none is found)."""
    for _ in range(20):
        text = _pick_text(_corpus, rng)
        if font.covers(text):
            return text
    return fallback


def _make_chunk(job: _Job, start: int, stop: int) -> list[_Row]:
    return [_make_line(job, i) for i in range(start, stop)]


def split_of(form: int, forms: int) -> str:
    """Whole forms go to a split (as in IAM, no page is split); the last 5 % each to validation and test."""
    held = max(1, forms // 20) if forms >= 3 else 0
    if form >= forms - held:
        return "test"
    if form >= forms - 2 * held:
        return "validation"
    return "train"


def synthesize(
    out: str | Path,
    lines: int,
    fonts: Sequence[Font],
    corpus: Sequence[str],
    seed: int = 0,
    height: int = 64,
    workers: int = 1,
    advance: Callable[[int], None] = lambda n: None,
    crop_effects: bool = False,
) -> SynthReport:
    """Draw ``lines`` lines into ``out`` as an IAM-layout dataset. ``crop_effects``: draw each as a crop of
    a written page (strokes of neighbouring lines, a polygon's flat fill, show-through, rulings, pencil)."""
    if lines < 1:
        raise HandwriteError(f"lines must be at least 1 (got {lines})")
    if height < 16:
        raise HandwriteError(f"height must be at least 16 pixels (got {height})")
    if not fonts:
        raise HandwriteError("no fonts to draw with (install handwrite with its font packages, or give font files)")
    out = Path(out)
    if (out / "ascii" / "lines.txt").exists():
        raise HandwriteError(f"{out}: already holds a dataset; choose another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".handwrite-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise HandwriteError(f"{out}: cannot write the dataset there ({e.strerror or e})") from None

    job = _Job(str(out), seed, height, crop_effects)
    chunk = 16
    starts = range(0, lines, chunk)
    rows: list[_Row] = []
    if workers <= 1:
        _init_worker(list(fonts), list(corpus))
        for s in starts:
            rows += _make_chunk(job, s, min(s + chunk, lines))
            advance(min(chunk, lines - s))
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(list(fonts), list(corpus))) as pool:
            futures = [pool.submit(_make_chunk, job, s, min(s + chunk, lines)) for s in starts]
            for s, f in zip(starts, futures):  # in order, so lines.txt does not depend on scheduling
                rows += f.result()
                advance(min(chunk, lines - s))

    forms = (lines + LINES_PER_FORM - 1) // LINES_PER_FORM
    report = SynthReport(lines=lines, resampled=sum(r.resamples for r in rows), fonts=len(fonts))
    splits: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    table = [
        "# handwrite synth: synthetic lines in the IAM lines.txt format",
        f"# seed {seed}, {lines} lines, height {height}, {len(fonts)} fonts"
        + (", crop effects" if crop_effects else ""),
        "# id ok graylevel ncomp x y w h transcription   (ncomp, x and y are not computed: 0)",
    ]
    for i, r in enumerate(rows):
        splits[split_of(i // LINES_PER_FORM, forms)].append(r.id)
        table.append(f"{r.id} ok {r.threshold} 0 0 0 {r.width} {r.height} {r.text.replace(' ', '|')}")
    # Which font drew each line: provenance, and what lets a test check glyph coverage line by line.
    _write_text(out / "fonts.tsv", ["id\tfont\tweight"] + [f"{r.id}\t{r.font}\t{r.weight or ''}" for r in rows])
    for name, ids in splits.items():
        _write_text(out / "splits" / f"{name}.txt", ids)
        report.splits[name] = len(ids)
    # lines.txt last: its presence marks a finished dataset.
    _write_text(out / "ascii" / "lines.txt", table)
    return report


def _write_text(path: Path, rows: list[str]) -> None:
    data = "".join(r + "\n" for r in rows).encode("utf-8")
    atomic_write(path, lambda f: f.write(data))


def contact_sheet(records: Sequence[LineRecord], out: str | Path, width: int = 1000) -> None:
    """A PNG of line images, each with its transcription underneath, to judge the look at a glance."""
    try:  # a system sans-serif with accents when there is one; Pillow's own font lacks them
        caption = ImageFont.truetype("DejaVuSans.ttf", 14)
    except OSError:
        caption = ImageFont.load_default(size=14)
    blocks = []
    for r in records:
        try:
            img = Image.open(r.image).convert("L")
        except OSError as e:
            raise HandwriteError(f"{r.image}: cannot read image ({e})") from None
        if img.width > width:
            img = img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)
        block = Image.new("L", (width, img.height + 24), 255)
        block.paste(img, (0, 0))
        ImageDraw.Draw(block).text((2, img.height + 4), r.text, font=caption, fill=0)
        blocks.append(block)
    if not blocks:
        raise HandwriteError("no lines to put on the contact sheet")
    sheet = Image.new("L", (width, sum(b.height + 6 for b in blocks)), 200)
    y = 0
    for b in blocks:
        sheet.paste(b, (0, y))
        y += b.height + 6
    atomic_write(Path(out), lambda f: sheet.save(f, format="PNG"))
