"""Self-training material: a model's own readings of a hand's uncorrected lines, the surest of them
kept as training lines (``handwrite adapt --uncorrected``; the README's "Adapting without
corrections")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .config import PSEUDO_KEEP
from .datasets import LineRecord
from .errors import HandwriteError, check_number
from .pagexml import DEFAULT_GEOMETRY, page_lines
from .recognize import Recognizer, Transcription


def unlabelled_lines(paths: Sequence[Path], geometry: str = DEFAULT_GEOMETRY) -> tuple[list[LineRecord], list[str]]:
    """Line images and the text lines of PAGE/ALTO files (``.xml``), as records without text, and
    the problems (naming file and line) of the pages or lines that could not be used. A line image
    belongs to the document of its folder, a page line to its page file."""
    records: list[LineRecord] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.suffix.lower() != ".xml":
            records.append(LineRecord(path, "", str(path.with_suffix(""))))
            continue
        try:
            page = page_lines(path, geometry)
        except HandwriteError as e:
            problems.append(str(e))
            continue
        problems += page.problems
        records += [LineRecord(crop, "", f"{path.with_suffix('')}:{line.id}") for line, crop in page.crops]
    return records, problems


def pseudo_label(
    recognizer: Recognizer,
    lines: Sequence[LineRecord],
    keep: float = PSEUDO_KEEP,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[LineRecord], list[Transcription]]:
    """Read ``lines`` (their text is not looked at) the way ``recognizer`` reads, LMs included, and
    return the ``keep`` fraction of the readable, non-empty readings with the highest confidence, as
    records whose text is the reading (surest first), and every line's :class:`Transcription` in the
    order given (with ``error`` for an unreadable image)."""
    check_number("keep", keep, 0.0, 1.0, low_open=True)
    results = list(
        recognizer.iter_transcribe([r.image for r in lines], progress, documents=[r.document for r in lines])
    )
    read = sorted(
        ((record, result) for record, result in zip(lines, results) if result.text),
        key=lambda pair: -pair[1].confidence,
    )
    kept = read[: round(keep * len(read))]
    return [LineRecord(record.image, result.text, record.id) for record, result in kept], results
