"""Character n-gram language models: built with interpolated Kneser-Ney, stored as ARPA.

Why Kneser-Ney: its lower orders count in how many *different* contexts a
string appears, not how often, so a frequent fragment that only ever follows
one prefix ("ooker" after "JDH") does not inflate the back-off estimate. It is
the smoothing that gives the lowest perplexity on character n-grams in the
HTR literature, and the one KenLM and SRILM default to; Witten-Bell is
simpler but measurably worse at orders 6-8.

Why ARPA: it is the documented text format every LM toolkit reads and
writes (KenLM, SRILM, PyLaia's decoders), it loads without executing code,
and an interpolated model is exactly representable in it: each seen n-gram
carries its interpolated probability and each context its interpolation weight
as the back-off weight. Characters are tokens; the space is written
``<space>`` (as in PyLaia's symbol tables), lines start with ``<s>`` and end
with ``</s>``.
"""

from __future__ import annotations

import gzip
import io
import math
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .datasets import normalize_text
from .errors import HandwriteError

BOS, EOS, SPACE = "<s>", "</s>", "<space>"
# Format 2 stores each context as its integer key where keys fit in 64 bits (orders up to 8 or so);
# format 1, still read, stored contexts as token strings, whose keys took 0.4 s of a 0.5 s load to work out.
COMPILED_FORMAT = "handwrite-charlm-2"
READABLE_FORMATS = ("handwrite-charlm-1", COMPILED_FORMAT)
SEP = "\x1f"  # joins a context's tokens in compiled files; never a token itself
LN10 = math.log(10.0)


def _token(c: str) -> str:
    return SPACE if c == " " else c


def _char(tok: str) -> str:
    return " " if tok == SPACE else tok


def build_arpa(lines: Iterable[str], order: int, chars: Iterable[str] = ()) -> str:
    """Interpolated Kneser-Ney over characters; returns the model as ARPA text.

    ``chars``: characters to give a probability even where the text has none (they share the
    uniform floor of the unigrams), so that an LM of one language's text can decode a model
    that also writes another's accented letters."""
    if order < 1:
        raise HandwriteError("n-gram order must be at least 1")
    counts: list[dict[tuple, int]] = [defaultdict(int) for _ in range(order + 1)]
    n_lines = 0
    for line in lines:
        line = normalize_text(line)  # other whitespace than single spaces cannot be an ARPA token
        if not line:
            continue
        n_lines += 1
        toks = [BOS] * max(order - 1, 1) + [_token(c) for c in line] + [EOS]
        start = max(order - 1, 1)
        for i in range(start, len(toks)):
            for k in range(1, order + 1):
                if i - k + 1 < 0:
                    break
                gram = tuple(toks[i - k + 1 : i + 1])
                # Several leading <s> only pad the history; keep one so that short
                # line starts are n-grams of their true length, as in ARPA files.
                if gram.count(BOS) > 1:
                    break
                counts[k][gram] += 1
    if n_lines == 0:
        raise HandwriteError("no text to build a language model from (all training text is empty)")

    # Lower orders use continuation counts: in how many contexts does the n-gram
    # occur? N-grams starting with <s> have no left context, so keep raw counts.
    eff: list[dict[tuple, int]] = [dict() for _ in range(order + 1)]
    eff[order] = dict(counts[order])
    for k in range(order - 1, 0, -1):
        cont: dict[tuple, int] = defaultdict(int)
        for gram in counts[k + 1]:
            cont[gram[1:]] += 1
        eff[k] = {g: (c if g[0] == BOS else cont.get(g, 0)) for g, c in counts[k].items()}
        eff[k] = {g: c for g, c in eff[k].items() if c > 0}

    vocab = sorted({g[0] for g in eff[1] if g[0] != BOS} | {_token(c) for c in chars})
    discounts = []
    for k in range(order + 1):
        n1 = sum(1 for c in eff[k].values() if c == 1)
        n2 = sum(1 for c in eff[k].values() if c == 2)
        discounts.append(n1 / (n1 + 2 * n2) if n1 and n2 else 0.5)

    # Per context: total count and number of distinct continuations, per order.
    totals: list[dict[tuple, int]] = [defaultdict(int) for _ in range(order + 1)]
    types: list[dict[tuple, int]] = [defaultdict(int) for _ in range(order + 1)]
    for k in range(1, order + 1):
        for g, c in eff[k].items():
            totals[k][g[:-1]] += c
            types[k][g[:-1]] += 1

    prob: list[dict[tuple, float]] = [dict() for _ in range(order + 1)]
    bow: list[dict[tuple, float]] = [dict() for _ in range(order + 1)]
    uniform = 1.0 / len(vocab)
    d1, t1 = discounts[1], totals[1][()]
    gamma1 = d1 * types[1][()] / t1
    for w in vocab:
        prob[1][(w,)] = max(eff[1].get((w,), 0) - d1, 0) / t1 + gamma1 * uniform

    def lower(gram: tuple) -> float:
        """P(w | shorter history) by back-off through what is already computed."""
        k = len(gram)
        if gram in prob[k]:
            return prob[k][gram]
        return bow[k - 1].get(gram[:-1], 1.0) * lower(gram[1:])

    for k in range(2, order + 1):
        d = discounts[k]
        for h, total in totals[k].items():
            bow[k - 1][h] = d * types[k][h] / total
        for g, c in eff[k].items():
            h = g[:-1]
            prob[k][g] = max(c - d, 0) / totals[k][h] + bow[k - 1][h] * lower(g[1:])

    out = ["", "\\data\\"]
    entries = [[] for _ in range(order + 1)]
    entries[1].append(f"-99\t{BOS}\t{math.log10(bow[1][(BOS,)]) if (BOS,) in bow[1] else 0.0:.6f}")
    for k in range(1, order + 1):
        for g, p in sorted(prob[k].items()):
            line = f"{math.log10(p):.6f}\t{' '.join(g)}"
            if k < order and g in bow[k]:
                line += f"\t{math.log10(bow[k][g]):.6f}"
            entries[k].append(line)
    for k in range(1, order + 1):
        out.append(f"ngram {k}={len(entries[k])}")
    for k in range(1, order + 1):
        out += ["", f"\\{k}-grams:", *entries[k]]
    out += ["", "\\end\\", ""]
    return "\n".join(out)


def write_arpa(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write(path, lambda f: f.write(data))


# Distributions kept for reuse (about 2 kB each): common contexts recur across lines. Unbounded, the
# cache grew by ~160 entries a line and took eval's memory past 450 MB in 1,000 lines; the beam search
# now asks for ~35 a line, and 10,000 kept it within ~10 % of unbounded speed.
CACHE_ENTRIES = 10_000


class CharLM:
    """An ARPA character model, queried as whole distributions over a fixed vocabulary.

    ``log_probs(context)`` returns natural-log P(c | context) for every index of
    ``vocab`` (the characters followed by ``</s>``) as one numpy vector, cached per
    context, so a beam search scores all extensions of a prefix at once.

    Contexts live in flat arrays: context number i has back-off weight ``backoff[i]``
    and lists explicit log-probabilities ``logp[offsets[i]:offsets[i+1]]`` for the
    vocabulary indices ``ids[offsets[i]:offsets[i+1]]``. ``save_compiled`` writes
    exactly these arrays (numpy .npz, no pickles), which load ~8x faster than ARPA
    text: what keeps a one-line ``transcribe`` with the LM under 3 s. ``contexts`` are token
    tuples, or already keys (ints) when ``keyed``.

    A context (and a state: the last order-1 tokens) is one integer, its tokens as
    digits in base ``len(tokens) + 3``, the newest last: the last k tokens are then
    ``key % base**k``, and advancing a state is arithmetic. Indexed by tuples of
    token strings instead, the 199k contexts of the shipped LM took 60 MB of memory.
    """

    def __init__(
        self,
        order: int,
        tokens: list[str],
        unigram: np.ndarray,
        contexts: Iterable[tuple],
        backoff: np.ndarray,
        ids: np.ndarray,
        logp: np.ndarray,
        offsets: np.ndarray,
        keyed: bool = False,
    ):
        if not tokens or tokens[-1] != EOS:
            raise ValueError("the model has no </s> unigram")
        if not (len(backoff) == len(offsets) - 1 and len(ids) == len(logp) == offsets[-1]):
            raise ValueError("inconsistent context arrays")
        self.order = order
        self.vocab = [_char(t) for t in tokens[:-1]] + [EOS]
        self.index = {t: i for i, t in enumerate(tokens)}
        self.eos = len(self.vocab) - 1
        self.unigram = unigram
        self._tokens = tokens
        # Digit of each token: index + 1 (0 is no digit, so that keys of different lengths differ);
        # <s> and an unknown token (never in a context: looked up, it finds nothing) come after them.
        self._digit = {t: i + 1 for i, t in enumerate(tokens)} | {BOS: len(tokens) + 1}
        self._unknown = len(tokens) + 2
        self._base = len(tokens) + 3
        self._state_mod = self._base ** (order - 1)
        keys = contexts if keyed else (self._key(g) for g in contexts)
        self._context_index = {key: i for i, key in enumerate(keys)}
        if len(self._context_index) != len(backoff):
            raise ValueError("inconsistent context arrays")
        self._backoff, self._ids, self._logp, self._offsets = backoff, ids, logp, offsets
        self._cache: dict[int, np.ndarray] = {}

    @classmethod
    def from_arpa(cls, text: str) -> CharLM:
        order, unigrams, backoff, explicit = _parse_arpa(text)
        tokens = sorted(set(unigrams) - {BOS, EOS}) + [EOS]
        index = {t: i for i, t in enumerate(tokens)}
        unigram = np.full(len(tokens), -np.inf)
        for t, p in unigrams.items():
            if t != BOS:
                unigram[index[t]] = p
        contexts = list(backoff)
        ids, logp, offsets = [], [], [0]
        for g in contexts:
            for t, p in explicit.get(g, ()):
                ids.append(index[t])
                logp.append(p)
            offsets.append(len(ids))
        return cls(
            order,
            tokens,
            unigram,
            contexts,
            np.array([backoff[g] for g in contexts]),
            np.array(ids, dtype=np.int32),
            np.array(logp),
            np.array(offsets, dtype=np.int64),
        )

    def _key(self, tokens: Sequence[str]) -> int:
        key = 0
        for t in tokens:
            key = key * self._base + self._digit.get(t, self._unknown)
        return key

    def _tokens_of(self, key: int, names: list[str]) -> list[str]:
        """The tokens of a context key; ``names`` is ``[*tokens, BOS]``, each token at its digit - 1."""
        out = []
        while key:
            key, digit = divmod(key, self._base)
            out.append(names[digit - 1])
        return out[::-1]

    def save_compiled(self, path: str | Path) -> None:
        if self._base ** (self.order - 1) < 2**63:
            contexts = {"keys": np.array(list(self._context_index), dtype=np.int64)}
        else:
            names = [*self._tokens, BOS]
            contexts = {"contexts": np.array([SEP.join(self._tokens_of(key, names)) for key in self._context_index])}
        arrays = {
            "format": np.array(COMPILED_FORMAT),
            "order": np.array(self.order),
            "tokens": np.array(self._tokens),
            "unigram": self.unigram,
            **contexts,
            "backoff": self._backoff,
            "ids": self._ids,
            "logp": self._logp,
            "offsets": self._offsets,
        }
        atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))

    @classmethod
    def _from_compiled(cls, data: bytes) -> CharLM:
        z = np.load(io.BytesIO(data), allow_pickle=False)  # plain arrays only: nothing runs
        if str(z["format"]) not in READABLE_FORMATS:
            raise ValueError("not a compiled handwrite character LM")
        keyed = "keys" in z.files
        contexts = z["keys"].tolist() if keyed else (tuple(c.split(SEP)) if c else () for c in z["contexts"].tolist())
        return cls(
            int(z["order"]),
            z["tokens"].tolist(),
            z["unigram"],
            contexts,
            z["backoff"],
            z["ids"],
            z["logp"],
            z["offsets"],
            keyed=keyed,
        )

    def _context(self, key: int) -> tuple[float, np.ndarray, np.ndarray] | None:
        """(back-off weight, indices with explicit probabilities, their log-probs), or None if unseen."""
        i = self._context_index.get(key)
        if i is None:
            return None
        a, b = self._offsets[i], self._offsets[i + 1]
        return self._backoff[i], self._ids[a:b], self._logp[a:b]

    @classmethod
    def load(cls, path: str | Path) -> CharLM:
        """An ARPA file (plain or gzipped) or a compiled one (``handwrite lm compile``), told apart by content."""
        path = Path(path)
        if not path.is_file():
            raise HandwriteError(f"{path}: language model file not found")
        try:
            raw = path.read_bytes()
            if raw[:2] == b"PK":  # a zip archive: numpy's .npz
                return cls._from_compiled(raw)
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8-sig")
            return cls.from_arpa(text)
        except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, zipfile.BadZipFile, EOFError) as e:
            raise HandwriteError(f"{path}: not an ARPA or compiled language model ({e})") from None

    def state(self, prefix: Sequence[str]) -> int:
        """The history that matters for the next character: the last order-1 tokens, as one integer."""
        toks = [BOS] + [_token(c) for c in prefix]
        return self._key(toks[-(self.order - 1) :]) if self.order > 1 else 0

    def advance(self, state: int, char: str) -> int:
        """The state after ``char``: same as ``state(prefix + char)``, without re-reading the prefix."""
        return (state * self._base + self._digit.get(_token(char), self._unknown)) % self._state_mod

    def log_probs(self, state: int) -> np.ndarray:
        vec = self._cache.get(state)
        if vec is not None:
            return vec
        vec = self.unigram.copy()
        for k in range(1, self.order):
            if state < self._base ** (k - 1):
                break  # the state holds fewer than k tokens
            entry = self._context(state % self._base**k)
            if entry is None:
                break  # an unseen history has no seen extensions either
            b, ids, ps = entry
            vec += b
            vec[ids] = ps
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        self._cache[state] = vec
        return vec

    def score(self, text: str) -> float:
        """Natural-log probability of a whole line, </s> included."""
        total, state = 0.0, self.state("")
        for c in text:
            total += self.log_probs(state)[self.index[_token(c)]]
            state = self.advance(state, c)
        return total + self.log_probs(state)[self.eos]

    def perplexity(self, lines: Iterable[str]) -> float:
        """Per-character perplexity (</s> counted as a character); characters the
        model has never seen are left out of the lines first."""
        logp, n = 0.0, 0
        for line in lines:
            line = "".join(c for c in normalize_text(line) if _token(c) in self.index)
            logp += self.score(line)
            n += len(line) + 1
        return math.exp(-logp / max(n, 1))


def _parse_arpa(text: str) -> tuple[int, dict, dict, dict]:
    """(order, unigram log-probs, back-offs by context, explicit extensions by context), natural logs."""
    unigrams: dict[str, float] = {}
    backoff: dict[tuple, float] = {}
    explicit: dict[tuple, list[tuple[str, float]]] = defaultdict(list)
    declared: dict[int, int] = {}  # \data\ counts, checked at the end: a cut file must not pass as a model
    found: dict[int, int] = defaultdict(int)
    ended = False
    k = order = 0
    for line in text.splitlines():
        if not line or line[0] in " \t":
            line = line.strip()
            if not line:
                continue
        if line[0] == "\\":
            if line == "\\end\\":
                ended = True
                break
            if line.endswith("-grams:"):
                k = int(line[1:].split("-")[0])
                order = max(order, k)  # in case the header lacks the counts
            continue
        if k == 0:
            if line.startswith("ngram "):  # the header's counts: the highest one is the order
                n, _, count = line[6:].partition("=")
                declared[int(n)] = int(count)
                order = max(order, int(n))
                continue
            raise ValueError(f"unexpected line {line[:40]!r} before the first n-gram section")
        found[k] += 1
        fields = line.split("\t")
        if len(fields) == 1:  # space-separated ARPA: prob, k tokens, optional back-off
            fields = line.split()
            fields = [fields[0], " ".join(fields[1 : k + 1]), *fields[k + 1 :]]
        toks = tuple(fields[1].split(" "))
        p = float(fields[0]) * LN10
        if len(fields) > 2:
            backoff[toks] = float(fields[2]) * LN10
        elif k < order:
            backoff[toks] = 0.0  # a lower-order n-gram without a weight is a context backing off at log 1
        if k == 1:
            unigrams[toks[0]] = p
        else:
            explicit[toks[:-1]].append((toks[-1], p))
    if not unigrams:
        raise ValueError("no 1-grams section")
    if not ended:
        raise ValueError("no \\end\\ line: the file is cut short")
    wrong = [f"{n}-grams: {found.get(n, 0)} of {c}" for n, c in sorted(declared.items()) if found.get(n, 0) != c]
    if wrong:
        raise ValueError(f"n-gram counts differ from the \\data\\ header ({'; '.join(wrong)})")
    return order, unigrams, backoff, explicit
