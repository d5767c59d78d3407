"""BERT uncased WordPiece tokenization, written out as the reference the Node side ports.

It reproduces the `tokenizers` pipeline of all-MiniLM-L6-v2 (BertNormalizer with lowercase and
accent stripping, BertPreTokenizer, WordPiece, [CLS] ... [SEP], truncation); the test suite
checks it token for token against that library on a fixture of 1,000 texts. Steps, in order:

1. clean: drop U+0000, U+FFFD and "other" characters (categories Cc, Cf, Co, Cs, except \\t \\n
   \\r; unassigned code points, Cn, are kept);
   turn whitespace (\\t \\n \\r and the Unicode White_Space set) into a space.
2. put spaces around CJK ideographs.
3. strip accents: NFD, then drop nonspacing marks (category Mn).
4. lowercase each character on its own (full Unicode mapping, so U+0130 becomes "i" + U+0307).
5. split on whitespace; every punctuation character (ASCII punctuation or category P*) is a word.
6. WordPiece per word: a word over 100 characters is [UNK]; otherwise take the longest vocabulary
   prefix, then the longest "##"-prefixed continuation, and so on; if some remainder matches
   nothing, the whole word is [UNK].
7. keep the first max_length - 2 pieces and wrap them in [CLS] ... [SEP].
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

# Rust's char::is_whitespace (Unicode White_Space), which the tokenizers library uses.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
MAX_CHARS_PER_WORD = 100


def _is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")


def _is_punctuation(c: str) -> bool:
    o = ord(c)
    return (
        33 <= o <= 47
        or 58 <= o <= 64
        or 91 <= o <= 96
        or 123 <= o <= 126
        or unicodedata.category(c).startswith("P")
    )


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return any(low <= o <= high for low, high in _CJK_RANGES)


def normalize(text: str) -> str:
    cleaned = []
    for c in text:
        if c in ("\x00", "\ufffd") or _is_control(c):
            continue
        if c in _WHITESPACE:
            cleaned.append(" ")
        elif _is_cjk(c):
            cleaned.append(f" {c} ")
        else:
            cleaned.append(c)
    stripped = "".join(
        c for c in unicodedata.normalize("NFD", "".join(cleaned)) if unicodedata.category(c) != "Mn"
    )
    return "".join(c.lower() for c in stripped)


def pre_tokenize(text: str) -> list[str]:
    words: list[str] = []
    for chunk in text.split(" "):
        current = ""
        for c in chunk:
            if _is_punctuation(c):
                if current:
                    words.append(current)
                    current = ""
                words.append(c)
            else:
                current += c
        if current:
            words.append(current)
    return words


class WordPieceTokenizer:
    def __init__(self, vocab_path: Path, max_length: int = 128) -> None:
        tokens = vocab_path.read_text(encoding="utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        self.vocab = {token: index for index, token in enumerate(tokens)}
        self.max_length = max_length
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]
        self.pad = self.vocab["[PAD]"]

    def _word_pieces(self, word: str) -> list[int]:
        if len(word) > MAX_CHARS_PER_WORD:
            return [self.unk]
        pieces: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return pieces

    def encode(self, text: str) -> list[int]:
        ids = [i for word in pre_tokenize(normalize(text)) for i in self._word_pieces(word)]
        return [self.cls, *ids[: self.max_length - 2], self.sep]
