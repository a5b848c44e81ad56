"""Transcribing line images with a trained model, and evaluating it on a dataset."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import decoding
from .codec import Alphabet
from .config import INFERENCE_BATCH, INFERENCE_COLUMNS, DecoderSpec
from .decoding import align, build_search
from .errors import HandwriteError, check_number
from .pagexml import DEFAULT_GEOMETRY, LineCrop, new_page_file, page_lines, to_page, write_results
from .preprocess import (
    margin_columns,
    pack_line,
    pad_lines,
    prepare_for_reading,
    read_line_image,
    stretch_line,
    to_unit,
    unpack_line,
)


@dataclass(frozen=True)
class Glyph:
    """One recognised character and where it lies along the line image (pixels, from its left edge)."""

    char: str
    x0: int
    x1: int
    confidence: float


@dataclass
class Transcription:
    path: Path | LineCrop | object  # the line as given: a file, a page crop, or an in-memory image
    text: str | None = None
    confidence: float | None = None
    error: str | None = None  # set instead of text when the image could not be read
    glyphs: list[Glyph] | None = None  # with positions=True: the text's characters, aligned to the image
    size: tuple[int, int] | None = None  # the line image's width and height, in its own pixels

    def words(self) -> list[list[Glyph]]:
        """The glyphs grouped into words (runs without spaces)."""
        out: list[list[Glyph]] = [[]]
        for g in self.glyphs or []:
            if g.char.isspace():
                out.append([])
            else:
                out[-1].append(g)
        return [w for w in out if w]


@dataclass
class LineFrames:
    """What the network made of one line: frame log-probabilities (T, C), the greedy reading's
    labels, the width (columns) of the line as the network read it and the columns of paper at each of
    its ends that the ``margin`` reading setting added."""

    log_probs: np.ndarray
    labels: list[int]
    columns: int
    margin: float = 0.0


# A dense line is read again at most this many times as wide: the cap the shipped max_density was
# measured with (2026-11-30); no other cap was tried. (Stretching every line 1.8x, whatever its
# density, made all six validation sets worse.)
MAX_STRETCH = 2.0

# Lines decoded and sorted by width together when streaming: enough for batches of similar widths
# (little padding), few enough that memory does not grow with the number of lines.
STREAM_CHUNK = 256


def check_settings(batch_size: int, workers: int) -> None:
    check_number("batch_size", batch_size, 1, 4096, integer=True)
    check_number("workers", workers, 1, 256, integer=True)


class Recognizer:
    """Batched transcription with a network in memory (see :mod:`handwrite.networks`: a PyTorch
    model or an ONNX export; this class itself needs no torch).

    ``decoder`` picks greedy or beam search (with LM / lexicon); beam search over
    many lines can run in ``workers`` processes while this one runs the network.
    ``cache`` keeps decoded images (training validates on the same lines every epoch).
    """

    def __init__(
        self,
        network,
        alphabet,
        batch_size: int = INFERENCE_BATCH,
        cache: bool = False,
        decoder: DecoderSpec | None = None,
        workers: int = 1,
    ):
        check_settings(batch_size, workers)
        self.network, self.alphabet = network, alphabet
        self.height = network.cfg.height
        self.batch_size = batch_size
        self._cache: dict[Path, tuple[bytes, tuple[int, int]]] | None = {} if cache else None  # packed lines
        self.spec = decoder or DecoderSpec()
        self._margin = margin_columns(self.spec.margin, self.height)  # paper columns at each end of a line read
        self.search = build_search(self.spec, alphabet)  # None: greedy
        lacking = [c for c in self.spec.read_as.values() if c not in alphabet]
        if lacking:
            raise HandwriteError(f"read_as: the model has no character {lacking[0]!r} to read others as")
        # As label pairs; a character the model lacks is never written, so there is nothing to read as another.
        self._read_as = [
            (*alphabet.encode(a), *alphabet.encode(b)) for a, b in self.spec.read_as.items() if a in alphabet
        ]
        self.workers = workers

    def _load(self, source) -> tuple[np.ndarray, tuple[int, int]]:
        """The network's input for a line (file, page crop, PIL image or array), and its own size."""
        cached = self._cache is not None and isinstance(source, (Path, LineCrop))
        if cached and source in self._cache:
            blob, size = self._cache[source]
            return unpack_line(blob, self.height), size
        grey = read_line_image(source)
        name = source if isinstance(source, (Path, LineCrop)) else "image"
        line = prepare_for_reading(
            grey, self.height, name, self.spec.max_slope, self.spec.min_ink_height, self.spec.margin
        )
        if cached:
            self._cache[source] = pack_line(line), grey.size
        return line, grey.size

    def read(self, image, positions: bool = True) -> Transcription:
        """One line: a file path, a PIL image or a numpy array (greyscale or RGB, uint8) -> its
        :class:`Transcription` (``text``, ``confidence``, and with ``positions`` the ``glyphs`` and
        ``words()`` placed along the image). An unusable image raises HandwriteError."""
        result = self.transcribe([image], positions=positions)[0]
        if result.error:
            raise HandwriteError(result.error)
        return result

    def _network(self, batch: list[tuple[int, np.ndarray]], results: list[Transcription]) -> dict[int, LineFrames]:
        """Run the network over a batch of (index, line); sets each line's greedy confidence."""
        log_probs, lengths = self.network.run(*pad_lines([to_unit(x) for _, x in batch]))
        log_probs = decoding.read_as(log_probs, self._read_as)
        out = {}
        for n, ((k, line), (labels, conf)) in enumerate(zip(batch, decoding.greedy(log_probs, lengths))):
            results[k].confidence = conf
            # A copy: a view would keep the whole batch's array alive for as long as any line's result.
            out[k] = LineFrames(log_probs[: lengths[n], n].copy(), labels, line.shape[1], self._margin)
        return out

    def iter_transcribe(
        self,
        paths: Sequence[Path | LineCrop],
        progress: Callable[[int], None] | None = None,
        positions: bool = False,
        chunk: int | None = None,
        documents: Sequence[Hashable] | None = None,
    ) -> Iterator[Transcription]:
        """:meth:`transcribe`, yielding results in order, ``chunk`` lines at a time (default
        ``STREAM_CHUNK``): memory stays bounded however many lines there are, and results come
        out before the last line is read. A document's lines in different chunks choose their
        LM chunk by chunk."""
        chunk = chunk or STREAM_CHUNK
        for start in range(0, len(paths), chunk):
            part = slice(start, start + chunk)
            yield from self.transcribe(paths[part], progress, positions, documents[part] if documents else None)

    def transcribe(
        self,
        paths: Sequence,
        progress: Callable[[int], None] | None = None,
        positions: bool = False,
        documents: Sequence[Hashable] | None = None,
    ) -> list[Transcription]:
        """One result per line image (a file, a page crop, a PIL image or an array), in order;
        unreadable images get ``error`` and do not stop the rest. ``positions`` also aligns each
        text to its image (``glyphs``). With several LMs, the lines of one document (``documents``:
        a key per line, e.g. its page; default: all lines are one document) are decoded with the
        same LM (:class:`~handwrite.decoding.LMChoice`)."""
        advance = progress or (lambda n: None)
        results, frames = self.frames(paths, advance, count_done=self.search is None)
        keys = list(frames)
        if self.search is None:
            decoded = [frames[k].labels for k in keys]
        else:
            docs = documents if documents is not None else [None] * len(paths)
            which = self.search.choose([self.alphabet.decode(frames[k].labels) for k in keys], [docs[k] for k in keys])
            decoded = list(self._beam([(frames[k].log_probs, w) for k, w in zip(keys, which)], advance))
        for k, labels in zip(keys, decoded):
            results[k].text = self.alphabet.decode(labels)
            if positions:
                self._place(results[k], frames[k], labels)
        return results

    def frames(self, sources: Sequence, advance=lambda n: None, count_done: bool = True):
        """Run the network over lines: one :class:`Transcription` per source (with ``error``, or with
        ``size`` and the greedy ``confidence``), and index -> :class:`LineFrames` for every readable
        line (read twice if denser than the decoder's ``max_density``). ``advance`` counts unreadable
        lines, and the others too with ``count_done``."""
        # A str is a file name; anything else (Path, LineCrop, PIL image, array) is kept as given.
        results = [Transcription(Path(p) if isinstance(p, str) else p) for p in sources]
        loaded: list[tuple[int, np.ndarray]] = []
        for k, r in enumerate(results):
            try:
                line, r.size = self._load(r.path)
                loaded.append((k, line))
            except HandwriteError as e:
                r.error = str(e)
                advance(1)
        # Sorting by width before batching keeps padding (wasted work) small.
        loaded.sort(key=lambda item: item[1].shape[1])
        out: dict[int, LineFrames] = {}
        for chunk in self._batches(loaded):
            out.update(self._network(chunk, results))
            if count_done:
                advance(len(chunk))
        if self.spec.max_density:
            out.update(self._reread_dense(loaded, out, results))
        return results, dict(sorted(out.items()))

    def _reread_dense(self, loaded, first: dict[int, LineFrames], results) -> dict[int, LineFrames]:
        """The lines whose first reading has more characters per frame than ``max_density``, read
        again stretched along the line to that density (at most ``MAX_STRETCH`` times as wide)."""
        limit = self.spec.max_density
        dense = []
        for k, line in loaded:
            factor = len(first[k].labels) / (limit * len(first[k].log_probs))
            if factor > 1:
                dense.append((k, stretch_line(line, min(factor, MAX_STRETCH))))
        dense.sort(key=lambda item: item[1].shape[1])
        again: dict[int, LineFrames] = {}
        for chunk in self._batches(dense):
            again.update(self._network(chunk, results))
        for k, frames in again.items():
            # The margin was stretched with the writing. (Keeping it as it was read the validation lines
            # worse: 8,154 wrong characters against 8,094, the shipped model, twenty-fifth session.)
            frames.margin *= frames.columns / first[k].columns
        return again

    def _batches(self, loaded: list[tuple[int, np.ndarray]]) -> Iterator[list[tuple[int, np.ndarray]]]:
        """Width-sorted lines in batches of at most ``batch_size`` lines and ``INFERENCE_COLUMNS``
        padded columns (a line wider than that goes alone)."""
        batch: list[tuple[int, np.ndarray]] = []
        for item in loaded:
            if batch and (len(batch) == self.batch_size or (len(batch) + 1) * item[1].shape[1] > INFERENCE_COLUMNS):
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def _place(self, result: Transcription, frames: LineFrames, labels: list[int]) -> None:
        """Glyph positions from the CTC alignment. CTC marks a character by a spike of one or a few
        frames, so a glyph is taken to run from its first frame to the next glyph's first frame
        (the last one to its own last frame). Frame t covers input columns [t * r, (t + 1) * r)
        of the line as read (r: the network's width reduction), less its margin, scaled back to the image's pixels."""
        r, m = self.network.cfg.width_reduction, frames.margin
        width = result.size[0]
        scale = width / max(1, frames.columns - 2 * m)

        def x(frame: int) -> int:
            return min(width, max(0, int((frame * r - m) * scale)))

        spans = align(frames.log_probs, labels)
        ends = [a for a, _, _ in spans[1:]] + [spans[-1][1] + 1 if spans else 0]
        result.glyphs = [
            Glyph(self.alphabet.decode([c]), x(a), x(end), conf) for c, (a, _, conf), end in zip(labels, spans, ends)
        ]

    def _beam(self, lines: list[tuple[np.ndarray, int]], advance) -> Iterator[list[int]]:
        """Beam-search labels of each (frame log-probabilities, index of the search to use)."""
        if self.workers <= 1 or len(lines) < 4 * self.workers:
            for lp, which in lines:
                yield self.search.searches[which].decode(lp)[0]
                advance(1)
            return
        with ProcessPoolExecutor(
            self.workers, initializer=_start_worker, initargs=(self.spec, self.alphabet.chars)
        ) as pool:
            for labels in pool.map(_decode_in_worker, lines, chunksize=4):
                yield labels
                advance(1)


_worker_search = None


def _start_worker(spec: DecoderSpec, chars: list[str]) -> None:
    global _worker_search
    _worker_search = build_search(spec, Alphabet(chars))


def _decode_in_worker(line: tuple[np.ndarray, int]) -> list[int]:
    log_probs, which = line
    return _worker_search.searches[which].decode(log_probs)[0]


@dataclass
class PageResult:
    """A transcribed page file: the XML to write, each line's result, and what could not be read."""

    xml: Path
    document: bytes | None
    lines: list[Transcription]
    problems: list[str]


def transcribe_page(recognizer: Recognizer, xml: Path, progress=None, geometry: str = DEFAULT_GEOMETRY) -> PageResult:
    """Recognise every line of a PAGE/ALTO file and write the results into a copy of it
    (``document``; None when no line could be read, e.g. the page image is missing).
    ``geometry``: cut lines by their polygon or their baseline band (:mod:`handwrite.pagexml`)."""
    found = page_lines(Path(xml), geometry)
    results = recognizer.transcribe([crop for _, crop in found.crops], progress, positions=True)
    placed = {
        line.id: (res, to_page(crop, res.size)) for (line, crop), res in zip(found.crops, results) if res.error is None
    }
    document = write_results(found.page, placed) if placed else None
    return PageResult(Path(xml), document, results, found.problems)


def line_document(result: Transcription, flavour: str) -> bytes:
    """A one-line PAGE 2019 or ALTO v4 file for a transcribed line image (needs ``positions=True``)."""
    page = new_page_file(Path(str(result.path)), result.size, flavour)
    return write_results(page, {"l0": (result, lambda x, y: (round(x), round(y)))})
