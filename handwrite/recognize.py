"""Transcribing line images with a trained model, and evaluating it on a dataset."""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, decoding
from .datasets import IMAGE_SUFFIXES, LineRecord
from .errors import HandwriteError
from .metrics import ErrorCounts, cer
from .preprocess import collate, load_line, to_tensor


@dataclass
class Transcription:
    path: Path
    text: str | None = None
    confidence: float | None = None
    error: str | None = None  # set instead of text when the image could not be read


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files, folders (searched recursively for images) and glob patterns, in the given order.

    A name that matches nothing is kept as is, so it is reported as missing
    rather than silently dropped.
    """
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        elif not p.exists() and glob.has_magic(item):
            paths += sorted(Path(q) for q in glob.glob(item, recursive=True))
        else:
            paths.append(p)
    return paths


class Recognizer:
    """Greedy transcription with a model in memory; ``cache`` keeps decoded images
    (training validates on the same lines every epoch)."""

    def __init__(self, model, alphabet, device="cpu", batch_size: int = 16, cache: bool = False):
        self.model, self.alphabet = model, alphabet
        self.device = torch.device(device)
        self.height = model.cfg.height
        self.batch_size = batch_size
        self._cache: dict[Path, np.ndarray] | None = {} if cache else None

    @classmethod
    def load(cls, model_path: str | Path, device: str = "cpu", batch_size: int = 16) -> "Recognizer":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise HandwriteError("--device cuda: no CUDA device is available to torch here")
        model, alphabet, _ = checkpoint.load_model(Path(model_path), map_location=device)
        return cls(model.to(device), alphabet, device, batch_size)

    def _load(self, path: Path) -> np.ndarray:
        if self._cache is None:
            return load_line(path, self.height)
        if path not in self._cache:
            self._cache[path] = load_line(path, self.height)
        return self._cache[path]

    def _run(self, lines: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        images = [(to_tensor(x), [], k) for k, x in enumerate(lines)]
        batch, widths, *_ = collate(images)
        self.model.eval()
        with torch.inference_mode():
            log_probs, lengths = self.model(batch.to(self.device), widths.to(self.device))
        return [(self.alphabet.decode(lab), conf) for lab, conf in decoding.greedy(log_probs.cpu(), lengths.cpu())]

    def transcribe(self, paths: Sequence[Path], progress: Callable[[int], None] | None = None) -> list[Transcription]:
        """One result per path, in order; unreadable images get ``error`` and do not stop the rest."""
        results = [Transcription(Path(p)) for p in paths]
        loaded: list[tuple[int, np.ndarray]] = []
        for k, r in enumerate(results):
            try:
                loaded.append((k, self._load(r.path)))
            except HandwriteError as e:
                r.error = str(e)
                if progress:
                    progress(1)
        # Sorting by width before batching keeps padding (wasted work) small.
        loaded.sort(key=lambda item: item[1].shape[1])
        for b in range(0, len(loaded), self.batch_size):
            chunk = loaded[b : b + self.batch_size]
            for (k, _), (text, conf) in zip(chunk, self._run([x for _, x in chunk])):
                results[k].text, results[k].confidence = text, conf
            if progress:
                progress(len(chunk))
        return results


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
