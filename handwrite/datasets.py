"""Readers for the line-dataset layouts handwrite understands.

Every reader returns a list of :class:`LineRecord` (image path, transcription,
id), so the rest of the program never needs to know which layout a set came in.

Layouts:

* ``iam``   -- the IAM line database: ``ascii/lines.txt`` plus
  ``lines/<a01>/<a01-000u>/<a01-000u-00>.png``; optional split lists.
* ``pairs`` -- a folder tree of images, each with a ``.gt.txt`` sidecar
  (kraken / OCRopus convention).
* ``tsv``   -- a manifest file of ``relative/image/path<TAB>transcription`` rows.
* ``page`` / ``alto`` -- page-level PAGE XML or ALTO files beside their page images
  (eScriptorium, Transkribus, OCR-D exports); each text line becomes a record whose
  image is a :class:`~handwrite.pagexml.LineCrop` of the page. Both names read
  both formats: the format is told per file from its root element.
"""

from __future__ import annotations

import csv
import gzip
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HandwriteError
from .imageio import IMAGE_SUFFIXES
from .pagexml import DEFAULT_GEOMETRY, LineCrop, page_lines, xml_flavour

FORMATS = ("iam", "pairs", "tsv", "page", "alto")


@dataclass(frozen=True)
class LineRecord:
    image: Path | LineCrop
    text: str
    id: str

    @property
    def document(self) -> str:
        """The page (or folder) the line belongs to: see :func:`group_of`."""
        return group_of(self.id)


@dataclass
class ReadReport:
    """What a reader left out: ``problems`` name a file and line that could not be used
    (no coordinates, image missing); ``empty`` counts lines without a transcription."""

    problems: list[str] = field(default_factory=list)
    empty: int = 0


_IAM_ID = re.compile(r"^([^-/\s]+-[^-/\s]+)-[^-/\s]+$")


def group_of(line_id: str) -> str:
    """The page (or folder) a line belongs to, from its id: the page file of a PAGE/ALTO line
    (``page:line``), the folder of a pairs or TSV line (``folder/name``), the form of an IAM line
    (``a01-000u-00`` -> ``a01-000u``); "" when the id tells none."""
    if ":" in line_id:
        return line_id.rsplit(":", 1)[0]
    if "/" in line_id:
        return line_id.rsplit("/", 1)[0]
    m = _IAM_ID.match(line_id)
    return m.group(1) if m else ""


def normalize_text(text: str) -> str:
    """NFC plus collapsed whitespace, without byte-order marks (U+FEFF, which Windows editors
    put at the start of files): the one form transcriptions are compared in."""
    return " ".join(unicodedata.normalize("NFC", text.replace("\ufeff", "")).split())


def load_dataset(
    path: str | Path,
    fmt: str = "auto",
    split: str | None = None,
    include_err: bool = False,
    report: ReadReport | None = None,
    geometry: str = DEFAULT_GEOMETRY,
) -> list[LineRecord]:
    """Read a dataset in any supported layout; raise HandwriteError if it is empty.

    Lines a page-file reader had to leave out are listed in ``report`` when one is
    given, else issued as Python warnings. ``geometry`` (PAGE/ALTO): cut lines by their
    ``"polygon"`` or by the ``"baseline"`` band (see :mod:`handwrite.pagexml`)."""
    path = Path(path)
    if not path.exists():
        raise HandwriteError(f"{path}: no such file or folder")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "iam":
        records = read_iam(path, split=split, include_err=include_err)
    elif fmt == "pairs":
        records = read_pairs(path, split=split)
    elif fmt == "tsv":
        records = read_tsv(path, split=split)
    elif fmt in ("page", "alto"):
        own = report if report is not None else ReadReport()
        records = read_page_files(path, split=split, report=own, geometry=geometry)
        if report is None:
            for problem in own.problems:
                warnings.warn(problem, stacklevel=2)
    else:
        raise HandwriteError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not records:
        raise HandwriteError(f"{path}: the dataset holds no lines" + (f" in split {split!r}" if split else ""))
    return records


def read_texts(sources: list[Path], fmt: str = "auto", split: str | None = None) -> list[str]:
    """Lines of text from UTF-8 text files (``.gz`` too), or the transcriptions of datasets
    (folders and ``.tsv`` manifests, of which ``split`` selects lines)."""
    lines: list[str] = []
    for src in map(Path, sources):
        if src.is_dir() or src.suffix.lower() in (".tsv", ".xml"):
            lines += [r.text for r in load_dataset(src, fmt, split)]
            continue
        try:
            raw = src.read_bytes()
            lines += (gzip.decompress(raw) if src.suffix == ".gz" else raw).decode("utf-8-sig").splitlines()
        except FileNotFoundError:
            raise HandwriteError(f"{src}: no such file or folder") from None
        except (OSError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
            raise HandwriteError(f"{src}: cannot read as UTF-8 text ({e})") from None
    return lines


def detect_format(path: Path) -> str:
    if path.is_file() and path.suffix.lower() == ".xml":
        flavour = xml_flavour(path)
        if flavour is None:
            raise HandwriteError(f"{path}: neither PAGE XML nor ALTO")
        return flavour
    if path.is_file():
        if path.suffix.lower() in (".tsv", ".txt", ".csv") and path.name != "lines.txt":
            return "tsv"
        if path.name == "lines.txt":
            raise HandwriteError(f"{path}: give the IAM root folder (the one holding ascii/), not lines.txt")
        raise HandwriteError(f"{path}: not a dataset (expected a folder or a .tsv manifest)")
    if (path / "ascii" / "lines.txt").is_file():
        return "iam"
    if next(path.rglob("*.gt.txt"), None) is not None:
        return "pairs"
    for xml in sorted(path.rglob("*.xml")):
        flavour = xml_flavour(xml)
        if flavour is not None:
            return flavour
    raise HandwriteError(
        f"{path}: cannot tell the dataset format (no ascii/lines.txt, no *.gt.txt files, no PAGE or ALTO files); "
        "pass --format iam|pairs|tsv|page|alto"
    )


def _read_list(path: Path) -> list[str]:
    try:
        rows = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise HandwriteError(f"{path}: cannot read split list ({e})") from None
    return [r.strip() for r in rows if r.strip() and not r.startswith("#")]


def _entry_path(entry: str, where: str) -> Path:
    """The file path a split list's or manifest's entry gives; an entry that cannot name a file (no
    name, as "/" or ".", or a NUL byte) is an error naming ``where``. Found by fuzzing: such entries
    used to crash the readers instead of being reported."""
    path = Path(entry)
    if "\0" in entry or not path.name:
        raise HandwriteError(f"{where}: {entry!r} does not name a file")
    return path


def _listed_image(root: Path, entry: str, listing: Path) -> Path:
    """The image a pairs split list names: a file path under ``root`` (its id is the path from there)."""
    image = root / _entry_path(entry, str(listing))
    try:
        image.relative_to(root)
    except ValueError:
        raise HandwriteError(f"{listing}: {entry!r} does not name an image file under {root}") from None
    return image


def _split_file(root: Path, split: str, candidates: list[Path]) -> Path:
    """A split is a path to a list file, or a name looked up among ``candidates``."""
    as_path = Path(split)
    if as_path.is_file():
        return as_path
    for c in candidates:
        if c.is_file():
            return c
    raise HandwriteError(f"{root}: no split list for {split!r} (looked for {', '.join(map(str, candidates))})")


def read_iam(root: Path, split: str | None = None, include_err: bool = False) -> list[LineRecord]:
    lines_txt = root / "ascii" / "lines.txt"
    try:
        rows = lines_txt.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise HandwriteError(f"{lines_txt}: cannot read ({e})") from None
    wanted = None
    if split is not None:
        wanted = set(_read_list(_split_file(root, split, [root / "splits" / f"{split}.txt", root / f"{split}.txt"])))
    records = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        if not row.strip() or row.startswith("#"):
            continue
        fields = row.split(" ")
        if len(fields) < 9 or fields[1] not in ("ok", "err"):
            raise HandwriteError(
                f"{lines_txt}:{n}: not an IAM line row (want 'id ok|err graylevel ncomp x y w h text')"
            )
        line_id, status = fields[0], fields[1]
        if line_id in seen:
            raise HandwriteError(f"{lines_txt}:{n}: line {line_id} appears twice (first at line {seen[line_id]})")
        seen[line_id] = n
        if status == "err" and not include_err:
            continue
        parts = line_id.split("-")
        # Split lists name lines (a01-000u-00) or, like some copies of the Aachen/RWTH lists, whole forms (a01-000u).
        if wanted is not None and line_id not in wanted and "-".join(parts[:2]) not in wanted:
            continue
        # The transcription may itself contain spaces in some IAM copies; '|' is the word separator.
        text = normalize_text(" ".join(" ".join(fields[8:]).split("|")))
        if not text:
            raise HandwriteError(f"{lines_txt}:{n}: transcription missing for {line_id}")
        if len(parts) < 3:
            raise HandwriteError(f"{lines_txt}:{n}: line id {line_id!r} is not of the form a01-000u-00")
        image = root / "lines" / parts[0] / f"{parts[0]}-{parts[1]}" / f"{line_id}.png"
        records.append(LineRecord(image, text, line_id))
    if wanted is not None:
        forms = {"-".join(i.split("-")[:2]) for i in seen}
        unknown = sorted(w for w in wanted if w not in seen and w not in forms)
        if unknown:
            raise HandwriteError(
                f"{lines_txt}: split {split!r} names {len(unknown)} ids that lines.txt does not have "
                f"(first: {', '.join(unknown[:3])})"
            )
    return records


def read_pairs(root: Path, split: str | None = None) -> list[LineRecord]:
    if split is not None:
        listing = _split_file(root, split, [root / f"{split}.txt", root / "splits" / f"{split}.txt"])
        images = [_listed_image(root, entry, listing) for entry in _read_list(listing)]
    else:
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    records = []
    for image in images:
        gt = image.with_suffix(".gt.txt")
        try:
            text = gt.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            if split is not None:
                raise HandwriteError(f"{gt}: transcription missing for {image}") from None
            continue  # a stray image without ground truth is not part of the set
        except (OSError, UnicodeDecodeError) as e:
            raise HandwriteError(f"{gt}: cannot read transcription ({e})") from None
        text = normalize_text(text)
        if not text:
            raise HandwriteError(f"{gt}: transcription is empty")
        records.append(LineRecord(image, text, str(image.relative_to(root).with_suffix(""))))
    return records


_HEADER_PATHS = {"path", "image", "file", "filename"}
_HEADER_TEXTS = {"text", "transcription", "gt", "label"}


def read_tsv(manifest: Path, split: str | None = None) -> list[LineRecord]:
    """``path<TAB>text`` rows, paths relative to the manifest's folder.

    An optional header row (``path<TAB>text[<TAB>split...]``) is recognised; with a
    ``split`` column, ``split=`` selects rows by it.
    """
    try:
        with manifest.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (OSError, UnicodeDecodeError) as e:
        raise HandwriteError(f"{manifest}: cannot read manifest ({e})") from None
    split_col = None
    start = 0
    if rows and len(rows[0]) >= 2 and rows[0][0].lower() in _HEADER_PATHS and rows[0][1].lower() in _HEADER_TEXTS:
        header = [h.lower() for h in rows[0]]
        split_col = header.index("split") if "split" in header else None
        start = 1
    if split is not None and split_col is None:
        raise HandwriteError(f"{manifest}: split {split!r} requested but the manifest has no 'split' column")
    records = []
    for n, row in enumerate(rows[start:], start + 1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) < 2 or not row[1].strip():
            raise HandwriteError(f"{manifest}:{n}: transcription missing (want 'image<TAB>text')")
        if split_col is not None and split is not None and (len(row) <= split_col or row[split_col] != split):
            continue
        rel = _entry_path(row[0], f"{manifest}:{n}")
        records.append(LineRecord(manifest.parent / rel, normalize_text(row[1]), str(rel.with_suffix(""))))
    return records


def _page_files(root: Path, split: str | None) -> list[Path]:
    """The PAGE/ALTO files of a collection: all of them, a split's subfolder, or those a
    split list names (by XML file, page image or page name, relative to ``root``)."""
    if root.is_file():
        return [root]
    if split is not None and (root / split).is_dir():
        root = root / split
        split = None
    found = sorted(p for p in root.rglob("*.xml") if xml_flavour(p) is not None)
    if split is None:
        return found
    listed = _read_list(_split_file(root, split, [root / f"{split}.txt", root / "splits" / f"{split}.txt"]))
    by_name: dict[str, Path] = {}
    for p in found:
        rel = p.relative_to(root)
        for key in (str(rel), str(rel.with_suffix("")), p.name, p.stem):
            by_name.setdefault(key, p)
    files = []
    for entry in listed:
        key = str(_entry_path(entry.replace("\\", "/"), f"{root}: split {split!r}"))
        hit = by_name.get(key) or by_name.get(str(Path(key).with_suffix(""))) or by_name.get(Path(key).stem)
        if hit is None:
            raise HandwriteError(f"{root}: split {split!r} names {entry!r}, which is no PAGE or ALTO file here")
        files.append(hit)
    return list(dict.fromkeys(files))


def read_page_files(
    root: Path, split: str | None = None, report: ReadReport | None = None, geometry: str = DEFAULT_GEOMETRY
) -> list[LineRecord]:
    """The text lines of PAGE XML / ALTO files, in each file's reading order.

    Lines without text are skipped and counted; a line that cannot be cut out (no
    coordinates, outside the image) or a page whose image is missing is skipped and
    named in ``report.problems``, and the rest of the collection is read."""
    report = report if report is not None else ReadReport()
    base = root if root.is_dir() else root.parent
    records = []
    for xml in _page_files(root, split):
        try:
            page = page_lines(xml, geometry)
        except HandwriteError as e:
            report.problems.append(str(e))
            continue
        report.problems += page.problems
        stem = str(xml.relative_to(base).with_suffix(""))
        for line, crop in page.crops:
            text = normalize_text(line.text)
            if not text:
                report.empty += 1
                continue
            records.append(LineRecord(crop, text, f"{stem}:{line.id}"))
    return records
