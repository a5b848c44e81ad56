"""Write a word list for the default model's beam search: the words of an LM's text and a language's most frequent words.

Usage: python scripts/lexicon_words.py LANG TEXT_WORDS OUT [--top N]

TEXT_WORDS is the word list `handwrite lm build --lexicon-out` wrote from the LM's own text; to it
come the N most frequent words of LANG (``en``, ``fr``; default N = 50,000) from wordfreq (a build
step: ``pip install -e '.[recipe]'``), each as written, Capitalised and in capitals. OUT (``.gz``:
gzipped) is what `handwrite eval/transcribe --lexicon` and the model's decoding settings read.

Why the frequent words: the training transcriptions hold the words of their own documents, and a
hand never seen writes others. Measured with the shipped network and French LM (2026-11-30, beam 16,
OOV penalty 3): the French transcriptions' 11,743 words alone / with wordfreq's top 50,000 French
words, CER on writers held out of training: *Poilus* 12.33 / 11.97 %, *CREMMA-MSS-19* 16.64 / 16.12,
LECTAUREP's registers 30.27 / 29.81 (no word list: 12.73, 16.64, 29.87).
"""

from __future__ import annotations

import argparse

from handwrite.decoding import Lexicon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lang")
    parser.add_argument("text_words")
    parser.add_argument("out")
    parser.add_argument("--top", type=int, default=50_000)
    args = parser.parse_args()
    try:
        import wordfreq
    except ImportError:
        raise SystemExit("lexicon_words.py: wordfreq is not installed; pip install -e '.[recipe]'") from None
    frequent = wordfreq.top_n_list(args.lang, args.top)
    words = Lexicon.load(args.text_words).words | {v for w in frequent for v in (w, w.capitalize(), w.upper())}
    lexicon = Lexicon(words)
    lexicon.save(args.out)
    print(f"{args.out}: {len(lexicon.words)} words")


if __name__ == "__main__":
    main()
