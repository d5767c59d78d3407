"""Bitext customer-support requests: intent (27 classes) and category (11)."""

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
    local="bitext/bitext.csv",
    local_sha256="bf05afbab92a76b630034c707b1b8393da7626046d1cc5e283ddc65a10b82cbd",
    url="https://huggingface.co/datasets/bitext/Bitext-customer-support-llm-chatbot-training-dataset"
    "/resolve/main/Bitext_Sample_Customer_Support_Training_Dataset_27K_responses-v11.csv",
)


def load(
    label: Literal["intent", "category"], seed: int, limit: int | None = None, root: Path | None = None
) -> Split:
    with SOURCE.resolve(root).open(newline="", encoding="utf-8") as handle:
        rows = [Example(r["instruction"], r[label]) for r in csv.DictReader(handle)]
    rows = deduplicate(rows)
    if limit:
        rows = balanced_subsample(rows, limit, seed)
    return stratified_split(f"bitext-{label}", rows, seed)
