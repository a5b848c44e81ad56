"""Transcribing line images with a trained model, and evaluating it on a dataset."""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, decoding
from .codec import Alphabet
from .datasets import IMAGE_SUFFIXES, LineRecord
from .config import INFERENCE_BATCH, DecoderSpec
from .decoding import align, build_search
from .errors import HandwriteError, check_number
from .metrics import ErrorCounts, cer
from .pagexml import LineCrop, new_page_file, page_lines, to_page, write_results, xml_flavour
from .preprocess import collate, prepare_line, read_line_image, to_tensor


@dataclass(frozen=True)
class Glyph:
    """One recognised character and where it lies along the line image (pixels, from its left edge)."""

    char: str
    x0: int
    x1: int
    confidence: float


@dataclass
class Transcription:
    path: Path | LineCrop
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


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (searched recursively for images and PAGE/ALTO files) and glob patterns,
    in the given order. A folder that holds page files yields those, not their page images.

    A name that matches nothing is kept as is, so it is reported as missing
    rather than silently dropped.
    """
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            pages = sorted(q for q in p.rglob("*.xml") if xml_flavour(q) is not None)
            paths += pages or sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        elif not p.exists() and glob.has_magic(item):
            paths += sorted(Path(q) for q in glob.glob(item, recursive=True))
        else:
            paths.append(p)
    return paths


def resolve_device(device: str, index: int | None = None) -> torch.device:
    """``cpu``, ``cuda[:N]`` or ``auto`` (CUDA when available); ``index`` picks the GPU (a torchrun rank's)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HandwriteError("--device cuda: no CUDA device is available to torch here")
        return torch.device("cuda", index) if index is not None else torch.device(device)
    if device != "cpu":
        raise HandwriteError(f"unknown device {device!r}; choose cpu, cuda or auto")
    return torch.device("cpu")


# Lines decoded and sorted by width together when streaming: enough for batches of similar widths
# (little padding), few enough that memory does not grow with the number of lines.
STREAM_CHUNK = 256


def _check_settings(batch_size: int, workers: int) -> None:
    check_number("batch_size", batch_size, 1, 4096, integer=True)
    check_number("workers", workers, 1, 256, integer=True)


class Recognizer:
    """Batched transcription with a model in memory.

    ``decoder`` picks greedy or beam search (with LM / lexicon); beam search over
    many lines can run in ``workers`` processes while this one runs the network.
    ``cache`` keeps decoded images (training validates on the same lines every epoch).
    """

    def __init__(self, model, alphabet, device="cpu", batch_size: int = INFERENCE_BATCH, cache: bool = False,
                 decoder: DecoderSpec | None = None, workers: int = 1):
        _check_settings(batch_size, workers)
        self.model, self.alphabet = model, alphabet
        self.device = torch.device(device)
        self.height = model.cfg.height
        self.batch_size = batch_size
        self._cache: dict[Path, tuple[np.ndarray, tuple[int, int]]] | None = {} if cache else None
        self.spec = decoder or DecoderSpec()
        self.search = build_search(self.spec, alphabet)  # None: greedy
        self.workers = workers

    @classmethod
    def load(cls, model_path: str | Path, device: str = "cpu", batch_size: int = INFERENCE_BATCH,
             decoder: DecoderSpec | None = None, workers: int = 1) -> "Recognizer":
        _check_settings(batch_size, workers)  # before the model loads: a bad number fails fast
        device = str(resolve_device(device))
        if Path(model_path).suffix == ".onnx":  # from `handwrite export`: runs in onnxruntime, on CPU
            from .export import OnnxNetwork

            if device != "cpu":
                raise HandwriteError(f"{model_path}: ONNX models run on the CPU here; drop --device")
            net = OnnxNetwork(Path(model_path), torch.get_num_threads())
            return cls(net, net.alphabet, device, batch_size, decoder=decoder, workers=workers)
        model, alphabet, _ = checkpoint.load_model(Path(model_path), map_location=device)
        return cls(model.to(device), alphabet, device, batch_size, decoder=decoder, workers=workers)

    def _load(self, source) -> tuple[np.ndarray, tuple[int, int]]:
        """The network's input for a line (path or page crop), and the line image's own size."""
        if self._cache is not None and source in self._cache:
            return self._cache[source]
        grey = read_line_image(source)
        item = prepare_line(grey, self.height, source), grey.size
        if self._cache is not None:
            self._cache[source] = item
        return item

    def _network(self, lines: Sequence[np.ndarray]) -> list[tuple[np.ndarray, list[int], float]]:
        """Per line: frame log-probabilities (T, C), greedy labels and confidence."""
        batch, widths, *_ = collate([(to_tensor(x), [], k) for k, x in enumerate(lines)])
        self.model.eval()
        with torch.inference_mode():
            log_probs, lengths = self.model(batch.to(self.device), widths.to(self.device))
        log_probs, lengths = log_probs.cpu(), lengths.cpu()
        out = []
        for n, (labels, conf) in enumerate(decoding.greedy(log_probs, lengths)):
            out.append((log_probs[: lengths[n], n].numpy(), labels, conf))
        return out

    def iter_transcribe(self, paths: Sequence[Path | LineCrop], progress: Callable[[int], None] | None = None,
                        positions: bool = False, chunk: int | None = None) -> Iterator[Transcription]:
        """:meth:`transcribe`, yielding results in order, ``chunk`` lines at a time (default
        ``STREAM_CHUNK``): memory stays bounded however many lines there are, and results come
        out before the last line is read."""
        chunk = chunk or STREAM_CHUNK
        for start in range(0, len(paths), chunk):
            yield from self.transcribe(paths[start : start + chunk], progress, positions)

    def transcribe(self, paths: Sequence[Path | LineCrop], progress: Callable[[int], None] | None = None,
                   positions: bool = False) -> list[Transcription]:
        """One result per line image (a path or a page crop), in order; unreadable images get ``error``
        and do not stop the rest. ``positions`` also aligns each text to its image (``glyphs``)."""
        advance = progress or (lambda n: None)
        results = [Transcription(Path(p) if isinstance(p, str) else p) for p in paths]
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
        frames: dict[int, np.ndarray] = {}
        for b in range(0, len(loaded), self.batch_size):
            chunk = loaded[b : b + self.batch_size]
            for (k, _), (lp, labels, conf) in zip(chunk, self._network([x for _, x in chunk])):
                results[k].confidence = conf
                if self.search is None:
                    results[k].text = self.alphabet.decode(labels)
                    if positions:
                        self._place(results[k], lp, labels)
                else:
                    frames[k] = lp
            if self.search is None:
                advance(len(chunk))
        if self.search is not None:
            keys = list(frames)
            for k, labels in zip(keys, self._beam([frames[k] for k in keys], advance)):
                results[k].text = self.alphabet.decode(labels)
                if positions:
                    self._place(results[k], frames[k], labels)
        return results

    def _place(self, result: Transcription, log_probs: np.ndarray, labels: list[int]) -> None:
        """Glyph positions from the CTC alignment. CTC marks a character by a spike of one or a few
        frames, so a glyph is taken to run from its first frame to the next glyph's first frame
        (the last one to its own last frame). Frame t covers input columns [t * r, (t + 1) * r)
        of the scaled line (r: the network's width reduction), scaled back to the image's pixels."""
        r = self.model.cfg.width_reduction
        width, height = result.size
        scale = width / max(1, round(width * self.height / height))
        spans = align(log_probs, labels)
        ends = [a for a, _, _ in spans[1:]] + [spans[-1][1] + 1 if spans else 0]
        result.glyphs = [
            Glyph(self.alphabet.decode([c]), int(a * r * scale), min(width, int(end * r * scale)), conf)
            for c, (a, _, conf), end in zip(labels, spans, ends)
        ]

    def _beam(self, frames: list[np.ndarray], advance) -> Iterator[list[int]]:
        if self.workers <= 1 or len(frames) < 4 * self.workers:
            for lp in frames:
                yield self.search.decode(lp)[0]
                advance(1)
            return
        with ProcessPoolExecutor(self.workers, initializer=_start_worker, initargs=(self.spec, self.alphabet.chars)) as pool:
            for labels in pool.map(_decode_in_worker, frames, chunksize=4):
                yield labels
                advance(1)


_worker_search = None


def _start_worker(spec: DecoderSpec, chars: list[str]) -> None:
    global _worker_search
    torch.set_num_threads(1)
    _worker_search = build_search(spec, Alphabet(chars))


def _decode_in_worker(log_probs: np.ndarray) -> list[int]:
    return _worker_search.decode(log_probs)[0]


@dataclass
class LineResult:
    id: str
    reference: str
    hypothesis: str | None
    cer: float | None
    error: str | None = None


@dataclass
class Evaluation:
    counts: ErrorCounts
    lines: list[LineResult]
    unknown_chars: Counter = field(default_factory=Counter)
    failed: int = 0

    def summary(self) -> dict:
        return {
            "lines": self.counts.lines,
            "failed": self.failed,
            "cer": self.counts.cer,
            "wer": self.counts.wer,
            "char_errors": self.counts.char_edits,
            "chars": self.counts.chars,
            "word_errors": self.counts.word_edits,
            "words": self.counts.words,
            "unknown_chars": dict(self.unknown_chars.most_common()),
        }


def evaluate(recognizer: Recognizer, records: Sequence[LineRecord], progress=None) -> Evaluation:
    """CER/WER of the recognizer on ``records``.

    An unreadable image counts as an empty hypothesis (all its characters
    wrong) rather than being dropped, so failures cannot flatter the score.
    """
    results = recognizer.transcribe([r.image for r in records], progress)
    ev = Evaluation(ErrorCounts(), [])
    for rec, res in zip(records, results):
        for c in rec.text:
            if c not in recognizer.alphabet:
                ev.unknown_chars[c] += 1
        hyp = res.text if res.error is None else ""
        ev.failed += res.error is not None
        ev.counts.add(rec.text, hyp)
        ev.lines.append(LineResult(rec.id, rec.text, res.text, cer(rec.text, hyp), res.error))
    return ev


def tune_decoder(recognizer: Recognizer, records: Sequence[LineRecord], base: DecoderSpec,
                 weights: Sequence[float], bonuses: Sequence[float], progress=None) -> list[dict]:
    """CER/WER on ``records`` for every (LM weight, insertion bonus) pair, greedy first.

    The network runs once; only the search is repeated, sharing one LM and its cache.
    """
    frames: list[np.ndarray] = []
    counts = ErrorCounts()
    lines = [(rec, recognizer._load(rec.image)[0]) for rec in records]
    for b in range(0, len(lines), recognizer.batch_size):
        chunk = lines[b : b + recognizer.batch_size]
        for (rec, _), (lp, labels, _) in zip(chunk, recognizer._network([x for _, x in chunk])):
            frames.append(lp)
            counts.add(rec.text, recognizer.alphabet.decode(labels))
    rows = [{"decoder": "greedy", "lm_weight": None, "insertion_bonus": None, "cer": counts.cer, "wer": counts.wer}]
    search = build_search(replace(base, decoder="beam"), recognizer.alphabet)
    for w in weights:
        for bonus in bonuses:
            search.lm_weight, search.insertion_bonus = w, bonus
            counts = ErrorCounts()
            for rec, lp in zip(records, frames):
                counts.add(rec.text, recognizer.alphabet.decode(search.decode(lp)[0]))
            rows.append({"decoder": "beam", "lm_weight": w, "insertion_bonus": bonus, "cer": counts.cer, "wer": counts.wer})
            if progress:
                progress(1)
    return rows


def best_setting(rows: Sequence[dict], base: DecoderSpec) -> tuple[dict, DecoderSpec]:
    """The row of ``tune_decoder`` to keep, and the decoder settings it stands for.

    An LM of other text can hurt; the user asked for this LM, so greedy wins only when strictly better.
    """
    best = min(rows[1:], key=lambda r: (r["cer"], r["wer"]))
    if (rows[0]["cer"], rows[0]["wer"]) < (best["cer"], best["wer"]):
        return rows[0], DecoderSpec(decoder="greedy")
    return best, replace(base, lm_weight=best["lm_weight"], insertion_bonus=best["insertion_bonus"])


@dataclass
class PageResult:
    """A transcribed page file: the XML to write, each line's result, and what could not be read."""

    xml: Path
    document: bytes | None
    lines: list[Transcription]
    problems: list[str]


def transcribe_page(recognizer: Recognizer, xml: Path, progress=None) -> PageResult:
    """Recognise every line of a PAGE/ALTO file and write the results into a copy of it
    (``document``; None when no line could be read, e.g. the page image is missing)."""
    found = page_lines(Path(xml))
    results = recognizer.transcribe([crop for _, crop in found.crops], progress, positions=True)
    placed = {line.id: (res, to_page(crop, res.size)) for (line, crop), res in zip(found.crops, results)
              if res.error is None}
    document = write_results(found.page, placed) if placed else None
    return PageResult(Path(xml), document, results, found.problems)


def line_document(result: Transcription, flavour: str) -> bytes:
    """A one-line PAGE 2019 or ALTO v4 file for a transcribed line image (needs ``positions=True``)."""
    page = new_page_file(Path(str(result.path)), result.size, flavour)
    return write_results(page, {"l0": (result, lambda x, y: (round(x), round(y)))})
