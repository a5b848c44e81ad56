"""The alphabet: characters <-> CTC label indices.

Index 0 is the CTC blank; characters follow in sorted order so that the same
training text always gives the same codec. The alphabet travels inside every
checkpoint, so a model file alone is enough to decode.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable

BLANK = 0


class Alphabet:
    def __init__(self, chars: Iterable[str]):
        self.chars = list(chars)
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("alphabet entries must be distinct single characters")
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Alphabet:
        seen = set()
        for t in texts:
            seen.update(unicodedata.normalize("NFC", t))
        return cls(sorted(seen))

    def __len__(self) -> int:
        """Number of classes the network predicts: the characters plus the blank."""
        return len(self.chars) + 1

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def encode(self, text: str, unknown: Counter | None = None) -> list[int]:
        """Label indices of ``text``; characters outside the alphabet are dropped
        and, if ``unknown`` is given, counted there."""
        labels = []
        for c in unicodedata.normalize("NFC", text):
            i = self._index.get(c)
            if i is None:
                if unknown is not None:
                    unknown[c] += 1
            else:
                labels.append(i)
        return labels

    def decode(self, labels: Iterable[int]) -> str:
        return "".join(self.chars[i - 1] for i in labels if i != BLANK)
