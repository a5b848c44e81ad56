"""Character and word error rates, and evaluating a recognizer on a dataset with them.

Rates over a set are total edits divided by total reference length (the
convention of the IAM literature), not a mean of per-line rates, so long lines
weigh more than short ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import editdistance

from .datasets import LineRecord


def char_errors(ref: str, hyp: str) -> int:
    return editdistance.eval(ref, hyp)


def word_errors(ref: str, hyp: str) -> int:
    return editdistance.eval(ref.split(), hyp.split())


def cer(ref: str, hyp: str) -> float:
    return char_errors(ref, hyp) / max(len(ref), 1)


@dataclass
class ErrorCounts:
    char_edits: int = 0
    chars: int = 0
    word_edits: int = 0
    words: int = 0
    lines: int = 0

    def add(self, ref: str, hyp: str) -> None:
        self.char_edits += char_errors(ref, hyp)
        self.chars += len(ref)
        self.word_edits += word_errors(ref, hyp)
        self.words += len(ref.split())
        self.lines += 1

    @property
    def cer(self) -> float:
        return self.char_edits / max(self.chars, 1)

    @property
    def wer(self) -> float:
        return self.word_edits / max(self.words, 1)


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


def evaluate(recognizer, records: Sequence[LineRecord], progress=None) -> Evaluation:
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
