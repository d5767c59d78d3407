"""The realistic evaluation set: inquiries written for the project as customers write them
(emails with greetings, quoted replies and signatures, chat lines, tickets, terse API calls; en,
de, es, fr, pt; a tenth out of scope), labelled by the rules in realistic/LABELLING.md for
intent, category, sentiment, urgency and department.

It is for evaluation only and is never trained on: no training target reads it, `train --data`
refuses it (`team.read`), and `train --with-feedback` skips a labelled inquiry whose text is one
of its rows (`feedback.load`, reason `realistic`). `npm run eval` scores every registered model
on it (models/eval/realistic.ts reads the same files)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DIRECTORY = Path(__file__).resolve().parent / "realistic"
DATA = DIRECTORY / "inquiries.jsonl"
LABELS = DIRECTORY / "labels.json"

FIELDS = {
    "id",
    "channel",
    "language",
    "tier",
    "subject",
    "body",
    "intent",
    "category",
    "sentiment",
    "urgency",
    "department",
    "note",
    "content_type",
}


class RealisticSetError(ValueError):
    """A row of the realistic set that does not fit its label spaces."""


@dataclass(frozen=True)
class LabelSpace:
    intents: dict[str, str]  # intent -> its Bitext category
    out_of_scope: str
    sentiments: list[str]
    urgencies: list[str]
    departments: list[str]
    channels: list[str]
    languages: list[str]
    tiers: list[str]
    received_at: str
    shares: dict[str, Any]


@dataclass(frozen=True)
class Inquiry:
    id: str
    channel: str
    language: str
    subject: str | None
    body: str
    intent: str  # a served intent, or LabelSpace.out_of_scope
    category: str | None  # None when out of scope
    sentiment: str
    urgency: str
    department: str
    tier: str | None = None
    note: str | None = None  # why the department is not the routing rules' one for the intent
    content_type: str = "text"

    @property
    def text(self) -> str:
        """Subject and body as one text, the way serving joins them (before `clean`)."""
        return f"{self.subject}\n\n{self.body}" if self.subject and self.subject.strip() else self.body


def label_space(path: Path = LABELS) -> LabelSpace:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return LabelSpace(
        intents=dict(raw["intents"]),
        out_of_scope=raw["out_of_scope"],
        sentiments=list(raw["sentiments"]),
        urgencies=list(raw["urgencies"]),
        departments=list(raw["departments"]),
        channels=list(raw["channels"]),
        languages=list(raw["languages"]),
        tiers=list(raw["tiers"]),
        received_at=raw["received_at"],
        shares=dict(raw["shares"]),
    )


def _problems(record: dict[str, Any], space: LabelSpace) -> list[str]:
    problems = [f"unknown field {key!r}" for key in record if key not in FIELDS]
    for key in ("id", "channel", "language", "body", "intent", "sentiment", "urgency", "department"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            problems.append(f"{key!r} must be a non-empty string")
    if problems:
        return problems

    def one_of(key: str, allowed: list[str]) -> None:
        if record.get(key) not in allowed:
            problems.append(f"{key} {record.get(key)!r} is not one of {', '.join(allowed)}")

    one_of("channel", space.channels)
    one_of("language", space.languages)
    one_of("sentiment", space.sentiments)
    one_of("urgency", space.urgencies)
    one_of("department", space.departments)
    if record.get("tier") is not None:
        one_of("tier", space.tiers)
    if record.get("content_type", "text") not in ("text", "html"):
        problems.append("content_type must be text or html")
    if record.get("subject") is not None and not isinstance(record["subject"], str):
        problems.append("subject must be a string or null")
    intent = record["intent"]
    if intent == space.out_of_scope:
        if record.get("category") is not None:
            problems.append("an out-of-scope inquiry has no category (null)")
    elif intent not in space.intents:
        problems.append(f"intent {intent!r} is neither a served intent nor {space.out_of_scope!r}")
    elif record.get("category") != space.intents[intent]:
        problems.append(f"category {record.get('category')!r} is not {intent}'s ({space.intents[intent]})")
    return problems


def load(path: Path = DATA, labels: Path = LABELS) -> list[Inquiry]:
    """Every row, validated against the label spaces; raises RealisticSetError listing the bad rows."""
    space = label_space(labels)
    rows: list[Inquiry] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        found = _problems(record, space) if isinstance(record, dict) else ["not a JSON object"]
        if isinstance(record, dict) and record.get("id") in seen:
            found.append(f"id {record['id']!r} repeats an earlier row")
        if found:
            problems.extend(f"{path.name}:{number}: {p}" for p in found)
            continue
        seen.add(record["id"])
        rows.append(Inquiry(**record))
    if problems:
        raise RealisticSetError("the realistic set does not fit its label spaces:\n  " + "\n  ".join(problems))
    return rows


def sha256() -> str:
    return hashlib.sha256(DATA.read_bytes()).hexdigest()


def is_realistic_file(path: Path) -> bool:
    """The set itself, wherever it was copied: by location or by content."""
    resolved = path.resolve()
    if resolved == DIRECTORY or DIRECTORY in resolved.parents:
        return True
    try:
        same_size = resolved.stat().st_size == DATA.stat().st_size
        return same_size and hashlib.sha256(resolved.read_bytes()).hexdigest() == sha256()
    except OSError:
        return False


_WORD = re.compile(r"\w+")
SHINGLE = 5
# A text is a realistic row when at least this share of its word 5-grams, and at least MIN_HITS
# of them (a run of 9 words), are that row's: `clean` strips quoted history, signatures and reply
# prefixes and redacts personal data, which changes only the 5-grams across those places. A
# shorter text must have exactly a row's words: generic phrases ("I need to speak to a person")
# are not copies.
MIN_CONTAINMENT = 0.6
MIN_HITS = 5


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _shingles(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


class Matcher:
    """Tells whether a text is one of the realistic rows or most of one, also after `clean`
    (quoted history and signature removed, personal data replaced): the same words for short
    texts, else the share of the text's word 5-grams found in one row."""

    def __init__(self, rows: list[Inquiry]) -> None:
        self._exact: set[tuple[str, ...]] = set()
        self._index: dict[tuple[str, ...], set[int]] = {}
        for number, row in enumerate(rows):
            shingles: set[tuple[str, ...]] = set()
            for part in (row.body, row.text):
                words = _words(part)
                self._exact.add(tuple(words))
                shingles |= _shingles(words)
            for shingle in shingles:
                self._index.setdefault(shingle, set()).add(number)

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        words = _words(text)
        if tuple(words) in self._exact:
            return True
        shingles = _shingles(words)
        hits: dict[int, int] = {}
        for shingle in shingles:
            for row in self._index.get(shingle, ()):
                hits[row] = hits.get(row, 0) + 1
        best = max(hits.values(), default=0)
        return best >= MIN_HITS and best >= MIN_CONTAINMENT * len(shingles)


@cache
def matcher() -> Matcher:
    return Matcher(load())
