"""Human-labelled feedback from PostgreSQL (`train --with-feedback`): the feedback sink's
`labelled_predictions` (each prediction with its label resolved by the conflict rule, see
storage/migrations/005_feedback.sql) joined with the archived inquiry for its text.

A row is the model input serving saw (`subject + "\\n\\n" + text` when there is a subject, else the
text: processors/feedback.ts modelInput) and its resolved label. Rows are kept only when
- the label is one of the labels being trained (`invalid_label` otherwise),
- the inquiry's text is archived (`no_inquiry`) and is what the model saw: its sha256 equals the
  prediction's input digest, when the prediction is known (`input_mismatch`),
- no other kept row has the same input (`duplicate_input`: the latest label wins),
- the text is not one of the base split's validation or test rows (`held_out`: it would leak the
  gate's held-out set into training; compared case- and whitespace-insensitively, as the data sets
  deduplicate),
- the text is not one of the realistic evaluation set's inquiries (`realistic`: that set is never
  trained on; `datasets/realistic.py` Matcher, which also knows them after `clean`).
From at least FEEDBACK_EVALUATION_MIN kept rows, those whose input digest falls in the lowest
20 % of the hash space (`int(digest[:8], 16) % 100 < 20`) form the `feedback` evaluation split and
are never trained on; the rule depends on the text alone, so a row stays on its side in every
later retraining."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow

from training import config
from training.datasets import realistic
from training.datasets.base import Example, Split, dedupe_key

FEEDBACK_EVALUATION_MIN = 30
FEEDBACK_EVALUATION_PERCENT = 20


def model_input(subject: str | None, text: str) -> str:
    """processors/feedback.ts modelInput: JavaScript's `subject?.trim()` is truthy."""
    return f"{subject}\n\n{text}" if subject and subject.strip() else text


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def in_evaluation(input_digest: str) -> bool:
    return int(input_digest[:8], 16) % 100 < FEEDBACK_EVALUATION_PERCENT


@dataclass(frozen=True)
class FeedbackRow:
    prediction_id: str
    text: str
    label: str
    language: str
    labeled_at: datetime
    digest: str

    def example(self) -> Example:
        return Example(self.text, self.label, self.language)


@dataclass
class Feedback:
    train: list[FeedbackRow] = field(default_factory=list)
    evaluation: list[FeedbackRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> list[FeedbackRow]:
        return self.train + self.evaluation

    def ids_digest(self) -> str:
        return hashlib.sha256("\n".join(sorted(r.prediction_id for r in self.rows)).encode()).hexdigest()

    def max_labeled_at(self) -> str | None:
        return max(r.labeled_at for r in self.rows).isoformat() if self.rows else None

    def lineage(self) -> dict[str, str]:
        return {
            "feedback_rows": str(len(self.rows)),
            "feedback_train_rows": str(len(self.train)),
            "feedback_evaluation_rows": str(len(self.evaluation)),
            "feedback_digest": self.ids_digest(),
            "feedback_max_labeled_at": self.max_labeled_at() or "",
        }

    def manifest(self) -> dict[str, Any]:
        """What the manifest keeps: which prediction ids went where, and what was skipped why."""
        return {
            "source": f"{config.app_schema()}.labelled_predictions",
            "train_ids": sorted(r.prediction_id for r in self.train),
            "evaluation_ids": sorted(r.prediction_id for r in self.evaluation),
            "digest": self.ids_digest(),
            "max_labeled_at": self.max_labeled_at(),
            "skipped": self.skipped,
            "evaluation_rule": f"int(sha256(input)[:8], 16) % 100 < {FEEDBACK_EVALUATION_PERCENT} "
            f"when at least {FEEDBACK_EVALUATION_MIN} rows",
        }


def _fetch(conn: psycopg.Connection[DictRow], task: str) -> list[dict[str, Any]]:
    """Every labelled prediction of the task (the feedback sink's task is the registry model's
    name) with its archived inquiry (NULL columns when it is not archived)."""
    query = sql.SQL(
        """SELECT lp.prediction_id, lp.label, lp.labeled_at, lp.input_digest,
                  i.inquiry_id IS NOT NULL AS archived, i.subject, i.text, i.language
             FROM {schema}.labelled_predictions lp
             LEFT JOIN {schema}.inquiries i USING (inquiry_id)
            WHERE lp.task = %s
            ORDER BY lp.prediction_id"""
    ).format(schema=sql.Identifier(config.app_schema()))
    return conn.execute(query, (task,)).fetchall()


def _rows(raw: list[dict[str, Any]], labels: set[str], skipped: Counter[str]) -> list[FeedbackRow]:
    """Valid rows, one per input (the latest label), in digest order."""
    by_input: dict[str, FeedbackRow] = {}
    for r in raw:
        if r["label"] not in labels:
            skipped["invalid_label"] += 1
            continue
        if not r["archived"]:
            skipped["no_inquiry"] += 1
            continue
        text = model_input(r["subject"], r["text"])
        input_digest = digest(text)
        if r["input_digest"] and r["input_digest"] != input_digest:
            skipped["input_mismatch"] += 1
            continue
        row = FeedbackRow(r["prediction_id"], text, r["label"], r["language"] or "en", r["labeled_at"], input_digest)
        kept = by_input.get(input_digest)
        if kept is not None:
            skipped["duplicate_input"] += 1
            if (kept.labeled_at, kept.prediction_id) >= (row.labeled_at, row.prediction_id):
                continue
        by_input[input_digest] = row
    return [by_input[d] for d in sorted(by_input)]


def load(conn: psycopg.Connection[DictRow], task: str, base: Split) -> Feedback:
    """The feedback rows for training on top of `base` (whose labels they must carry), split
    into training and `feedback` evaluation rows; `skipped` counts the rest by reason."""
    skipped: Counter[str] = Counter()
    held_out = {dedupe_key(r.text) for r in base.validation + base.test}
    evaluation_only = realistic.matcher()
    rows = []
    for row in _rows(_fetch(conn, task), set(base.labels), skipped):
        if dedupe_key(row.text) in held_out:
            skipped["held_out"] += 1
        elif row.text in evaluation_only:
            skipped["realistic"] += 1
        else:
            rows.append(row)
    feedback = Feedback(skipped=dict(sorted(skipped.items())))
    for row in rows:
        evaluated = len(rows) >= FEEDBACK_EVALUATION_MIN and in_evaluation(row.digest)
        (feedback.evaluation if evaluated else feedback.train).append(row)
    return feedback


def evaluation_rows(
    conn: psycopg.Connection[DictRow], task: str, ids: list[str], labels: list[str]
) -> list[FeedbackRow]:
    """A version's `feedback` evaluation rows again, by prediction id, with their labels as
    resolved now (a later agent label may have corrected one)."""
    wanted = set(ids)
    return [r for r in _rows(_fetch(conn, task), set(labels), Counter()) if r.prediction_id in wanted]
