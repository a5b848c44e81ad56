import itertools
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from handwrite.codec import Alphabet
from handwrite.decoding import Lexicon, PrefixBeamSearch, greedy
from handwrite.errors import HandwriteError
from handwrite.lm import CharLM, build_arpa, write_arpa


def _random_ctc(rng, frames, classes, peaky=False):
    logits = rng.normal(size=(frames, classes))
    if peaky:
        logits[np.arange(frames), rng.integers(0, classes, frames)] += 6.0
    return torch.tensor(logits).log_softmax(-1).numpy()


def _ctc_logprob(log_probs: np.ndarray, labels: list[int]) -> float:
    """Exact log P(labels | frames) by torch's CTC forward algorithm."""
    lp = torch.tensor(log_probs, dtype=torch.float64).unsqueeze(1)
    loss = torch.nn.functional.ctc_loss(
        lp,
        torch.tensor([labels or [1]], dtype=torch.long)[:, : len(labels)],
        torch.tensor([lp.shape[0]]),
        torch.tensor([len(labels)]),
        reduction="sum",
    )
    return -float(loss)


def _lm(tmp_path, texts, order=3) -> CharLM:
    path = tmp_path / "lm.arpa"
    write_arpa(path, build_arpa(texts, order))
    return CharLM.load(path)


def test_beam_width_one_with_a_cancelled_uniform_lm_equals_greedy(tmp_path):
    # When one class holds over half of every frame's mass, no merge of paths
    # can outweigh it, so a width-1 beam must follow the best path.
    rng = np.random.default_rng(0)
    alphabet = Alphabet("abc")
    uniform = _lm(tmp_path, ["abc"], order=1)  # every character and </s> seen once: all 1/4
    assert np.allclose(np.exp(uniform.log_probs(uniform.state(""))), 0.25)
    # Weight 1 with a bonus of log 4 per character: each character's LM score (log 1/4) is cancelled
    # exactly, so any mistake in how the LM is applied (wrong index, wrong state) breaks the equality.
    search = PrefixBeamSearch(alphabet, beam=1, prune=0, lm_weight=1.0, insertion_bonus=math.log(4), lm=uniform)
    for _ in range(50):
        lp = _random_ctc(rng, 12, 4, peaky=True)
        assert np.exp(lp.max(-1)).min() > 0.5
        ((g, _),) = greedy(torch.tensor(lp).unsqueeze(1), torch.tensor([12]))
        assert search.decode(lp)[0] == g


def test_wider_beam_never_worse_than_greedy():
    rng = np.random.default_rng(1)
    alphabet = Alphabet("abcd")
    search = PrefixBeamSearch(alphabet, beam=32, prune=0)
    unbounded = PrefixBeamSearch(alphabet, beam=100_000, prune=0)
    for _ in range(30):
        lp = _random_ctc(rng, 6, 5)
        ((g, _),) = greedy(torch.tensor(lp).unsqueeze(1), torch.tensor([6]))
        labels, score = search.decode(lp)
        # The beam's best scores at least the single best path that greedy follows...
        assert score >= lp.max(-1).sum() - 1e-9
        # ...and never more than the exact probability of what it returns (paths may be pruned).
        assert score <= _ctc_logprob(lp, labels) + 1e-9
        # Without pruning, its answer is at least as likely as greedy's.
        exact = unbounded.decode(lp)[0]
        assert _ctc_logprob(lp, exact) >= _ctc_logprob(lp, g) - 1e-9


@pytest.mark.parametrize("frames, classes", [(5, 3), (6, 4), (5, 4)])
def test_beam_search_matches_brute_force(frames, classes):
    rng = np.random.default_rng(frames * 10 + classes)
    alphabet = Alphabet("abc"[: classes - 1])
    search = PrefixBeamSearch(alphabet, beam=10_000, prune=0)
    for _ in range(5):
        lp = _random_ctc(rng, frames, classes)
        # every frame path, collapsed: the exact probability of every label sequence
        totals: dict[tuple, float] = {}
        for path in itertools.product(range(classes), repeat=frames):
            labels = tuple(c for k, c in enumerate(path) if c != 0 and (k == 0 or c != path[k - 1]))
            totals[labels] = np.logaddexp(totals.get(labels, -math.inf), sum(lp[t, c] for t, c in enumerate(path)))
        best = max(totals, key=totals.get)
        labels, score = search.decode(lp)
        assert tuple(labels) == best
        assert score == pytest.approx(totals[best], abs=1e-9)


def _textbook_beam(lp, beam, lm, lm_weight, bonus, prune):
    """CTC prefix beam search (Hannun et al. 2014) with a character LM as written in the paper,
    prefixes as tuples, no shortcuts: the specification the optimised search must match."""
    chars = "abcde"

    def lm_score(prefix, end=False):
        text = "".join(chars[c - 1] for c in prefix)
        steps = [lm.log_probs(lm.state(text[:k]))[lm.index[text[k]]] for k in range(len(text))]
        return lm_weight * (sum(steps) + (lm.log_probs(lm.state(text))[lm.eos] if end else 0)) + bonus * len(text)

    def add(nxt, prefix, b, nb):
        old_b, old_nb = nxt.get(prefix, (-math.inf, -math.inf))
        nxt[prefix] = (np.logaddexp(old_b, b), np.logaddexp(old_nb, nb))

    beams = {(): (0.0, -math.inf)}
    for frame in lp:
        nxt = {}
        for prefix, (pb, pnb) in beams.items():
            total = np.logaddexp(pb, pnb)
            add(nxt, prefix, total + frame[0], pnb + frame[prefix[-1]] if prefix else -math.inf)
            for c in range(1, len(frame)):
                if frame[c] >= math.log(prune):
                    add(nxt, prefix + (c,), -math.inf, (pb if prefix and c == prefix[-1] else total) + frame[c])
        ranked = sorted(nxt.items(), key=lambda kv: np.logaddexp(*kv[1]) + lm_score(kv[0]), reverse=True)
        beams = dict(ranked[:beam])
    best = max(beams, key=lambda p: np.logaddexp(*beams[p]) + lm_score(p, end=True))
    return list(best), float(np.logaddexp(*beams[best]) + lm_score(best, end=True))


@pytest.mark.parametrize(
    "beam, weight, bonus", [(1, 0.7, 0.3), (3, 0.7, 0.3), (8, 0.7, 0.3), (3, -0.4, 0.3), (8, 0.7, -1)]
)
def test_narrow_beam_with_lm_matches_the_textbook_search(tmp_path, beam, weight, bonus):
    """The optimised search (trie of prefixes, extensions that cannot reach the carried prefixes'
    floor never made, the bound on what an extension adds taken from the weights) returns what the
    plain algorithm returns, where the beam really prunes, whatever the weights' signs."""
    rng = np.random.default_rng(beam)
    lm = _lm(tmp_path, ["abc dab", "cab bad", "dead beef", "a bead"], order=3)
    alphabet = Alphabet("abcde")
    search = PrefixBeamSearch(alphabet, beam=beam, prune=0.01, lm_weight=weight, insertion_bonus=bonus, lm=lm)
    for _ in range(25):
        lp = _random_ctc(rng, 12, len(alphabet))
        labels, score = search.decode(lp)
        want, want_score = _textbook_beam(lp, beam, lm, weight, bonus, 0.01)
        assert labels == want
        assert score == pytest.approx(want_score, abs=1e-9)


def test_lm_distributions_sum_to_one(tmp_path):
    lm = _lm(tmp_path, ["the cat sat on the mat", "a hat", "that is that", "Mr. Brown's 3 hats"], order=4)
    for context in ["", "t", "th", "the", " ", "zzz", "Mr. B", "hats"]:
        assert np.exp(lm.log_probs(lm.state(context))).sum() == pytest.approx(1.0, abs=1e-5), context


def test_lm_beats_unigram_on_held_out_text(tmp_path):
    words = "the of and to in that it was his with as for had you not be her on at by which have or from this".split()
    rng = np.random.default_rng(2)
    lines = [" ".join(rng.choice(words, 8)) for _ in range(300)]
    train, held_out = lines[:250], lines[250:]
    assert _lm(tmp_path, train, 5).perplexity(held_out) < 0.7 * _lm(tmp_path, train, 1).perplexity(held_out)


def _frames(alphabet, dists) -> np.ndarray:
    """Log-probability frames from one {char or 0 (blank): probability} dict per frame."""
    lp = np.full((len(dists), len(alphabet)), -9.0)
    for t, dist in enumerate(dists):
        for k, p in dist.items():
            lp[t, alphabet.encode(k)[0] if isinstance(k, str) else 0] = math.log(p)
    return lp


def test_lm_helps_beam_search_pick_the_likely_word(tmp_path):
    alphabet = Alphabet("aceht ")
    lm = _lm(tmp_path, ["the cat the hat the cat"] * 20, order=4)
    # frames spell "the" but the middle frame is torn between 'h' and 'c'
    lp = _frames(alphabet, [{"t": 0.9}, {"c": 0.5, "h": 0.45}, {0: 0.9}, {"e": 0.9}, {0: 0.9}])
    plain = PrefixBeamSearch(alphabet, beam=8)
    with_lm = PrefixBeamSearch(alphabet, beam=8, lm_weight=1.0, lm=lm)
    assert alphabet.decode(plain.decode(lp)[0]) == "tce"
    assert alphabet.decode(with_lm.decode(lp)[0]) == "the"


def test_lexicon_only_emits_lexicon_words():
    rng = np.random.default_rng(3)
    alphabet = Alphabet("abno ")
    lexicon = Lexicon(["banana", "no", "a"])
    search = PrefixBeamSearch(alphabet, beam=16, prune=0, lexicon=lexicon)
    for _ in range(40):
        lp = _random_ctc(rng, 14, len(alphabet))
        labels, score = search.decode(lp)
        text = alphabet.decode(labels)
        assert all(w in lexicon.words for w in text.split()), text
    # with OOV allowed, the same frames may leave the lexicon
    free = PrefixBeamSearch(alphabet, beam=16, prune=0, oov_penalty=0.0)
    outputs = {alphabet.decode(free.decode(_random_ctc(rng, 14, len(alphabet)))[0]) for _ in range(40)}
    assert any(w not in lexicon.words for t in outputs for w in t.split())


def _spell(alphabet, text, frames_per_char=2, p=0.95):
    """Frames that spell ``text`` clearly: each character then a blank, each at probability p."""
    rest = math.log((1 - p) / (len(alphabet) - 1))
    rows = []
    for c in text:
        for label in [alphabet.encode(c)[0]] + [0] * (frames_per_char - 1):
            row = np.full(len(alphabet), rest)
            row[label] = math.log(p)
            rows.append(row)
    return np.array(rows)


def test_lexicon_with_an_oov_penalty_weighs_evidence_against_the_penalty():
    alphabet = Alphabet("abn ")
    lexicon = Lexicon(["ban", "a"])
    lp = _spell(alphabet, "nab ban")  # 'nab' is not in the lexicon, 'ban' is

    def read(oov_penalty):
        search = PrefixBeamSearch(alphabet, beam=16, prune=0, lexicon=lexicon, oov_penalty=oov_penalty)
        return alphabet.decode(search.decode(lp)[0])

    assert read(0.0) == "nab ban"  # free: the frames decide
    assert read(1.0) == "nab ban"  # a small penalty loses to strong evidence
    strict = read(None)  # lexicon words only
    assert all(w in lexicon.words for w in strict.split()) and "ban" in strict.split()
    assert read(200.0) == strict  # a penalty larger than any evidence acts like the strict lexicon


def test_lexicon_words_are_runs_of_letters():
    # Punctuation, digits and apostrophes stand between words, in text and in word lists alike.
    assert Lexicon.from_texts(["Dear Hooker, it's 1908."]).words == {"Dear", "Hooker", "it", "s"}
    assert Lexicon(["l'homme", "aujourd’hui", "1er", "12"]).words == {"l", "homme", "aujourd", "hui", "er"}
    with pytest.raises(HandwriteError, match="no words"):
        Lexicon(["1908", "--"])


def test_lexicon_prefixes_match_brute_force_and_the_cache_stays_bounded(monkeypatch):
    from handwrite import decoding

    monkeypatch.setattr(decoding, "PREFIX_CACHE_ENTRIES", 50)
    rng = np.random.default_rng(5)
    words = ["".join(rng.choice(list("abcé"), rng.integers(1, 6))) for _ in range(60)]
    lexicon = Lexicon(words)
    prefixes = {w[:k] for w in lexicon.words for k in range(len(w) + 1)}
    for text in {"".join(rng.choice(list("abcéz"), rng.integers(0, 7))) for _ in range(400)} | prefixes:
        assert lexicon.is_prefix(text) == (text in prefixes), text
        assert len(lexicon._prefix) <= 50


def test_word_lists_round_trip_plain_or_gzipped_and_bad_ones_name_their_file(tmp_path):
    lexicon = Lexicon(["été", "Hooker", "l'homme"])
    for name in ("words.txt", "words.txt.gz"):
        lexicon.save(tmp_path / name)
        assert Lexicon.load(tmp_path / name).words == lexicon.words
    assert (tmp_path / "words.txt.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "words.txt").read_text(encoding="utf-8") == "Hooker\nhomme\nl\nété\n"
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b not gzip")
    (tmp_path / "latin1.txt").write_bytes("été".encode("latin-1"))
    (tmp_path / "numbers.txt").write_text("1 2 3\n", encoding="utf-8")
    for name, problem in [("bad.gz", "cannot read"), ("latin1.txt", "cannot read"), ("numbers.txt", "no words")]:
        with pytest.raises(HandwriteError, match=f"{name}: .*{problem}"):
            Lexicon.load(tmp_path / name)
    with pytest.raises(HandwriteError, match="missing.txt: lexicon file not found"):
        Lexicon.load(tmp_path / "missing.txt")


def test_elided_and_numbered_words_read_from_their_parts():
    alphabet = Alphabet("abln'1 ")
    search = PrefixBeamSearch(alphabet, beam=16, prune=0, lexicon=Lexicon(["l'ban", "a"]))
    for text in ("l'ban a", "a 11 ban", "l'a"):
        assert alphabet.decode(search.decode(_spell(alphabet, text))[0]) == text


def test_lm_must_cover_model_alphabet(tmp_path):
    lm = _lm(tmp_path, ["abc abc"])
    with pytest.raises(HandwriteError, match="does not cover.*'z'"):
        PrefixBeamSearch(Alphabet("abcz "), lm_weight=1, lm=lm)


def test_lm_build_and_load_errors(tmp_path):
    with pytest.raises(HandwriteError, match="no text"):
        build_arpa(["", "  "], 3)
    with pytest.raises(HandwriteError, match="not found"):
        CharLM.load(tmp_path / "missing.arpa")
    (tmp_path / "bad.arpa").write_text("hello\n")
    with pytest.raises(HandwriteError, match="not an ARPA"):
        CharLM.load(tmp_path / "bad.arpa")


def test_gzipped_arpa_round_trip(tmp_path):
    write_arpa(tmp_path / "lm.arpa.gz", build_arpa(["hello world"], 3))
    lm = CharLM.load(tmp_path / "lm.arpa.gz")
    assert lm.score("hello world") > lm.score("dlrow olleh")


def test_compiled_lm_is_the_same_model_and_refuses_junk(tmp_path):
    """`lm compile` writes the same distributions in a form that loads without parsing text."""
    from typer.testing import CliRunner

    from handwrite.cli import app

    texts = ["the cat sat on the mat", "a dog, a cat & 2 mice", "Dear Hooker, thank you."]
    arpa = tmp_path / "lm.arpa.gz"
    write_arpa(arpa, build_arpa(texts, 4))
    r = CliRunner().invoke(app, ["lm", "compile", str(arpa), "-o", str(tmp_path / "lm.npz")])
    assert r.exit_code == 0, r.output
    a, b = CharLM.load(arpa), CharLM.load(tmp_path / "lm.npz")
    assert a.vocab == b.vocab and a.order == b.order
    for text in texts + ["unseen words here"]:
        sa, sb = a.state(""), b.state("")
        for c in text:
            assert np.array_equal(a.log_probs(sa), b.log_probs(sb))
            sa, sb = a.advance(sa, c), b.advance(sb, c)
    junk = tmp_path / "junk.npz"
    np.savez(junk, x=np.zeros(3))
    with pytest.raises(HandwriteError, match="junk.npz: not an ARPA or compiled language model"):
        CharLM.load(junk)


def test_extra_chars_get_a_probability_and_distributions_still_sum_to_one(tmp_path):
    path = tmp_path / "lm.arpa"
    write_arpa(path, build_arpa(["abc abc", "cab"], 3, chars="éz"))
    lm = CharLM.load(path)
    for context in ["", "a", "ab", "z", "é"]:
        vec = np.exp(lm.log_probs(lm.state(context)))
        assert vec.sum() == pytest.approx(1.0, abs=1e-5), context
        assert 0 < vec[lm.index["z"]] < vec[lm.index["a"]], context
    PrefixBeamSearch(Alphabet("abcéz "), lm_weight=1, lm=lm)  # covers the model now: no error


def test_lm_choice_decodes_each_document_with_the_lm_that_reads_it_best(tmp_path):
    from handwrite.config import DecoderSpec
    from handwrite.decoding import build_search

    alphabet = Alphabet("acdeghiot ")
    paths = []
    for name, text in (("en", "the cat the hat the cat"), ("other", "dog dig god dog")):
        paths.append(tmp_path / f"{name}.arpa")
        write_arpa(paths[-1], build_arpa([text] * 20, 4, chars=alphabet.chars))
    choice = build_search(DecoderSpec(decoder="beam", lm=[str(p) for p in paths], lm_weight=1.0), alphabet)
    assert len(choice.searches) == 2
    en, other = choice.searches
    # "the cat" with the 'h' torn between 'c' and 'h': greedy reads "tce cat", still English.
    torn = np.vstack([_frames(alphabet, [{"t": 0.9}, {"c": 0.5, "h": 0.45}, {0: 0.9}]), _spell(alphabet, "e cat")])
    assert alphabet.decode(greedy(torn[:, None, :], [len(torn)])[0][0]) == "tce cat"
    assert choice.choose(["tce cat"], [0]) == [0]
    assert alphabet.decode(en.decode(torn)[0]) == "the cat"
    assert choice.choose(["dog dig"], [0]) == [1]
    # The lines of a document share the LM that reads all of them best: "tog", a little likelier
    # under the other LM (0.6 nats a character), stays with its English page; "dog", far likelier
    # (4.3), is decoded with the other LM, and a second document chooses on its own.
    assert choice.choose(["tog"], [0]) == [1]
    assert choice.choose(["the cat the hat", "tog", "dog", "dig god"], ["p1", "p1", "p1", "p2"]) == [0, 0, 1, 1]
    choice.set_weights(0.25, 1.5, 4.0)
    assert all((s.lm_weight, s.insertion_bonus, s.oov_penalty) == (0.25, 1.5, 4.0) for s in choice.searches)


def test_one_search_needs_no_choice():
    from handwrite.config import DecoderSpec
    from handwrite.decoding import build_search

    search = build_search(DecoderSpec(decoder="beam"), Alphabet("ab"))
    assert len(search.searches) == 1 and search.choose(["a", "b"], [1, 2]) == [0, 0]
    assert build_search(DecoderSpec(decoder="greedy"), Alphabet("ab")) is None


def test_decoding_settings_with_several_lms_travel_with_the_model(tmp_path):
    from handwrite.config import DecoderSpec
    from handwrite.decoding import load_spec, save_spec

    assert DecoderSpec(lm=["one.npz"]).lm == "one.npz" and DecoderSpec(lm=[]).lm is None
    for bad in (["a.npz", 3], [None, None]):
        with pytest.raises(HandwriteError, match="lm must be a file name"):
            DecoderSpec(lm=bad)
    (tmp_path / "lms").mkdir()
    lms = [str(tmp_path / "lms" / "en.npz"), str(tmp_path / "lms" / "fr.npz")]
    saved = save_spec(tmp_path / "model.onnx", DecoderSpec(decoder="beam", lm=lms, lm_weight=0.75))
    assert '"lm": [\n  "lms/en.npz",\n  "lms/fr.npz"\n ]' in saved.read_text(encoding="utf-8")
    spec = load_spec(tmp_path / "model.onnx")
    assert spec.lm == lms and spec.lm_files == lms and spec.lm_weight == 0.75


def test_compiled_lms_of_the_first_format_still_load(tmp_path):
    """Format 1 stored contexts as token strings; format 2 stores their integer keys (faster to load)."""
    from handwrite.lm import SEP

    write_arpa(tmp_path / "lm.arpa", build_arpa(["the cat sat on the mat", "a hat"], 4))
    lm = CharLM.load(tmp_path / "lm.arpa")
    lm.save_compiled(tmp_path / "v2.npz")
    arrays = dict(np.load(tmp_path / "v2.npz"))
    assert str(arrays["format"]) == "handwrite-charlm-2" and "contexts" not in arrays
    names = [*arrays["tokens"].tolist(), "<s>"]
    contexts = [SEP.join(lm._tokens_of(int(k), names)) for k in arrays.pop("keys")]
    np.savez(tmp_path / "v1.npz", **arrays | {"format": np.array("handwrite-charlm-1"), "contexts": np.array(contexts)})
    for path in ("v1.npz", "v2.npz"):
        other = CharLM.load(tmp_path / path)
        assert other._context_index == lm._context_index, path
        for context in ["", "t", "the c", "zzz"]:
            assert np.array_equal(other.log_probs(other.state(context)), lm.log_probs(lm.state(context)))


def test_alignment_places_every_character_of_a_long_line():
    from handwrite.decoding import align

    alphabet = Alphabet("abc ")
    text = "abc " * 40  # 160 characters: the path runs through states past int8's range
    spans = align(_spell(alphabet, text), alphabet.encode(text))
    assert [first for first, _, _ in spans] == list(range(0, 2 * len(text), 2))
    assert all(last == first and conf > 0.9 for first, last, conf in spans)


def _row(w, b, *per_lm, oov=None):
    """A `tune_decoder` row for weights (w, b) (and OOV penalty) whose LMs' lines had (char_edits, chars) each."""
    from handwrite.metrics import ErrorCounts

    parts = [ErrorCounts(char_edits=e, chars=n, word_edits=e, words=n // 4, lines=n // 20) for e, n in per_lm]
    total = sum(parts, ErrorCounts())
    row = {"decoder": "beam", "lm_weight": w, "insertion_bonus": b, "oov_penalty": oov}
    return row | {"cer": total.cer, "wer": total.wer, "per_lm": [asdict(p) for p in parts]}


def test_tuning_gives_each_lm_the_weights_that_read_its_own_lines_best():
    """Which LM decodes a line does not depend on the weights, so each LM's lines are tuned apart:
    here the English lines read best at (0.5, 1.0) and the French ones at (0.5, 1.5), which no one
    row of the grid reads best together."""
    from handwrite.config import DecoderSpec
    from handwrite.decoding import best_setting

    base = DecoderSpec(decoder="beam", lm=["en.npz", "fr.npz"])
    greedy = {"decoder": "greedy", "lm_weight": None, "insertion_bonus": None, "cer": 0.2, "wer": 0.4}
    rows = [greedy, _row(0.5, 1.0, (90, 1000), (130, 1000)), _row(0.5, 1.5, (100, 1000), (110, 1000))]
    rows.append(_row(1.0, 1.0, (95, 1000), (140, 1000)))
    best, spec = best_setting(rows, base)
    assert spec.lm_weight == 0.5 and spec.insertion_bonus == [1.0, 1.5]  # equal values stay one number
    assert best["cer"] == pytest.approx((90 + 110) / 2000)
    assert spec.weights(0) == (0.5, 1.0) and spec.weights(1) == (0.5, 1.5)
    # An LM that decoded no line keeps the weights of the best row overall.
    rows = [greedy, _row(0.5, 1.0, (90, 1000), (0, 0)), _row(1.0, 1.5, (80, 1000), (0, 0))]
    assert best_setting(rows, base)[1].weights(1) == (1.0, 1.5)
    # Greedy still wins when it reads better than the best combination.
    rows = [greedy | {"cer": 0.05}, _row(0.5, 1.0, (90, 1000), (130, 1000))]
    assert best_setting(rows, base)[1].decoder == "greedy"


def test_tuning_takes_the_oov_penalty_whose_best_weights_read_best():
    """One penalty for all LMs: the one under which each LM's best weights together read best, even
    where another penalty has the best single row."""
    from handwrite.config import DecoderSpec
    from handwrite.decoding import best_setting

    base = DecoderSpec(decoder="beam", lm=["en.npz", "fr.npz"], lexicon=["en.words", "fr.words"], oov_penalty=5.0)
    greedy = {"decoder": "greedy", "lm_weight": None, "insertion_bonus": None, "cer": 0.2, "wer": 0.4}
    rows = [greedy, _row(0.5, 1.0, (100, 1000), (100, 1000), oov=2.0)]  # 200 wrong: the best single row
    rows += [_row(0.5, 1.0, (80, 1000), (130, 1000), oov=3.0), _row(0.5, 1.5, (130, 1000), (90, 1000), oov=3.0)]
    best, spec = best_setting(rows, base)
    assert spec.oov_penalty == 3.0 and spec.insertion_bonus == [1.0, 1.5]
    assert best["cer"] == pytest.approx((80 + 90) / 2000) and spec.lexicon == ["en.words", "fr.words"]


def test_weights_per_lm_are_checked_built_saved_and_averaged_for_other_lms(tmp_path):
    from handwrite.bundle import decoding
    from handwrite.config import DecoderSpec
    from handwrite.decoding import build_search, load_spec, save_spec

    with pytest.raises(HandwriteError, match="insertion_bonus: 2 values for 1 LMs"):
        DecoderSpec(lm="en.npz", insertion_bonus=[1.0, 1.5])
    with pytest.raises(HandwriteError, match="lm_weight"):
        DecoderSpec(lm=["a", "b"], lm_weight=[0.5, 200])
    alphabet = Alphabet("acdeghiot ")
    paths = []
    for name, text in (("en", "the cat the hat"), ("fr", "dog dig god")):
        paths.append(tmp_path / f"{name}.arpa")
        write_arpa(paths[-1], build_arpa([text] * 5, 3, chars=alphabet.chars))
    spec = DecoderSpec(decoder="beam", lm=[str(p) for p in paths], lm_weight=[0.5, 0.75], insertion_bonus=[1, 1.5])
    choice = build_search(spec, alphabet)
    assert [(s.lm_weight, s.insertion_bonus) for s in choice.searches] == [(0.5, 1), (0.75, 1.5)]
    save_spec(tmp_path / "model.onnx", spec)
    saved = load_spec(tmp_path / "model.onnx")
    assert saved.lm_weight == [0.5, 0.75] and saved.insertion_bonus == [1, 1.5]
    # Another number of LMs than the saved weights: each weight is their mean, unless given.
    one = decoding(tmp_path / "model.onnx", lm=str(paths[0]))
    assert (one.lm_weight, one.insertion_bonus) == (0.625, 1.25)
    assert decoding(tmp_path / "model.onnx", lm=str(paths[0]), lm_weight=0.3).lm_weight == 0.3
    assert decoding(tmp_path / "model.onnx").lm_weight == [0.5, 0.75]


def test_a_word_list_per_lm_is_checked_built_saved_and_dropped_for_other_lms(tmp_path):
    from handwrite.bundle import decoding
    from handwrite.config import DecoderSpec
    from handwrite.decoding import build_search, load_spec, save_spec

    with pytest.raises(HandwriteError, match="lexicon: 2 word lists for 1 LMs"):
        DecoderSpec(lm="en.npz", lexicon=["en.words", "fr.words"])
    with pytest.raises(HandwriteError, match="lexicon must be a file name"):
        DecoderSpec(lexicon=["en.words", 3])
    assert DecoderSpec(lexicon=["one.words"]).lexicon == "one.words"
    alphabet = Alphabet("acdeghiot ")
    lms, words = [], []
    for name, text in (("en", "the cat the hat"), ("fr", "dog dig god")):
        lms.append(str(tmp_path / f"{name}.arpa"))
        write_arpa(lms[-1], build_arpa([text] * 5, 3, chars=alphabet.chars))
        words.append(tmp_path / "lists" / f"{name}.words")
        words[-1].parent.mkdir(exist_ok=True)
        words[-1].write_text("\n".join(text.split()) + "\n", encoding="utf-8")
    spec = DecoderSpec(decoder="beam", lm=lms, lexicon=[str(w) for w in words], oov_penalty=2.0)
    choice = build_search(spec, alphabet)
    assert [s.lexicon.words for s in choice.searches] == [{"the", "cat", "hat"}, {"dog", "dig", "god"}]
    # One list serves every LM.
    shared = build_search(DecoderSpec(decoder="beam", lm=lms, lexicon=str(words[0])), alphabet)
    assert shared.searches[0].lexicon is shared.searches[1].lexicon
    saved_at = save_spec(tmp_path / "model.onnx", spec)
    assert '"lexicon": [\n  "lists/en.words",\n  "lists/fr.words"\n ]' in saved_at.read_text(encoding="utf-8")
    assert load_spec(tmp_path / "model.onnx").lexicon == [str(w) for w in words]
    # Given LMs of another number than the saved lists: those lists belonged to the saved LMs.
    one = decoding(tmp_path / "model.onnx", lm=lms[0])
    assert one.lexicon is None and one.lm == lms[0]
    assert decoding(tmp_path / "model.onnx", lm=lms[0], lexicon=[words[1]]).lexicon == str(words[1])
    assert decoding(tmp_path / "model.onnx", lm=lms[::-1]).lexicon == [str(w) for w in words]
