"""PAGE XML and ALTO: the text lines of a page file, and line images cut from its scan.

One reader serves both formats and every version in real use: PAGE 2013-07-15
(Transkribus) and 2019-07-15 (eScriptorium, OCR-D, kraken), ALTO v2, v3 and v4
(v4.2+ polyline ``BASELINE``), with or without namespace prefixes. Elements are
matched by local name, so a namespace this module has never seen still reads
as long as the element names are PAGE's or ALTO's.

Line geometry, in order of preference:

1. the line's polygon (PAGE ``Coords``, ALTO ``Shape/Polygon``);
2. else a band around its baseline: 0.75 x the page's line spacing above it and
   0.35 x below (the rule the project's shared line crops were cut with, so that
   crops from XML and those crops agree); the spacing is the median vertical gap
   between consecutive baselines of the page, or 1/30 of the page height when
   the page has fewer than two;
3. else its box (ALTO ``HPOS/VPOS/WIDTH/HEIGHT``).

``geometry="baseline"`` puts the band first wherever a line has a baseline: Transkribus' exports
draw polygons that end a few pixels under the baseline and cut every descender (on the 44 lines of
its PAGE 2013 page in the test fixtures the shipped model read 78.2 % CER from the polygons and
65.6 % from the bands).

A crop is the polygon's bounding box plus 4 pixels; pixels further than 3 pixels
outside the polygon are painted with the line's paper tone (75th percentile of
the pixels inside it), so that the ascenders and descenders of neighbouring lines
vanish without leaving a white or black frame. A line whose baseline is steeper than
20 degrees (marginal notes written upwards, diagonal additions) is turned so that its
writing runs left to right. No dewarping: CTC reads a gently curved line well, and the
shared crops it is compared with are not dewarped either.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lxml import etree
from PIL import Image, ImageDraw, UnidentifiedImageError

from .config import DEFAULT_GEOMETRY, GEOMETRIES
from .errors import HandwriteError
from .imageio import IMAGE_SUFFIXES

PAD = 4  # pixels of context kept around a polygon's bounding box
MASK_DILATION = 3  # pixels outside the polygon still shown (strokes that cross its edge)
ABOVE, BELOW = 0.75, 0.35  # band around a baseline, in line spacings
STEEP = 20.0  # degrees: baselines steeper than this are turned level

# External entities and network access are off: a page file is data, not a program.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=False, huge_tree=False)

Point = tuple[float, float]


@dataclass(frozen=True)
class LineCrop:
    """Where a text line lies: the page image and the polygon to cut out of it.

    Hashable and small, so a dataset of thousands of lines costs no image memory
    until a line is read; ``str()`` names the XML file and line id, as errors do.
    """

    xml: Path
    line_id: str
    page: Path
    polygon: tuple[Point, ...]
    angle: float = 0.0  # degrees the crop is turned counter-clockwise so that its writing runs left to right

    def __str__(self) -> str:
        return f"{self.xml}#{self.line_id}"


@dataclass
class TextLine:
    id: str
    text: str  # normalised later by the dataset reader; "" when the line has no transcription
    polygon: tuple[Point, ...] | None
    baseline: tuple[Point, ...] | None
    box: tuple[float, float, float, float] | None  # x0, y0, x1, y1
    element: etree._Element = field(repr=False, compare=False)


@dataclass
class PageFile:
    xml: Path
    flavour: str  # "page" or "alto"
    image_name: str
    width: int | None
    height: int | None
    lines: list[TextLine]
    tree: etree._ElementTree = field(repr=False)

    @property
    def namespace(self) -> str | None:
        return etree.QName(self.tree.getroot()).namespace


def local(el) -> str:
    return etree.QName(el).localname


def _children(el, name: str):
    return [c for c in el if isinstance(c.tag, str) and local(c) == name]


def _descendants(el, name: str):
    return [c for c in el.iter() if isinstance(c.tag, str) and local(c) == name]


def xml_flavour(path: Path) -> str | None:
    """``page`` or ``alto`` from the root element of an XML file, else None (METS, other XML)."""
    try:
        for _, el in etree.iterparse(str(path), events=("start",), resolve_entities=False, no_network=True):
            name = local(el).lower()
            return "page" if name == "pcgts" else "alto" if name == "alto" else None
    except (etree.XMLSyntaxError, OSError):
        return None
    return None


def _points(text: str | None, where: str) -> tuple[Point, ...]:
    """PAGE ``x,y x,y ...`` and ALTO ``x y x y ...`` (or ``x,y``) point lists."""
    if not text or not text.strip():
        return ()
    numbers = re.split(r"[\s,]+", text.strip())
    try:
        values = [float(v) for v in numbers]
    except ValueError:
        raise ValueError(f"{where}: not a list of coordinates: {text[:60]!r}") from None
    if len(values) % 2:
        raise ValueError(f"{where}: odd number of coordinates")
    if not all(np.isfinite(values)):
        raise ValueError(f"{where}: coordinates that are not finite numbers")
    return tuple(zip(values[0::2], values[1::2]))


def read_page_file(path: Path) -> PageFile:
    """Parse a PAGE or ALTO file: its image name, size and text lines in reading order."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise HandwriteError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        # From bytes, so that a wrong encoding is reported as the XML error it is (with its line).
        tree = etree.ElementTree(etree.fromstring(data, _PARSER))
    except etree.XMLSyntaxError as e:
        raise HandwriteError(f"{path}: not well-formed XML ({e})") from None
    root = tree.getroot()
    name = local(root).lower()
    if name == "pcgts":
        return _read_page(path, tree)
    if name == "alto":
        return _read_alto(path, tree)
    raise HandwriteError(
        f"{path}: neither PAGE XML nor ALTO (root element <{local(root)}>, namespace {etree.QName(root).namespace})"
    )


def _int_attr(el, name: str) -> int | None:
    try:
        return int(float(el.get(name))) if el is not None and el.get(name) else None
    except ValueError:
        return None


def _page_text(line) -> str:
    """The line's TextEquiv with the lowest @index (else the first); else its words' texts."""
    equivs = _children(line, "TextEquiv")
    if equivs:

        def index(e):
            try:
                return int(e.get("index"))
            except (TypeError, ValueError):
                return 1 << 30  # unindexed after indexed, in document order (sort is stable)

        unicode = _children(sorted(equivs, key=index)[0], "Unicode")
        return (unicode[0].text or "") if unicode else ""
    words = [_page_text(w) for w in _children(line, "Word")]
    return " ".join(w for w in words if w)


_CUSTOM_INDEX = re.compile(r"readingOrder\s*\{[^}]*index\s*:\s*(\d+)")


def _custom_index(line) -> int:
    """Transkribus orders lines inside a region with ``custom="readingOrder {index:N;}"``;
    lines without it keep their document order (the sort is stable)."""
    m = _CUSTOM_INDEX.search(line.get("custom") or "")
    return int(m.group(1)) if m else 0


def _read_page(path: Path, tree) -> PageFile:
    root = tree.getroot()
    pages = _descendants(root, "Page")
    if not pages:
        raise HandwriteError(f"{path}: PAGE XML without a <Page> element")
    page = pages[0]
    regions = {r.get("id"): r for r in _descendants(page, "TextRegion")}
    # Reading order: the regions the ReadingOrder lists, in its order; then the rest in document order.
    ordered: list[str] = []
    for group in _descendants(page, "ReadingOrder")[:1]:

        def walk(el):
            refs = [c for c in el if isinstance(c.tag, str)]
            if local(el) == "OrderedGroup" or local(el) == "OrderedGroupIndexed":
                refs.sort(key=lambda c: _int_attr(c, "index") if c.get("index") is not None else 0)
            for c in refs:
                if c.get("regionRef") is not None:
                    ordered.append(c.get("regionRef"))
                walk(c)

        walk(group)
    order = [r for r in dict.fromkeys(ordered) if r in regions]
    order += [r for r in regions if r not in set(order)]
    lines = []
    seen = set()
    for rid in order:
        for line in sorted(_descendants(regions[rid], "TextLine"), key=_custom_index):
            if id(line) in seen:
                continue
            seen.add(id(line))
            lid = line.get("id") or f"line{len(lines) + 1}"
            coords = _children(line, "Coords")
            base = _children(line, "Baseline")
            try:
                polygon = _points(coords[0].get("points"), f"line {lid} Coords") if coords else ()
                baseline = _points(base[0].get("points"), f"line {lid} Baseline") if base else ()
            except ValueError as e:
                raise HandwriteError(f"{path}: {e}") from None
            lines.append(TextLine(lid, _page_text(line), polygon or None, baseline or None, None, line))
    return PageFile(
        path,
        "page",
        page.get("imageFilename") or "",
        _int_attr(page, "imageWidth"),
        _int_attr(page, "imageHeight"),
        lines,
        tree,
    )


def _alto_text(line) -> str:
    parts: list[str] = []
    for c in line:
        if not isinstance(c.tag, str):
            continue
        kind = local(c)
        if kind == "String":
            if parts and parts[-1] != " ":
                parts.append(" ")  # adjacent Strings without SP are still separate words
            parts.append(c.get("CONTENT") or "")
        elif kind == "SP":
            parts.append(" ")
        elif kind == "HYP":
            parts.append(c.get("CONTENT") or "-")
    return "".join(parts)


def _read_alto(path: Path, tree) -> PageFile:
    root = tree.getroot()
    unit = _descendants(root, "MeasurementUnit")
    if unit and (unit[0].text or "pixel").strip() != "pixel":
        raise HandwriteError(f"{path}: ALTO MeasurementUnit {unit[0].text.strip()!r} is not supported (pixel only)")
    names = _descendants(root, "fileName")
    pages = _descendants(root, "Page")
    if not pages:
        raise HandwriteError(f"{path}: ALTO without a <Page> element")
    page = pages[0]
    lines = []
    for line in _descendants(page, "TextLine"):
        lid = line.get("ID") or f"line{len(lines) + 1}"
        shape = [p for s in _children(line, "Shape") for p in _children(s, "Polygon")]
        try:
            polygon = _points(shape[0].get("POINTS"), f"line {lid} Polygon") if shape else ()
            base_attr = line.get("BASELINE")
            # ALTO < 4.2: BASELINE is one number (a y position); 4.2+: a polyline.
            baseline = _points(base_attr, f"line {lid} BASELINE") if base_attr and len(base_attr.split()) > 1 else ()
        except ValueError as e:
            raise HandwriteError(f"{path}: {e}") from None
        x, y, w, h = (_int_attr(line, a) for a in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
        box = (x, y, x + w, y + h) if None not in (x, y, w, h) and w > 0 and h > 0 else None
        if not baseline and base_attr and box is not None:
            try:
                by = float(base_attr)
                baseline = ((box[0], by), (box[2], by))
            except ValueError:
                pass
        lines.append(TextLine(lid, _alto_text(line), polygon or None, baseline or None, box, line))
    return PageFile(
        path,
        "alto",
        (names[0].text or "").strip() if names else "",
        _int_attr(page, "WIDTH"),
        _int_attr(page, "HEIGHT"),
        lines,
        tree,
    )


def find_image(page: PageFile) -> Path:
    """The page image: the named file beside the XML, else a file of the same stem (any image
    extension) beside the XML or one folder up (exports put XML in a subfolder), else the XML's stem."""
    named = Path(page.image_name.replace("\\", "/")) if page.image_name else None
    folders = [page.xml.parent, page.xml.parent.parent]
    if named is not None:
        for folder in folders:
            if (folder / named.name).is_file():
                return folder / named.name
    stems = [s for s in dict.fromkeys([named.stem if named else None, page.xml.stem]) if s]
    for folder in folders:
        for stem in stems:
            for suffix in IMAGE_SUFFIXES:
                for cand in (folder / (stem + suffix), folder / (stem + suffix.upper())):
                    if cand.is_file():
                        return cand
    raise HandwriteError(f"{page.xml}: page image {page.image_name or page.xml.stem + '.*'!r} not found beside the XML")


def line_spacing(page: PageFile) -> float:
    ys = sorted(float(np.mean([p[1] for p in line.baseline])) for line in page.lines if line.baseline)
    gaps = [b - a for a, b in zip(ys, ys[1:]) if b - a > 1]
    if gaps:
        return float(np.median(gaps))
    return (page.height or 3000) / 30


def line_polygon(line: TextLine, spacing: float, geometry: str = DEFAULT_GEOMETRY) -> tuple[Point, ...] | None:
    """The polygon to cut the line with (see the module docstring for the rule), or None."""
    band = None
    if line.baseline and len(line.baseline) >= 2:
        upper = [(x, y - ABOVE * spacing) for x, y in line.baseline]
        lower = [(x, y + BELOW * spacing) for x, y in reversed(line.baseline)]
        band = tuple(upper + lower)
    if band and geometry == "baseline":
        return band
    if line.polygon and len(line.polygon) >= 3 and _area(line.polygon) > 1:
        return line.polygon
    if band:
        return band
    if line.box is not None:
        x0, y0, x1, y1 = line.box
        return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    return None


def _level_angle(baseline) -> float:
    """Degrees to turn a line counter-clockwise so that its baseline runs left to right; 0 unless steep."""
    if not baseline or len(baseline) < 2:
        return 0.0
    (x0, y0), (x1, y1) = baseline[0], baseline[-1]
    angle = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
    return round(angle, 2) if abs(angle) > STEEP else 0.0


def _area(poly) -> float:
    xs, ys = np.array([p[0] for p in poly]), np.array([p[1] for p in poly])
    return abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))) / 2


@dataclass
class PageLines:
    """The usable lines of one page file, and what was wrong with the others."""

    page: PageFile
    image: Path | None
    crops: list[tuple[TextLine, LineCrop]]
    problems: list[str]


def page_lines(path: Path, geometry: str = DEFAULT_GEOMETRY) -> PageLines:
    """Every line of a page file with its crop, checked against the page size; a line that
    cannot be cut (no geometry, outside the image) is a problem naming file and line, not an error.
    ``geometry``: which line shape comes first, the polygon or the baseline band (one of GEOMETRIES)."""
    if geometry not in GEOMETRIES:
        raise HandwriteError(f"unknown line geometry {geometry!r}; choose one of {', '.join(GEOMETRIES)}")
    page = read_page_file(path)
    problems: list[str] = []
    try:
        image = find_image(page)
    except HandwriteError as e:
        return PageLines(page, None, [], [str(e)])
    width, height = page.width, page.height
    if not width or not height:
        try:
            with Image.open(image) as im:
                width, height = im.size
        except (OSError, UnidentifiedImageError, ValueError) as e:
            return PageLines(page, image, [], [f"{image}: not a readable image ({e})"])
    spacing = line_spacing(page)
    crops = []
    for line in page.lines:
        poly = line_polygon(line, spacing, geometry)
        if poly is None:
            problems.append(f"{path}: line {line.id}: no coordinates (no polygon, baseline or box)")
            continue
        clipped = tuple((min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)) for x, y in poly)
        xs, ys = [p[0] for p in clipped], [p[1] for p in clipped]
        if max(xs) - min(xs) < 2 or max(ys) - min(ys) < 2:
            problems.append(f"{path}: line {line.id}: polygon lies outside the {width}x{height} page image")
            continue
        crops.append((line, LineCrop(path, line.id, image, clipped, _level_angle(line.baseline))))
    return PageLines(page, image, crops, problems)


@functools.lru_cache(maxsize=2)
def _page_image(path: Path) -> Image.Image:
    """The page in greyscale. Lines are read in page order, so two cached pages mean
    each scan is decoded once however many lines it holds."""
    from .imageio import open_image

    return open_image(path)


def crop_line(crop: LineCrop) -> Image.Image:
    """Cut a line out of its page: bounding box + PAD, outside the (dilated) polygon painted with paper."""
    page = _page_image(crop.page)
    xs, ys = [p[0] for p in crop.polygon], [p[1] for p in crop.polygon]
    x0, y0 = max(0, int(min(xs)) - PAD), max(0, int(min(ys)) - PAD)
    x1, y1 = min(page.width, int(np.ceil(max(xs))) + PAD + 1), min(page.height, int(np.ceil(max(ys))) + PAD + 1)
    box = page.crop((x0, y0, x1, y1))
    mask = Image.new("L", box.size, 0)
    outline = [(x - x0, y - y0) for x, y in crop.polygon]
    draw = ImageDraw.Draw(mask)
    draw.polygon(outline, fill=255)
    pixels = np.asarray(box)
    inside = np.asarray(mask) > 0
    if not inside.any():
        raise HandwriteError(f"{crop}: empty line polygon")
    paper = np.percentile(pixels[inside], 75)
    # Dilating by tracing the outline with a round pen: 0.26 s for 200 Poilus lines, where a
    # MaxFilter's square dilation took 2.9 s, most of the cropping time.
    draw.line(outline + outline[:1], fill=255, width=2 * MASK_DILATION + 1, joint="curve")
    keep = np.asarray(mask) > 0
    line = Image.fromarray(np.where(keep, pixels, np.uint8(paper)).astype(np.uint8), "L")
    if crop.angle:
        line = line.rotate(crop.angle, Image.Resampling.BILINEAR, expand=True, fillcolor=int(paper))
    return line


# --- Writing recognition results -------------------------------------------------------------

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
CREATOR = "handwrite"


def to_page(crop: LineCrop, size: tuple[int, int]):
    """The map from pixel (x, y) of a line image of ``size`` cut by :func:`crop_line` for ``crop``
    to page pixels: undo the turn (about the centre, as Pillow's ``rotate(expand=True)`` makes it),
    then shift by the crop's corner."""
    xs, ys = [p[0] for p in crop.polygon], [p[1] for p in crop.polygon]
    x0, y0 = max(0, int(min(xs)) - PAD), max(0, int(min(ys)) - PAD)
    if not crop.angle:
        return lambda x, y: (round(x0 + x), round(y0 + y))
    # Size of the crop before it was turned: the box crop_line cut (clipped by the page only at
    # its far edges, which the polygon never reaches once clipped to the page).
    w = int(np.ceil(max(xs))) + PAD + 1 - x0
    h = int(np.ceil(max(ys))) + PAD + 1 - y0
    t = np.radians(crop.angle)
    cos, sin = np.cos(t), np.sin(t)
    cx, cy, cu, cv = w / 2, h / 2, size[0] / 2, size[1] / 2

    def transform(u, v):
        du, dv = u - cu, v - cv
        return round(x0 + cx + du * cos - dv * sin), round(y0 + cy + du * sin + dv * cos)

    return transform


def _sub(parent, ns: str | None, name: str, **attrs) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{name}" if ns else name)
    for k, v in attrs.items():
        el.set(k, v)
    return el


def _make(ns: str | None, name: str, **attrs) -> etree._Element:
    el = etree.Element(f"{{{ns}}}{name}" if ns else name)
    for k, v in attrs.items():
        el.set(k, v)
    return el


def _conf(value: float | None) -> str:
    return f"{min(1.0, max(0.0, value or 0.0)):.4f}"


def _rect_points(x0, y0, x1, y1) -> str:
    return f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"


def _insert_after(parent, child, after: tuple[str, ...]) -> None:
    """Insert ``child`` after the last of ``parent``'s children named in ``after`` (schema order)."""
    position = 0
    for k, c in enumerate(parent):
        if isinstance(c.tag, str) and local(c) in after:
            position = k + 1
    parent.insert(position, child)


def _words(result, to_page) -> list[tuple[str, list[Point], float, list]]:
    """Per word: text, page corners, confidence (mean of its glyphs'), glyphs with page corners.
    A glyph spans the line image's full height between its alignment's left and right edges."""
    height = result.size[1]

    def corners(x0, x1):
        return [to_page(x0, 0), to_page(x1, 0), to_page(x1, height), to_page(x0, height)]

    out = []
    for word in result.words():
        glyphs = [(g.char, corners(g.x0, max(g.x1, g.x0 + 1)), g.confidence) for g in word]
        box = corners(word[0].x0, max(word[-1].x1, word[-1].x0 + 1))
        out.append(("".join(g.char for g in word), box, float(np.mean([g.confidence for g in word])), glyphs))
    return out


def _points_attr(corners) -> str:
    return " ".join(f"{x},{y}" for x, y in corners)


def _alto_box(corners) -> dict:
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    return {
        "HPOS": str(min(xs)),
        "VPOS": str(min(ys)),
        "WIDTH": str(max(xs) - min(xs)),
        "HEIGHT": str(max(ys) - min(ys)),
    }


def _write_page_line(el, ns, result, to_page) -> None:
    for old in _children(el, "Word") + _children(el, "TextEquiv"):
        el.remove(old)
    lid = el.get("id")
    new = []
    for k, (text, box, conf, glyphs) in enumerate(_words(result, to_page)):
        word = _make(ns, "Word", id=f"{lid}_w{k}")
        _sub(word, ns, "Coords", points=_points_attr(box))
        for j, (char, gbox, gconf) in enumerate(glyphs):
            glyph = _sub(word, ns, "Glyph", id=f"{lid}_w{k}_g{j}")
            _sub(glyph, ns, "Coords", points=_points_attr(gbox))
            _sub(_sub(glyph, ns, "TextEquiv", conf=_conf(gconf)), ns, "Unicode").text = char
        _sub(_sub(word, ns, "TextEquiv", conf=_conf(conf)), ns, "Unicode").text = text
        new.append(word)
    equiv = _make(ns, "TextEquiv", conf=_conf(result.confidence))
    _sub(equiv, ns, "Unicode").text = result.text or ""
    new.append(equiv)
    for child in reversed(new):
        _insert_after(el, child, ("AlternativeImage", "Coords", "Baseline"))


def _write_alto_line(el, ns, result, to_page, glyphs_allowed: bool) -> None:
    for old in [c for c in el if isinstance(c.tag, str) and local(c) in ("String", "SP", "HYP")]:
        el.remove(old)
    lid = el.get("ID")
    words = _words(result, to_page)
    if not words:  # ALTO wants at least one String per line
        w, h = result.size
        words = [("", [to_page(0, 0), to_page(w, 0), to_page(w, h), to_page(0, h)], result.confidence or 0.0, [])]
    for k, (text, box, conf, glyphs) in enumerate(words):
        if k:
            _sub(el, ns, "SP")
        string = _sub(el, ns, "String", ID=f"{lid}_w{k}", CONTENT=text, WC=_conf(conf), **_alto_box(box))
        if glyphs_allowed:
            for j, (char, gbox, gconf) in enumerate(glyphs):
                _sub(string, ns, "Glyph", ID=f"{lid}_w{k}_g{j}", CONTENT=char, GC=_conf(gconf), **_alto_box(gbox))


def write_results(page: PageFile, placed: dict) -> bytes:
    """The page file with each recognised line's text, confidence, words and glyphs written in
    (PAGE: ``Word``/``Glyph``/``TextEquiv@conf``; ALTO: ``String@WC``/``Glyph@GC``); IDs, geometry
    and everything else kept. ``placed`` maps a line id to its Transcription (with glyphs) and the
    map from its line image's pixels to the page's (see :func:`to_page`)."""
    ns = page.namespace
    for line in page.lines:
        result, transform = placed.get(line.id, (None, None))
        if result is None or result.text is None:
            continue
        if page.flavour == "page":
            _write_page_line(line.element, ns, result, transform)
        else:
            _write_alto_line(line.element, ns, result, transform, glyphs_allowed=not (ns or "").endswith("v2#"))
    if page.flavour == "page":
        _update_page_regions(page)
        for changed in _descendants(page.tree.getroot(), "LastChange")[:1]:
            changed.text = _now()
    return etree.tostring(page.tree, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _update_page_regions(page: PageFile) -> None:
    """A region's own TextEquiv, where it has one, is kept consistent with its lines' new texts.
    A region without Coords (eScriptorium exports lines outside any region in a "dummy block"
    without them) gets its lines' bounding box, which the PAGE schema requires."""
    for region in _descendants(page.tree.getroot(), "TextRegion"):
        ns = etree.QName(region).namespace
        if not _children(region, "Coords"):
            points = [
                p
                for line in _children(region, "TextLine")
                for c in _children(line, "Coords")[:1]
                for p in _points(c.get("points"), "Coords")
            ]
            if points:
                xs, ys = [int(p[0]) for p in points], [int(p[1]) for p in points]
                _insert_after(
                    region,
                    _make(ns, "Coords", points=_rect_points(min(xs), min(ys), max(xs), max(ys))),
                    ("AlternativeImage",),
                )
        for equiv in _children(region, "TextEquiv"):
            texts = [
                u.text or ""
                for line in _children(region, "TextLine")
                for e in _children(line, "TextEquiv")[:1]
                for u in _children(e, "Unicode")[:1]
            ]
            for old in list(equiv):
                equiv.remove(old)
            equiv.attrib.pop("conf", None)
            _sub(equiv, etree.QName(region).namespace, "Unicode").text = "\n".join(texts)


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def new_page_file(image: Path, size: tuple[int, int], flavour: str) -> PageFile:
    """A one-line page file (PAGE 2019 or ALTO v4) for a plain line image, ready for :func:`write_results`."""
    w, h = size
    if flavour == "page":
        root = _make(PAGE_NS, "PcGts")
        meta = _sub(root, PAGE_NS, "Metadata")
        _sub(meta, PAGE_NS, "Creator").text = CREATOR
        _sub(meta, PAGE_NS, "Created").text = _sub(meta, PAGE_NS, "LastChange").text = _now()
        pg = _sub(root, PAGE_NS, "Page", imageFilename=image.name, imageWidth=str(w), imageHeight=str(h))
        region = _sub(pg, PAGE_NS, "TextRegion", id="r0")
        _sub(region, PAGE_NS, "Coords", points=_rect_points(0, 0, w - 1, h - 1))
        line = _sub(region, PAGE_NS, "TextLine", id="l0")
        _sub(line, PAGE_NS, "Coords", points=_rect_points(0, 0, w - 1, h - 1))
    else:
        root = _make(ALTO_NS, "alto")
        desc = _sub(root, ALTO_NS, "Description")
        _sub(desc, ALTO_NS, "MeasurementUnit").text = "pixel"
        _sub(_sub(desc, ALTO_NS, "sourceImageInformation"), ALTO_NS, "fileName").text = image.name
        layout = _sub(root, ALTO_NS, "Layout")
        pg = _sub(layout, ALTO_NS, "Page", ID="p0", WIDTH=str(w), HEIGHT=str(h), PHYSICAL_IMG_NR="1")
        space = _sub(pg, ALTO_NS, "PrintSpace", HPOS="0", VPOS="0", WIDTH=str(w), HEIGHT=str(h))
        block = _sub(space, ALTO_NS, "TextBlock", ID="r0", HPOS="0", VPOS="0", WIDTH=str(w), HEIGHT=str(h))
        line = _sub(block, ALTO_NS, "TextLine", ID="l0", HPOS="0", VPOS="0", WIDTH=str(w), HEIGHT=str(h))
    tree = etree.ElementTree(root)
    box = (0.0, 0.0, float(w - 1), float(h - 1))
    text_line = TextLine("l0", "", None, None, box, line)
    return PageFile(image.with_suffix(".xml"), flavour, image.name, w, h, [text_line], tree)
