from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from training.datasets import airline, clinc150
from training.datasets.base import (
    OOS_LABEL,
    Example,
    Source,
    balanced_subsample,
    deduplicate,
    rows_digest,
    stratified_split,
)


def test_deduplicate_keeps_majority_label_and_drops_ties() -> None:
    rows = [
        Example("Where is my ORDER?", "a"),
        Example("where is  my order?", "a"),
        Example("where is my order?", "b"),
        Example("refund", "x"),
        Example("Refund", "y"),
        Example("  ", "z"),
    ]
    assert deduplicate(rows) == [Example("Where is my ORDER?", "a")]


def test_stratified_split_is_disjoint_stratified_and_seeded() -> None:
    rows = [Example(f"text {i}", "ab"[i % 2] if i < 800 else "c") for i in range(1000)]
    split = stratified_split("toy", rows, seed=3)
    parts = [split.train, split.validation, split.test]
    assert sum(map(len, parts)) == 1000
    assert len({r.text for part in parts for r in part}) == 1000
    assert Counter(r.label for r in split.test) == {"a": 40, "b": 40, "c": 20}
    again = stratified_split("toy", rows, seed=3)
    assert split.digest("test") == again.digest("test")
    assert split.digest("test") != stratified_split("toy", rows, seed=4).digest("test")


def test_balanced_subsample_keeps_every_class() -> None:
    rows = [Example(f"t{i}", "big") for i in range(500)] + [Example(f"s{i}", "small") for i in range(5)]
    sample = balanced_subsample(rows, 20, seed=0)
    assert Counter(r.label for r in sample) == {"big": 15, "small": 5}


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("instruction,category,intent\n")
    with pytest.raises(ValueError, match="checksum mismatch"):
        Source("data.csv", "0" * 64, "https://example.invalid/data.csv").resolve(tmp_path)


def test_missing_local_copy_without_pinned_canonical_checksum_is_not_downloaded(tmp_path: Path) -> None:
    source = Source("data.csv", "0" * 64, "https://example.invalid/data.csv")
    with pytest.raises(FileNotFoundError, match="is not downloaded because its sha256 is not pinned"):
        source.resolve(tmp_path)


def test_airline_dedupes_tweets_and_is_deterministic() -> None:
    first, second = airline.load(seed=0), airline.load(seed=0)
    rows = first.train + first.validation + first.test
    assert len(rows) < 14_485  # duplicate ids and duplicate texts are gone
    assert len({r.text.casefold() for r in rows}) == len(rows)
    assert rows_digest(first.train) == rows_digest(second.train)


def test_clinc_out_of_scope_never_trains_and_splits_validation_from_test() -> None:
    split = clinc150.load(seed=0)
    assert OOS_LABEL not in {r.label for r in split.train} and OOS_LABEL not in split.labels
    assert sum(r.label == OOS_LABEL for r in split.validation) == 100
    assert sum(r.label == OOS_LABEL for r in split.test) == 100
    assert len(split.labels) == 150
    assert not {r.text for r in split.validation} & {r.text for r in split.test}
