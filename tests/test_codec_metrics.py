from collections import Counter

import pytest

from handwrite.codec import BLANK, Alphabet
from handwrite.metrics import ErrorCounts, cer


def test_codec_round_trip_non_ascii():
    texts = ["Veszprém en Hongrie.", "£5 & ∞", "à Prague."]
    a = Alphabet.from_texts(texts)
    for t in texts:
        labels = a.encode(t)
        assert BLANK not in labels
        assert a.decode(labels) == t
    assert len(a) == len(set("".join(texts))) + 1  # + blank


def test_codec_normalises_to_nfc():
    a = Alphabet.from_texts(["été"])
    assert a.encode("e\u0301te\u0301") == a.encode("été")


def test_codec_is_deterministic():
    assert Alphabet.from_texts(["ba", "c"]).chars == Alphabet.from_texts(["c", "ab"]).chars == ["a", "b", "c"]


def test_unknown_characters_are_counted_not_fatal():
    a = Alphabet.from_texts(["abc"])
    unknown = Counter()
    assert a.decode(a.encode("abzzx", unknown)) == "ab"
    assert unknown == Counter({"z": 2, "x": 1})


def test_cer_wer_hand_computed():
    counts = ErrorCounts()
    counts.add("the cat sat", "the bat sat")  # 1 char edit of 11; 1 word of 3
    counts.add("on a mat", "on mat")  # 2 char edits ('a' and a space) of 8; 1 word of 3
    assert counts.char_edits == 3 and counts.chars == 19
    assert counts.cer == pytest.approx(3 / 19)
    assert counts.word_edits == 2 and counts.words == 6
    assert counts.wer == pytest.approx(2 / 6)
    assert cer("abc", "") == 1.0
    assert cer("abc", "abc") == 0.0
