"""Character and word error rates, and evaluating a recognizer on a dataset with them.

Rates over a set are total edits divided by total reference length (the
convention of the IAM literature), not a mean of per-line rates, so long lines
weigh more than short ones.

:func:`analyse` adds what a practitioner compares models and fixes ground truth
with (the figures of ``ketos test`` and dinglehopper): CER on grapheme clusters
(what a reader counts as one character: ``é`` written as e + combining accent is
one), case- and punctuation-insensitive CER, WER on Unicode word boundaries,
bag-of-words error (order-free), insertions / deletions / substitutions and the
most frequent confusions, CER by position along the line, per-subset figures, and a
bootstrap 95 % confidence interval for CER.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field

import editdistance
import numpy as np
import regex
from rapidfuzz.distance import Levenshtein

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

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(*(a + b for a, b in zip(astuple(self), astuple(other))))

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


def evaluate(recognizer, records: Sequence[LineRecord], progress=None, into: Evaluation | None = None) -> Evaluation:
    """CER/WER of the recognizer on ``records``.

    An unreadable image counts as an empty hypothesis (all its characters
    wrong) rather than being dropped, so failures cannot flatter the score.
    ``into`` is filled line by line as results come, so a caller still holds the
    figures of the lines done if something fails part-way.
    """
    # Chunked (bounded memory); each page or folder of lines is one document to choose an LM for.
    results = recognizer.iter_transcribe([r.image for r in records], progress, documents=[r.document for r in records])
    ev = into if into is not None else Evaluation(ErrorCounts(), [])
    for rec, res in zip(records, results):
        for c in rec.text:
            if c not in recognizer.alphabet:
                ev.unknown_chars[c] += 1
        hyp = res.text if res.error is None else ""
        ev.failed += res.error is not None
        ev.counts.add(rec.text, hyp)
        ev.lines.append(LineResult(rec.id, rec.text, res.text, cer(rec.text, hyp), res.error))
    return ev


# --- detailed analysis ---------------------------------------------------------------------------

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_BLOCK = 50
_GRAPHEME = regex.compile(r"\X")
_WORD = regex.compile(r"\w+(?:['’]\w+)*")


def graphemes(text: str) -> list[str]:
    """User-perceived characters (Unicode extended grapheme clusters) of the NFC text."""
    return _GRAPHEME.findall(unicodedata.normalize("NFC", text))


def unicode_words(text: str) -> list[str]:
    """Words as runs of letters, digits and marks (apostrophes inside a word kept), punctuation left out."""
    return _WORD.findall(unicodedata.normalize("NFC", text))


def _no_punctuation(text: str) -> str:
    return "".join(c for c in text if not unicodedata.category(c).startswith("P"))


def opcodes(ref: str, hyp: str) -> list[tuple[str, str, str]]:
    """The alignment of two lines on graphemes: (tag, reference part, hypothesis part) segments,
    tag one of equal / replace / delete / insert."""
    a, b = graphemes(ref), graphemes(hyp)
    return [(tag, "".join(a[i1:i2]), "".join(b[j1:j2])) for tag, i1, i2, j1, j2 in Levenshtein.opcodes(a, b)]


def _bow_errors(ref: list[str], hyp: list[str]) -> int:
    """Order-free word errors: the words that cannot be paired with an equal word on the other side."""
    common = sum((Counter(ref) & Counter(hyp)).values())
    return max(len(ref), len(hyp)) - common


# ``cer_by_position``: CER in each tenth of the lines (a reference grapheme's tenth of its line). The
# shipped model's errors gather at line ends (models/default/DEVELOPMENT.md, twenty-fifth session).
POSITION_BINS = 10


def _position_errors(a: list[str], i1: int, i2: int, errors: int) -> np.ndarray:
    """The tenths of the line where an edit's ``errors`` fall: on the reference graphemes ``i1:i2`` of ``a``
    it covers; a longer replacement's extra insertions on its last grapheme, a pure insertion on the grapheme
    after it (the line's last, at its end)."""
    last = min(max(i2 - 1, i1), len(a) - 1)
    positions = [min(i1 + n, last) for n in range(errors)]
    return np.array(positions) * POSITION_BINS // len(a)


def analyse(lines: Sequence[LineResult], subsets: Sequence[str] | None = None, seed: int = 0, top: int = 20) -> dict:
    """The detailed figures of an evaluation (see the module docstring). A failed line counts as an
    empty hypothesis, as in :func:`evaluate`."""
    edits = np.zeros(len(lines))
    lengths = np.zeros(len(lines))
    totals = Counter()
    confusions: Counter = Counter()
    by_position = np.zeros((2, POSITION_BINS))  # errors, reference graphemes
    for k, line in enumerate(lines):
        ref, hyp = line.reference, (line.hypothesis if line.error is None else "") or ""
        a, b = graphemes(ref), graphemes(hyp)
        edits[k], lengths[k] = Levenshtein.distance(a, b), len(a)
        totals["grapheme_edits"] += int(edits[k])
        totals["graphemes"] += len(a)
        totals["ci_edits"] += Levenshtein.distance(graphemes(ref.casefold()), graphemes(hyp.casefold()))
        ref_np, hyp_np = graphemes(_no_punctuation(ref)), graphemes(_no_punctuation(hyp))
        totals["np_edits"] += Levenshtein.distance(ref_np, hyp_np)
        totals["np_graphemes"] += len(ref_np)
        ref_w, hyp_w = unicode_words(ref), unicode_words(hyp)
        totals["word_edits"] += Levenshtein.distance(ref_w, hyp_w)
        totals["bow_errors"] += _bow_errors(ref_w, hyp_w)
        totals["words"] += len(ref_w)
        if a:
            np.add.at(by_position[1], np.arange(len(a)) * POSITION_BINS // len(a), 1)
        for tag, i1, i2, j1, j2 in Levenshtein.opcodes(a, b):
            if tag == "equal":
                continue
            errors = max(i2 - i1, j2 - j1)
            totals[{"replace": "substitutions", "delete": "deletions", "insert": "insertions"}[tag]] += errors
            if a:  # an empty reference has no positions
                np.add.at(by_position[0], _position_errors(a, i1, i2, errors), 1)
            if tag == "replace" and i2 - i1 == j2 - j1:
                confusions.update(zip(a[i1:i2], b[j1:j2]))
            else:
                confusions[("".join(a[i1:i2]), "".join(b[j1:j2]))] += 1
    rng = np.random.default_rng(seed)
    if len(lines):
        # Resamples drawn a block at a time: all 1,000 at once took 120 MB for 5,000 lines.
        rates = []
        for start in range(0, BOOTSTRAP_SAMPLES, BOOTSTRAP_BLOCK):
            picks = rng.integers(0, len(lines), size=(min(BOOTSTRAP_BLOCK, BOOTSTRAP_SAMPLES - start), len(lines)))
            rates.append(edits[picks].sum(1) / np.maximum(lengths[picks].sum(1), 1))
        rates = np.concatenate(rates)
        ci = [float(np.percentile(rates, 2.5)), float(np.percentile(rates, 97.5))]
    else:
        ci = [0.0, 0.0]

    def rate(num, den):
        return totals[num] / max(totals[den], 1)

    out = {
        "cer_graphemes": rate("grapheme_edits", "graphemes"),
        "cer_graphemes_ci95": ci,
        "cer_case_insensitive": rate("ci_edits", "graphemes"),
        "cer_no_punctuation": rate("np_edits", "np_graphemes"),
        "wer_unicode": rate("word_edits", "words"),
        "bow_error_rate": rate("bow_errors", "words"),
        "substitutions": totals["substitutions"],
        "deletions": totals["deletions"],
        "insertions": totals["insertions"],
        "confusions": [{"reference": r, "hypothesis": h, "count": n} for (r, h), n in confusions.most_common(top)],
        "cer_by_position": [float(e / max(n, 1)) for e, n in zip(*by_position)],
    }
    if subsets is not None:
        groups: dict[str, list[int]] = {}
        for k, name in enumerate(subsets):
            groups.setdefault(name, []).append(k)
        out["subsets"] = {
            name: {"lines": len(ks), "cer": float(edits[ks].sum() / max(lengths[ks].sum(), 1))}
            for name, ks in sorted(groups.items())
        }
    return out
