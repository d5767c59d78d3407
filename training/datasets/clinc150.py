"""CLINC150: 150 intents plus out-of-scope queries.

The local copy has no official test split, so the official validation split is halved
(stratified) into our validation and test. Out-of-scope rows are never trained on: `oos_val`
picks the operating threshold (validation) and `oos_train` is the held-out out-of-scope test."""

from __future__ import annotations

import json
from pathlib import Path

from sklearn.model_selection import train_test_split

from training.datasets.base import (
    OOS_LABEL,
    Example,
    Source,
    Split,
    balanced_subsample,
    dedupe_key,
    deduplicate,
)

SOURCE = Source(
    local="clinc150/clinc150_train_val.json",
    local_sha256="85ffc53e88876cea5280ed07abd3fd9f8ad1fcab18bb694a17b2306ee399dfac",
    url="https://raw.githubusercontent.com/clinc/oos-eval/master/data/data_full.json",
)


def load(seed: int, limit: int | None = None, root: Path | None = None) -> Split:
    with SOURCE.resolve(root).open(encoding="utf-8") as handle:
        data = json.load(handle)

    def part(key: str, label: str | None = None) -> list[Example]:
        return deduplicate([Example(text, label or intent) for text, intent in data[key]])

    train = part("train")
    seen = {dedupe_key(r.text) for r in train}

    def unseen(rows: list[Example]) -> list[Example]:
        return [r for r in rows if dedupe_key(r.text) not in seen]

    in_scope = unseen(part("val"))
    oos_val, oos_test = unseen(part("oos_val", OOS_LABEL)), unseen(part("oos_train", OOS_LABEL))
    if limit:
        train = balanced_subsample(train, limit, seed)
        in_scope = balanced_subsample(in_scope, max(limit // 4, 2 * len({r.label for r in train})), seed)
        oos_val, oos_test = oos_val[: limit // 20 or 1], oos_test[: limit // 20 or 1]
    val, test = train_test_split(
        in_scope, test_size=0.5, stratify=[r.label for r in in_scope], random_state=seed
    )
    return Split("clinc150", train, val + oos_val, test + oos_test, sorted({r.label for r in train}))
