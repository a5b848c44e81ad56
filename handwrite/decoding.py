"""Turning per-frame class scores into text.

* Greedy (best-path) decoding: the most likely class in every frame, repeats
  merged, blanks dropped. Fast, and what most HTR tools ship.
* CTC prefix beam search (Hannun et al. 2014): keeps the ``beam`` most likely
  label prefixes, each with the probability of all frame paths that spell it
  (ending in blank or not), so alignments that greedy splits over several paths
  are added up. It can add a character language model (weight ``lm_weight``,
  per-character ``insertion_bonus``) and a lexicon that only lets lexicon words
  be completed (word beam search, Scheidl et al. 2018).

All arithmetic is in natural-log space.
"""

from __future__ import annotations

import bisect
import gzip
import json
import math
import os
import re
from collections.abc import Hashable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .codec import BLANK, Alphabet
from .config import DecoderSpec
from .errors import HandwriteError

NEG_INF = -math.inf


def _logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for Python floats: several times faster than np.logaddexp on scalars."""
    if a < b:
        a, b = b, a
    return a if b == NEG_INF else a + math.log1p(math.exp(b - a))


def read_as(log_probs: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """``log_probs`` (..., C) with the first label of each pair read as the second (``DecoderSpec.read_as``):
    its probability added to the second's, itself made impossible. A new array; the same one without pairs."""
    if not pairs:
        return log_probs
    out = np.array(log_probs)
    for src, dst in pairs:
        out[..., dst] = np.logaddexp(out[..., dst], out[..., src])
        out[..., src] = NEG_INF
    return out


def greedy(log_probs, lengths) -> list[tuple[list[int], float]]:
    """log_probs (T, N, C), lengths (N,) (numpy arrays, or anything np.asarray takes) -> per line:
    (labels, confidence).

    The confidence is the geometric mean of the chosen frames' probabilities:
    1.0 when the network is certain of every frame, lower as it hesitates.
    """
    log_probs = np.asarray(log_probs)
    best, idx = log_probs.max(-1), log_probs.argmax(-1)  # T, N
    out = []
    for n, t_len in enumerate(np.asarray(lengths).tolist()):
        path = idx[:t_len, n]
        keep = np.ones(len(path), dtype=bool)
        keep[1:] = path[1:] != path[:-1]
        labels = path[keep & (path != BLANK)].tolist()
        conf = float(np.exp(best[:t_len, n].astype(np.float64).mean())) if t_len else 0.0
        out.append((labels, conf))
    return out


def align(log_probs: np.ndarray, labels: list[int]) -> list[tuple[int, int, float]]:
    """Where each label of a decoded line lies: CTC forced alignment (Viterbi) of ``labels``
    over ``log_probs`` (T, C). Per label: (first frame, last frame, probability), the
    probability being the geometric mean of its frames' probabilities on the best path.

    Works for any decoder's output (beam search with an LM may spell a line greedy
    decoding would not), as long as the labels fit in the frames (CTC needs one frame
    per label plus one between repeats); labels that do not fit get frames spread evenly.
    """
    T = len(log_probs)
    if not labels:
        return []
    ext = [BLANK]
    for c in labels:
        ext += [c, BLANK]
    S = len(ext)
    repeats = sum(a == b for a, b in zip(labels, labels[1:]))
    if T < len(labels) + repeats:
        step = T / len(labels)
        return [(int(k * step), max(int(k * step), int((k + 1) * step) - 1), 0.0) for k in range(len(labels))]
    emit = log_probs[:, ext]  # T, S
    score = np.full(S, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((T, S), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    skip_ok = np.array([s >= 2 and ext[s] != BLANK and ext[s] != ext[s - 2] for s in range(S)])
    for t in range(1, T):
        stay = score
        one = np.concatenate([[-np.inf], score[:-1]])
        two = np.where(skip_ok, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        choice = np.argmax(np.stack([stay, one, two]), axis=0)
        score = np.stack([stay, one, two])[choice, np.arange(S)] + emit[t]
        back[t] = choice
    s = S - 1 if score[S - 1] >= score[S - 2] else S - 2
    path = [0] * T
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= int(back[t, s])  # an int8 would take s with it: NumPy 2 overflows at 128 (lines of 64+ characters)
    spans: list[list] = [[None, None, 0.0] for _ in labels]
    for t, s in enumerate(path):
        if s % 2 == 1:
            k = s // 2
            spans[k][0] = t if spans[k][0] is None else spans[k][0]
            spans[k][1] = t
            spans[k][2] += float(log_probs[t, ext[s]])
    return [(a, b, math.exp(lp / (b - a + 1))) for a, b, lp in spans]


# Prefix answers a lexicon keeps (a few dozen bytes each): the partial words a document's lines try recur.
PREFIX_CACHE_ENTRIES = 200_000


class Lexicon:
    """Words that may be completed. A word is a maximal run of letters; everything else (spaces,
    digits, punctuation, apostrophes) may stand between words freely, and an entry of the list is
    cut into words the same way (``l'homme`` gives ``l`` and ``homme``, ``don't`` ``don`` and ``t``).

    Why apostrophes and digits separate: French elides before any vowel (``l'``, ``d'``, ``qu'``
    ...), so with whole forms a word list would need every elided form of every word; and numbers
    (dates, sums, folios) are open-ended. Measured with the shipped network and LMs (2026-11-30,
    beam 16): apostrophes inside words or not, the same CER to 0.02 point (``iam-hooker`` and
    ``copiste-fr`` validation, word lists of their training text); digits inside words or not
    (the shipped word lists, OOV penalty 3), ``iam-hooker`` validation 14.57 -> 14.55 % CER,
    ``copiste-fr`` 9.42 -> 9.37, *Poilus* 11.97 -> 11.95, LECTAUREP's registers 29.81 -> 29.72."""

    WORD = re.compile(r"[^\W\d_]+")

    def __init__(self, words):
        tokens = []
        for w in words:  # most entries are one word already: the regex only for the others
            tokens += [w] if w.isalpha() else self.WORD.findall(w)
        if not tokens:
            raise HandwriteError("the lexicon holds no words")
        self.words = frozenset(tokens)
        # Prefixes are looked up in the sorted words as the search asks for them, and remembered: the
        # set of every prefix of the shipped lists (150,000 words each) took 0.23 s a list to build,
        # more than the rest of a one-line transcription's start-up. (Sorting is linear on a saved list.)
        self._sorted = sorted(tokens)
        self._prefix: dict[str, bool] = {}
        self.word_chars = set("".join(self.words))

    def is_prefix(self, text: str) -> bool:
        """Whether some word of the lexicon starts with ``text``."""
        known = self._prefix.get(text)
        if known is None:
            if len(self._prefix) >= PREFIX_CACHE_ENTRIES:
                self._prefix.clear()
            at = bisect.bisect_left(self._sorted, text)
            known = self._prefix[text] = at < len(self._sorted) and self._sorted[at].startswith(text)
        return known

    @classmethod
    def from_texts(cls, texts) -> Lexicon:
        return cls(w for t in texts for w in cls.WORD.findall(t))

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """A word list file: words separated by white space, UTF-8, plain or gzipped."""
        path = Path(path)
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8-sig")
        except FileNotFoundError:
            raise HandwriteError(f"{path}: lexicon file not found") from None
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise HandwriteError(f"{path}: cannot read lexicon ({e})") from None
        try:
            return cls(text.split())
        except HandwriteError as e:
            raise HandwriteError(f"{path}: {e}") from None

    def save(self, path: str | Path) -> None:
        """One word a line, sorted; gzipped when the name ends in .gz (no time stamp, so that the
        same words make the same file)."""
        from .atomic import atomic_write

        data = ("\n".join(sorted(self.words)) + "\n").encode("utf-8")
        if str(path).endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        atomic_write(Path(path), lambda f: f.write(data))


class PrefixBeamSearch:
    """CTC prefix beam search over one line's frames, with an optional LM and lexicon.

    ``lm_weight`` (alpha) weighs the LM's log-probability, ``insertion_bonus`` (beta) is added per
    character to offset the LM's bias to short outputs, characters below ``prune`` probability in
    a frame are not tried there, and with a lexicon ``oov_penalty`` is the log-penalty per word
    outside it (None forbids them). No upper bound on ``beam`` here: the tests use exhaustive
    searches; user input goes through :class:`~handwrite.config.DecoderSpec`, which has one."""

    def __init__(
        self,
        alphabet: Alphabet,
        beam: int = DecoderSpec.beam,
        lm_weight: float = 0.0,
        insertion_bonus: float = 0.0,
        prune: float = 1e-3,
        oov_penalty: float | None = None,
        lm=None,
        lexicon: Lexicon | None = None,
    ):
        self.alphabet, self.lm, self.lexicon = alphabet, lm, lexicon
        self.beam, self.lm_weight, self.insertion_bonus = beam, lm_weight, insertion_bonus
        self.oov_penalty = oov_penalty
        self.log_prune = math.log(prune) if prune > 0 else NEG_INF
        if lm is not None:
            missing = [c for c in alphabet.chars if c != " " and c not in lm.index] + (
                [" "] if " " in alphabet.chars and "<space>" not in lm.index else []
            )
            if missing:
                shown = "".join(sorted(missing))
                raise HandwriteError(
                    f"the language model does not cover the model's characters {shown!r}; rebuild it from text that has them"
                )
            # label index -> LM vocabulary index (label 0, the blank, is never looked up)
            self.lm_ids = np.array([0] + [lm.index["<space>" if c == " " else c] for c in alphabet.chars])
        if lexicon is not None:
            self.is_word_char = np.array([False] + [c in lexicon.word_chars for c in alphabet.chars])

    def set_weights(self, lm_weight: float, insertion_bonus: float, oov_penalty: float | None) -> None:
        """New alpha, beta and OOV penalty, keeping the LM, its cache and the lexicon (what `lm tune`
        tries in turn)."""
        self.lm_weight, self.insertion_bonus, self.oov_penalty = lm_weight, insertion_bonus, oov_penalty

    def decode(self, log_probs: np.ndarray) -> tuple[list[int], float]:
        """log_probs (T, C) of one line -> (labels, score of the best prefix).

        Prefixes are nodes of a trie (node 0: the empty prefix; node k is node ``parent[k]``
        extended by ``label[k]``), so beams are keyed by small integers: keyed by label tuples,
        hashing and copying ever longer tuples took a third of the time. A node's LM state is
        worked out only when the node is extended or ends the line: most never are.
        """
        lm, chars = self.lm, self.alphabet.chars
        parent, label, word = [-1], [BLANK], [""]
        score = [0.0]  # LM + bonus + OOV score of each node
        states = [lm.state("") if lm else None]  # None: not worked out yet
        # Per node, once asked for: what each next label adds to the score (LM and bonus).
        no_lm = np.full(log_probs.shape[1], self.insertion_bonus)
        ext_rows: list = [None]
        child: dict[tuple[int, int], int] = {}

        def lm_state(k: int):
            if states[k] is None:
                states[k] = lm.advance(states[parent[k]], chars[label[k] - 1])  # the parent's is known
            return states[k]

        def ext_row(k: int) -> np.ndarray:
            if lm is None:
                return no_lm
            if ext_rows[k] is None:
                ext_rows[k] = self.lm_weight * lm.log_probs(lm_state(k))[self.lm_ids] + self.insertion_bonus
            return ext_rows[k]

        # The most an extension adds to its parent's score: the bonus, as LM log-probabilities and OOV
        # penalties are never positive (with a negative LM weight there is no such bound).
        ceiling = self.insertion_bonus if lm is None or self.lm_weight >= 0 else math.inf
        # node -> [log P(prefix, ends in blank), log P(prefix, ends in a label)]
        beams: dict[int, list[float]] = {0: [0.0, NEG_INF]}
        for frame_np in log_probs:
            cands = np.nonzero(frame_np >= self.log_prune)[0]
            cands = cands[cands != BLANK]
            frame = frame_np.tolist()  # Python floats: scalar reads from numpy cost more than the math
            blank = frame[BLANK]
            # The prefixes carried over (ending in blank, or repeating their last label) come first;
            # their ranks can only grow in this frame, so the beam-th best of them is a floor: an
            # extension of a prefix not in the beam gets exactly one contribution (from its parent),
            # and if that ranks below the floor it cannot make the beam and is not even made.
            nxt: dict[int, list[float]] = {}
            for node, (pb, pnb) in beams.items():
                nxt[node] = [_logaddexp(pb, pnb) + blank, pnb + frame[label[node]] if node else NEG_INF]
            floor = NEG_INF
            if len(nxt) >= self.beam and cands.size:
                floor = sorted((_logaddexp(*e) + score[n] for n, e in nxt.items()), reverse=True)[self.beam - 1]
            for node, (pb, pnb) in beams.items():
                if cands.size == 0:
                    break
                total = _logaddexp(pb, pnb)
                last = label[node] if node else None
                base = score[node]
                bonuses = None  # the LM's row is looked up only if an extension may make the beam
                for i, c in enumerate(cands.tolist()):
                    acoustic = (pb if c == last else total) + frame[c]
                    new = child.get((node, c))
                    if new is None or new not in beams:
                        # A bound checked first, cheaply: an extension adds at most `ceiling` to its parent's
                        # score, so one that ranks below the floor even so is never made (nor the LM asked).
                        if acoustic + base + ceiling < floor:
                            continue
                        if new is None:
                            step = self._extend(word[node], c)
                            if step is None:
                                continue  # the lexicon forbids this character here
                            if bonuses is None:
                                bonuses = ext_row(node)[cands].tolist()
                            new_score = base + bonuses[i] + step[1]
                            if acoustic + new_score < floor:
                                continue
                            new = child[node, c] = len(parent)
                            parent.append(node)
                            label.append(c)
                            word.append(step[0])
                            score.append(new_score)
                            states.append(None)
                            ext_rows.append(None)
                        elif acoustic + score[new] < floor:
                            continue
                    e = nxt.get(new)
                    if e is None:
                        nxt[new] = [NEG_INF, acoustic]  # _logaddexp(NEG_INF, x) is x
                    else:
                        e[1] = _logaddexp(e[1], acoustic)
            if len(nxt) > self.beam:  # else all stay (most frames: blank everywhere, nothing extended)
                ranked = sorted(nxt.items(), key=lambda item: _logaddexp(*item[1]) + score[item[0]], reverse=True)
                nxt = dict(ranked[: self.beam])
            beams = nxt

        best, best_score = 0, NEG_INF
        for node, (pb, pnb) in beams.items():
            penalty = self._close_word(word[node])
            if penalty is None:
                continue
            end = self.lm_weight * lm.log_probs(lm_state(node))[lm.eos] if lm is not None else 0.0
            s = _logaddexp(pb, pnb) + score[node] + penalty + end
            if s > best_score:
                best, best_score = node, s
        labels = []
        while best:
            labels.append(label[best])
            best = parent[best]
        return labels[::-1], float(best_score)

    def _extend(self, word: str, label: int) -> tuple[str, float] | None:
        """(partial word, added penalty) after appending ``label``; None if the lexicon forbids it.

        A word is charged the OOV penalty at the character where it leaves the lexicon's prefixes,
        not when it ends: charged at its end, a word the beam should drop would rank as if free
        until then, and the search would rather defer the charge (by gluing words together) than
        keep the in-lexicon reading alive."""
        if self.lexicon is None:
            return "", 0.0
        if self.is_word_char[label]:
            longer = word + self.alphabet.chars[label - 1]
            if self.lexicon.is_prefix(longer):
                return longer, 0.0
            if self.oov_penalty is None:
                return None
            leaving = self.lexicon.is_prefix(word)  # else it left earlier and was charged then
            return longer, -self.oov_penalty if leaving else 0.0
        penalty = self._close_word(word)
        return None if penalty is None else ("", penalty)

    def _close_word(self, word: str) -> float | None:
        """Penalty for ending the partial word here: 0 for a lexicon word, for none, or for a word
        already charged when it left the lexicon; -oov_penalty for a lexicon prefix that is not a
        word, where other words are allowed; None where they are not."""
        if self.lexicon is None or not word or word in self.lexicon.words or not self.lexicon.is_prefix(word):
            return 0.0
        return None if self.oov_penalty is None else -self.oov_penalty


# Nats per character by which a line's own greedy reading must prefer another LM to its document's
# to be decoded with it. Measured with the shipped model and LMs (2026-11-30), the English-minus-French
# margin per character: iam-hooker validation lines, 1st percentile -0.84; French validation sets,
# 99th percentiles +0.08 to +0.24; the 8 French lines among the 24 English ones of data/samples, -0.93
# to -2.43. 0.5, 0.75 and 1.0 all left the sets of one language within 0.1 point of no switching.
SWITCH_MARGIN = 0.75


class LMChoice:
    """The beam searches to decode with, one per LM (one LM per language, say; one search with
    one LM or none is the plain case): the lines of one document are decoded by the search whose
    LM gives their greedy readings together the highest probability, but for a line that another
    LM reads far better on its own (``SWITCH_MARGIN``).

    Why the greedy reading decides: it costs one LM pass, not a beam search per LM. Why per
    document rather than per line: a misread line is a poor witness of its language, a page of
    them a good one, and a writer does not switch language line by line. Measured with the
    shipped model (2026-11-30), line-by-line choice gave the French LM to 53 of 639 ``iam-hooker``
    validation lines (mostly short names and numbers, where the two LMs differ least)."""

    def __init__(self, searches: Sequence[PrefixBeamSearch]):
        self.searches = list(searches)

    def choose(self, readings: Sequence[str], documents: Sequence[Hashable]) -> list[int]:
        """Per line (its greedy reading and the document it belongs to), the index of the search
        to decode it with: its document's, unless the line's own reading is more likely under
        another LM by more than ``SWITCH_MARGIN`` per character (a French line in a folder of
        English ones)."""
        if len(self.searches) == 1:
            return [0] * len(readings)
        scores = np.array([[s.lm.score(text) for s in self.searches] for text in readings])
        totals: dict[Hashable, np.ndarray] = {}
        for row, doc in zip(scores, documents):
            totals[doc] = totals.get(doc, 0) + row
        chosen = []
        for text, row, doc in zip(readings, scores, documents):
            mine, theirs = int(np.argmax(row)), int(np.argmax(totals[doc]))
            chosen.append(mine if (row[mine] - row[theirs]) / (len(text) + 1) > SWITCH_MARGIN else theirs)
        return chosen

    def set_weights(self, lm_weight: float, insertion_bonus: float, oov_penalty: float | None) -> None:
        for search in self.searches:
            search.set_weights(lm_weight, insertion_bonus, oov_penalty)


def build_search(spec: DecoderSpec, alphabet: Alphabet) -> LMChoice | None:
    """The beam searches a spec describes (one per LM), or None for greedy decoding. Files are
    read here, so a spec can travel to worker processes and each builds its own searches there."""
    if spec.decoder == "greedy":
        return None
    from .lm import CharLM

    lexicons = {f: Lexicon.load(f) for f in spec.lexicon_files}
    searches = [
        PrefixBeamSearch(
            alphabet,
            beam=spec.beam,
            lm_weight=spec.weights(i)[0] if lm is not None else 0.0,
            insertion_bonus=spec.weights(i)[1],
            prune=spec.prune,
            oov_penalty=spec.oov_penalty,
            lm=lm,
            lexicon=lexicons.get(spec.lexicon_of(i)),
        )
        for i, lm in enumerate([CharLM.load(f) for f in spec.lm_files] or [None])
    ]
    return LMChoice(searches)


def spec_path(model_path: Path) -> Path:
    """Where a model's saved decoding settings live: beside it, as <model>.decoding.json."""
    return Path(model_path).with_name(Path(model_path).name + ".decoding.json")


def load_spec(model_path: Path) -> DecoderSpec | None:
    path = spec_path(model_path)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        spec = DecoderSpec(**raw)
    except (OSError, ValueError, TypeError) as e:
        raise HandwriteError(f"{path}: not a decoding settings file ({e})") from None
    except HandwriteError as e:
        raise HandwriteError(f"{path}: {e}") from None
    # Files named in it are relative to it, so model, LM and settings move together.
    return replace(
        spec,
        lm=[str(path.parent / f) for f in spec.lm_files],
        lexicon=[str(path.parent / f) for f in spec.lexicon_files],
    )


def save_spec(model_path: Path, spec: DecoderSpec) -> Path:
    from .atomic import atomic_write

    path = spec_path(model_path)

    def relative(name: str) -> str:
        return os.path.relpath(Path(name).resolve(), path.parent.resolve())

    def files(names: list[str]) -> str | list[str] | None:
        names = [relative(f) for f in names]
        return names if len(names) > 1 else (names[0] if names else None)

    raw = asdict(spec) | {"lm": files(spec.lm_files), "lexicon": files(spec.lexicon_files)}
    atomic_write(path, lambda f: f.write((json.dumps(raw, indent=1) + "\n").encode("utf-8")))
    return path


def tune_decoder(
    recognizer,
    records: Sequence,
    base: DecoderSpec,
    weights: Sequence[float],
    bonuses: Sequence[float],
    progress=None,
    penalties: Sequence[float | None] | None = None,
) -> list[dict]:
    """CER/WER on ``records`` for every (OOV penalty, LM weight, insertion bonus), greedy first;
    ``penalties`` (with a lexicon; default: ``base``'s one) are the outer loop. With several LMs,
    each row also has ``per_lm``: the counts of the lines each LM decoded.

    The network runs once; only the search is repeated, sharing one LM and its cache. An
    unreadable line counts as an empty hypothesis (all its characters wrong), as in evaluation.
    Which LM decodes a line does not depend on the weights, so each LM's lines can be tuned apart.
    """
    from .metrics import ErrorCounts

    # In chunks, so that only the frames (not every decoded image) are held at once.
    from .recognize import STREAM_CHUNK

    alphabet = recognizer.alphabet
    search = build_search(replace(base, decoder="beam"), alphabet)
    frames, which = {}, {}
    for start in range(0, len(records), STREAM_CHUNK):
        chunk = records[start : start + STREAM_CHUNK]
        _, part = recognizer.frames([r.image for r in chunk])
        frames.update({start + k: v for k, v in part.items()})
        # The LM of each page or folder, chosen chunk by chunk as evaluation does (weights do not change it).
        readings = [alphabet.decode(f.labels) for f in part.values()]
        which.update(zip([start + k for k in part], search.choose(readings, [chunk[k].document for k in part])))
    counts = ErrorCounts()
    for k, rec in enumerate(records):
        counts.add(rec.text, alphabet.decode(frames[k].labels) if k in frames else "")
    rows = [{"decoder": "greedy", "lm_weight": None, "insertion_bonus": None, "cer": counts.cer, "wer": counts.wer}]
    for penalty in penalties or [base.oov_penalty]:
        for w in weights:
            for bonus in bonuses:
                search.set_weights(w, bonus, penalty)
                per_lm = [ErrorCounts() for _ in search.searches]
                for k, rec in enumerate(records):
                    # An unreadable line goes to the first LM's count: it is wrong whatever the weights.
                    hyp = search.searches[which[k]].decode(frames[k].log_probs)[0] if k in frames else []
                    per_lm[which.get(k, 0)].add(rec.text, alphabet.decode(hyp))
                counts = sum(per_lm, ErrorCounts())
                row = {"decoder": "beam", "lm_weight": w, "insertion_bonus": bonus, "oov_penalty": penalty}
                row |= {"cer": counts.cer, "wer": counts.wer}
                if len(per_lm) > 1:
                    row["per_lm"] = [asdict(c) for c in per_lm]
                rows.append(row)
                if progress:
                    progress(1)
    return rows


def best_setting(rows: Sequence[dict], base: DecoderSpec) -> tuple[dict, DecoderSpec]:
    """The row of ``tune_decoder`` to keep, and the decoder settings it stands for.

    An LM of other text can hurt; the user asked for this LM, so greedy wins only when strictly better.
    With several LMs each takes the weights that read its own lines best, under the one OOV penalty
    that reads all lines best so.
    """
    penalties = dict.fromkeys(r["oov_penalty"] for r in rows[1:])
    best = min(
        (_best_weights([r for r in rows[1:] if r["oov_penalty"] == p]) for p in penalties),
        key=lambda r: (r["cer"], r["wer"]),
    )
    if (rows[0]["cer"], rows[0]["wer"]) < (best["cer"], best["wer"]):
        return rows[0], base.reading()
    chosen = {k: best[k] for k in ("lm_weight", "insertion_bonus", "oov_penalty")}
    return best, replace(base, **chosen)


def _best_weights(rows: Sequence[dict]) -> dict:
    """The best of beam rows of one OOV penalty: with several LMs, a row made of each LM's best weights."""
    best = min(rows, key=lambda r: (r["cer"], r["wer"]))
    if "per_lm" not in best:
        return best
    from .metrics import ErrorCounts

    # Each LM decodes the same lines in every row; one that decoded none keeps the best row's weights.
    picks = [
        min(rows, key=lambda r, i=i: (r["per_lm"][i]["char_edits"], r["per_lm"][i]["word_edits"]))
        if best["per_lm"][i]["lines"]
        else best
        for i in range(len(best["per_lm"]))
    ]
    counts = sum((ErrorCounts(**pick["per_lm"][i]) for i, pick in enumerate(picks)), ErrorCounts())
    return {
        "decoder": "beam",
        "lm_weight": [pick["lm_weight"] for pick in picks],
        "insertion_bonus": [pick["insertion_bonus"] for pick in picks],
        "oov_penalty": best["oov_penalty"],
        "cer": counts.cer,
        "wer": counts.wer,
    }
