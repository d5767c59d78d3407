"""Twitter US Airline Sentiment: negative / neutral / positive."""

from __future__ import annotations

import csv
from pathlib import Path

from training.datasets.base import (
    Example,
    Source,
    Split,
    balanced_subsample,
    deduplicate,
    stratified_split,
)

SOURCE = Source(
    local="sentiment/airline_tweets.csv",
    local_sha256="31aa9f9f90d9da372d1522b463cd0d43128d274f553dcf10b15fb17cdd71df10",
    url="https://www.kaggle.com/api/v1/datasets/download/crowdflower/twitter-airline-sentiment",
)


def load(seed: int, limit: int | None = None, root: Path | None = None) -> Split:
    by_id: dict[str, Example] = {}
    with SOURCE.resolve(root).open(newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            # The file repeats some tweets; the first occurrence of an id wins.
            by_id.setdefault(r["tweet_id"], Example(r["text"], r["airline_sentiment"]))
    rows = deduplicate(list(by_id.values()))
    if limit:
        rows = balanced_subsample(rows, limit, seed)
    return stratified_split("airline-sentiment", rows, seed)
