"""Multilingual customer-support tickets: department (`queue`) and urgency (`priority`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from training.datasets.base import (
    Example,
    Source,
    Split,
    balanced_subsample,
    deduplicate,
    stratified_split,
)

SOURCE = Source(
    local="tickets/tickets.csv",
    local_sha256="57ce70d832cc5571b84b70a39fe5548e4ee5515c5672c29c927c1338abbacaf0",
    url="https://huggingface.co/datasets/Tobi-Bueck/customer-support-tickets"
    "/resolve/main/aa_dataset-tickets-multi-lang-5-2-50-version.csv",
)


def ticket_text(subject: str, body: str) -> str:
    """Subject and body as one inquiry; some bodies carry escaped newlines, real traffic does not."""
    body = body.replace("\\n", "\n")
    return f"{subject}\n\n{body}" if subject.strip() else body


def load(
    label: Literal["queue", "priority"], seed: int, limit: int | None = None, root: Path | None = None
) -> Split:
    with SOURCE.resolve(root).open(newline="", encoding="utf-8") as handle:
        rows = [
            Example(ticket_text(r["subject"], r["body"]), r[label], r["language"])
            for r in csv.DictReader(handle)
        ]
    rows = deduplicate(rows)
    if limit:
        rows = balanced_subsample(rows, limit, seed)
    return stratified_split(f"tickets-{label}", rows, seed)
