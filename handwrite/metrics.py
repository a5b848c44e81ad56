"""Character and word error rates.

Rates over a set are total edits divided by total reference length (the
convention of the IAM literature), not a mean of per-line rates, so long lines
weigh more than short ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import editdistance


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
