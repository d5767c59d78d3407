"""CLINC150: 150 intents plus out-of-scope queries.

The local copy has no official test split, so the official validation split is halved
(stratified) into our validation and test. Out-of-scope rows are never trained on: `oos_val`
picks the operating threshold (validation) and `oos_train` is the held-out out-of-scope test.

The publisher's canonical file (`data_full.json`, pinned below) also holds the official test
split, 4,500 in-scope queries and 1,000 out-of-scope ones: `official_test` reads it for
`npm run eval`, never for training. Its train, val, oos_train and oos_val parts are the local
copy's, row for row, so either file gives the same training split."""

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
    # data/data_full.json of github.com/clinc/oos-eval at 828f809 (its latest commit).
    url_sha256="36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
)

# The same canonical file, for its official test split: a local copy beside the train/val one,
# else the cache's download (SWITCHBOARD_CACHE_DIR/datasets/<sha256>/data_full.json).
OFFICIAL = Source(
    local="clinc150/data_full.json",
    local_sha256="36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
    url=SOURCE.url,
    url_sha256="36923c3705a59e08fe9c3883d8bc2dd966ef93e22cb78ac41171782a698d56e0",
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


def official_test(root: Path | None = None) -> list[Example]:
    """The official test split: `test` (in scope) then `oos_test` (labelled OOS_LABEL),
    deduplicated, without any text of the official train split. Raises FileNotFoundError (or
    the download's error) when the canonical file is neither local, cached nor downloadable."""
    with OFFICIAL.resolve(root).open(encoding="utf-8") as handle:
        data = json.load(handle)
    seen = {dedupe_key(text) for text, _ in data["train"]}
    in_scope = deduplicate([Example(text, intent) for text, intent in data["test"]])
    oos = deduplicate([Example(text, OOS_LABEL) for text, _ in data["oos_test"]])
    return [r for r in in_scope + oos if dedupe_key(r.text) not in seen]


def oos_examples(seed: int, limit: int | None = None, root: Path | None = None) -> tuple[list[Example], list[Example]]:
    """CLINC150's out-of-scope queries as the real out-of-scope examples of another intent model
    (the served Bitext one): `oos_val` for choosing its operating point on validation and
    `oos_train` for its held-out report, the same parts as CLINC150's own split uses; a text of the
    test part is dropped from the validation part. `seed` is unused (the parts are taken whole, or
    their first `limit // 20` rows with a limit, as `load` does)."""
    del seed
    with SOURCE.resolve(root).open(encoding="utf-8") as handle:
        data = json.load(handle)
    test = deduplicate([Example(text, OOS_LABEL) for text, _ in data["oos_train"]])
    held_out = {dedupe_key(r.text) for r in test}
    validation = [
        r for r in deduplicate([Example(text, OOS_LABEL) for text, _ in data["oos_val"]]) if dedupe_key(r.text) not in held_out
    ]
    if limit:
        validation, test = validation[: limit // 20 or 1], test[: limit // 20 or 1]
    return validation, test
