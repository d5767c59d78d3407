"""Builds tests/fixtures/unigram.json: the multilingual encoder's Unigram ids (training/models/
multilingual.py) of the 1,000 synthetic texts of tokenization.json plus a few grapheme cases,
for the Node tokenizer (models/unigram.ts) to reproduce. Regenerate with
`python -m training.tests.unigram_fixture` (the test suite fails if the file is stale)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from training.models import multilingual
from training.tests.tokenization_fixture import FIXTURE as WORDPIECE_FIXTURE

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "unigram.json"
# Graphemes the normalization treats whole (shorter than 6 bytes) or by character, joiners,
# CR LF, marks after a control, fullwidth letters with a mark (the mark is dropped), runs of spaces.
GRAPHEME_CASES = [
    "e\u0301",
    "e\u0301\u0301x",
    "\uff45\u0301 caf\u00e9",
    "a\r\nb",
    "a\U0001f3fbb",
    "x\u200dy\u200cz",
    "\n\u0301",
    "\U0001f149\u0341",
    "\uff21\u0300 \u3000 \u00a0tab\tend",
    "  leading and trailing  ",
    "Stra\u00dfe \u0130stanbul \ufb01 \u2460 \u33a1",
    "\u0915\u094d\u0937 \u0e01\u0e33 \u1100\u1161\u11a8",
    "",
]


def texts() -> list[str]:
    cases = json.loads(WORDPIECE_FIXTURE.read_text(encoding="utf-8"))["cases"]
    return [c["text"] for c in cases] + GRAPHEME_CASES


def build(tokenizer: multilingual.UnigramTokenizer, vocab_sha256: str) -> dict[str, Any]:
    return {
        "description": "Unigram ids (<s> + 'query: ' + text + </s>, truncated to max_length) of the multilingual "
        "encoder; texts: tokenization.json's cases, then the grapheme cases. See training/models/multilingual.py.",
        "vocab_sha256": vocab_sha256,
        "max_length": tokenizer.max_length,
        "prefix": multilingual.PREFIX,
        "grapheme_cases": GRAPHEME_CASES,
        "input_ids": [tokenizer.encode(t) for t in texts()],
    }


def current() -> dict[str, Any]:
    model = multilingual.read_q4(multilingual.weights_path())
    vocab = multilingual.build_vocab(model, multilingual.reference_tokenizer_json())
    data = multilingual.vocab_bytes(vocab)
    return build(multilingual.UnigramTokenizer(vocab), hashlib.sha256(data).hexdigest())


if __name__ == "__main__":
    FIXTURE.write_text(json.dumps(current(), ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {FIXTURE}")
