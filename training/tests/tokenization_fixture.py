"""Builds tests/fixtures/tokenization.json: 1,000 texts with the WordPiece ids the encoder models
were trained with, for the Node tokenizer to reproduce. Regenerate with
`python -m training.tests.tokenization_fixture` (the test suite fails if the file is stale).

The texts are synthetic (seeded mixes of support phrases in five languages, symbols, emoji,
scripts, control characters and over-long inputs): the data sets' licences keep their rows out
of the repository. Agreement on real rows is tested against the data sets directory instead."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from training.datasets.base import sha256_file
from training.models.encoder import MAX_LENGTH, weights_dir
from training.models.wordpiece import WordPieceTokenizer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tokenization.json"

PHRASES = [
    "where is my order",
    "I want a refund",
    "cancel my subscription please",
    "the invoice is wrong",
    "my package never arrived",
    "how do I reset my password",
    "talk to a human agent",
    "great service, thanks",
    "worst airline experience ever",
    "flight delayed again",
    "lost luggage at the gate",
    "upgrade my plan",
    "billing issue with card ending 4242",
    "the app crashes on login",
    "VPN not connecting since update",
    "Meine Bestellung ist nicht angekommen",
    "Rechnung fehlerhaft, bitte prüfen",
    "Passwort zurücksetzen",
    "Der Drucker im Büro funktioniert nicht",
    "Ich möchte mein Abonnement kündigen",
    "Mi pedido no ha llegado",
    "¿Dónde está mi factura?",
    "quiero hablar con un agente",
    "el servicio falló",
    "Ma commande est en retard",
    "je voudrais un remboursement",
    "problème de connexion à l'application",
    "Meu pedido não chegou",
    "preciso de ajuda com a fatura",
    "não consigo acessar minha conta",
]
EXTRAS = [
    "!!!",
    "???",
    "...",
    ":)",
    ":-(",
    "#help",
    "@support",
    "{{Order Number}}",
    "{{Account Type}}",
    "$25.00",
    "€19,99",
    "100%",
    "24/7",
    "e-mail",
    "log-in",
    "can't",
    "won't",
    "O'Brien",
    "http://example.com/a?b=1",
    "😀",
    "😡",
    "🙏🏼",
    "✈️",
    "👍",
    "™",
    "©",
    "→",
    "•",
    "—",
    "中文",
    "日本",
    "한국",
    "Ελληνικά",
    "русский",
    "العربية",
    "עברית",
    "हिन्दी",
    "ไทย",
    "\u200b",
    "\u00a0",
    "\t",
    "\n",
    "\x07",
    "e\u0301",
    "ß",
    "İ",
    "ﬁ",
]
# Blocks whose code points are all assigned since Unicode 13 at the latest: characters newer than
# the reference library's tables would test its Unicode version, not the algorithm.
SCRIPT_RANGES = [
    (0x00C0, 0x024F),
    (0x0370, 0x03FF),
    (0x0400, 0x04FF),
    (0x0590, 0x05FF),
    (0x0620, 0x064A),
    (0x0900, 0x097F),
    (0x0E00, 0x0E7F),
    (0x3040, 0x30FF),
    (0x4E00, 0x4FFF),
    (0xAC00, 0xAD00),
    (0x1F300, 0x1F64F),
    (0x0300, 0x036F),
    (0x2000, 0x206F),
    (0xFF01, 0xFF5E),
]


def _synthetic(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 8)):
        roll = rng.random()
        if roll < 0.55:
            phrase = rng.choice(PHRASES)
            parts.append(rng.choice([phrase, phrase.upper(), phrase.title(), phrase.capitalize()]))
        elif roll < 0.85:
            parts.append(rng.choice(EXTRAS))
        else:
            low, high = rng.choice(SCRIPT_RANGES)
            parts.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 6))))
    text = "".join(part + rng.choice([" ", " ", " ", ", ", ". ", "\n", "", "  "]) for part in parts).strip()
    if rng.random() < 0.08:  # past the 128-token limit, to exercise truncation
        text = " ".join([text] * rng.randint(10, 30))
    return text


EDGE_CASES = [
    "",
    " ",
    "\t\n\r ",
    "ok",
    "OK!!!",
    "{{Order Number}}",
    "I can't log-in to my account...",
    "@united thanks for NOTHING 😡😡 #fail http://t.co/abc123",
    "costs $1,299.99 (incl. 19% VAT) — really?",
    "Größe ÄÖÜ straße",
    "İstanbul ıi İI",
    "naïve café résumé",
    "ΣΊΣΥΦΟΣ σίσυφος",
    "中文字符测试 mixed 中文",
    "日本語のテキスト",
    "한국어 텍스트",
    "नमस्ते दुनिया",
    "مرحبا بالعالم",
    "שלום עולם",
    "สวัสดีครับ",
    "ｆｕｌｌ　ｗｉｄｔｈ　ＡＢＣ１２３",
    "zero\u200bwidth\u200djoiner\ufeff",
    "nbsp\u00a0and\u2028line\u2029sep",
    "control\x01\x02\x7fchars\x0b\x0c",
    "word " * 150,
    "nul\x00char and \ufffd replacement",
    "e\u0301 combining acute",
    "ﬁ ﬂ ligatures ǅ ǈ",
    "x" * 101,
    "y" * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "a.b,c;d:e!f?g",
    "«quotes» „German“ ‚single‘",
    "emoji 👍🏽 family 👨‍👩‍👧 flag 🇩🇪",
    "tab\tseparated\tvalues",
    "multiple     spaces",
    "line1\nline2\r\nline3",
    "1st 2nd 3rd 4th",
    "user@example.com",
    "C++ C# .NET",
    "private\ue000use \U000f0000 tag\U000e0001 unassigned\u0378\u0e5c",
]


def build() -> dict[str, Any]:
    rng = random.Random(0)
    rows = [_synthetic(rng) for _ in range(1000 - len(EDGE_CASES))]
    directory = weights_dir()
    tokenizer = WordPieceTokenizer(directory / "vocab.txt", MAX_LENGTH)
    cases = [{"text": text, "input_ids": tokenizer.encode(text)} for text in rows + EDGE_CASES]
    return {
        "description": "WordPiece ids (with [CLS]/[SEP], truncated to max_length) of the encoder models; "
        "attention_mask is 1 for every id. See training/models/wordpiece.py.",
        "vocab_sha256": sha256_file(directory / "vocab.txt"),
        "max_length": MAX_LENGTH,
        "special_ids": {
            "cls": tokenizer.cls,
            "sep": tokenizer.sep,
            "pad": tokenizer.pad,
            "unk": tokenizer.unk,
        },
        "cases": cases,
    }


def dumps(fixture: dict[str, Any]) -> str:
    return json.dumps(fixture, ensure_ascii=False, indent=1) + "\n"


if __name__ == "__main__":
    FIXTURE.write_text(dumps(build()), encoding="utf-8")
    print(f"wrote {FIXTURE}")
