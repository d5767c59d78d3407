"""Shared dataset plumbing: checksum-pinned sources, deduplication, stratified splits, digests."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.model_selection import train_test_split

from training import config

log = logging.getLogger(__name__)

OOS_LABEL = "oos"


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    language: str = "en"


@dataclass(frozen=True)
class Source:
    """A data file: the local copy under the datasets directory, or the publisher's canonical copy.

    Both are pinned by sha256; the canonical copy may carry extra columns or rows, which the
    adapters ignore, so the two digests differ."""

    local: str
    local_sha256: str
    url: str
    url_sha256: str | None = None

    def resolve(self, root: Path | None = None) -> Path:
        path = (root or config.datasets_dir()) / self.local
        if path.exists():
            _verify(path, self.local_sha256)
            return path
        return self._download(path)

    def _download(self, missing: Path) -> Path:
        if self.url_sha256 is None:
            raise FileNotFoundError(
                f"{missing} does not exist, and the publisher's canonical copy at {self.url} is not "
                "downloaded because its sha256 is not pinned (url_sha256 is unset: it could not be "
                "fetched and checked when the adapter was written). Point SWITCHBOARD_DATASETS at a "
                "directory holding the local copy, or pin the canonical copy's sha256 in the adapter."
            )
        target = config.cache_dir() / "datasets" / self.url_sha256 / Path(self.url).name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".partial")
            with urllib.request.urlopen(self.url, timeout=60) as response, partial.open("wb") as out:
                shutil.copyfileobj(response, out)
            _verify(partial, self.url_sha256)
            partial.rename(target)
        _verify(target, self.url_sha256)
        return target


def _verify(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ValueError(f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Split:
    """Train / validation / test. `test` is only ever read for the final held-out report.

    For out-of-scope evaluation, validation and test may hold rows labelled OOS_LABEL that the
    model never trains on; `labels` lists the classes the model predicts."""

    name: str
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    labels: list[str] = field(default_factory=list)

    def digest(self, part: str) -> str:
        return rows_digest(getattr(self, part))


def rows_digest(rows: list[Example]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.text, row.label], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def dedupe_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def deduplicate(rows: list[Example]) -> list[Example]:
    """One row per case- and whitespace-insensitive text, so no near-copy straddles two splits.

    Conflicting labels resolve to the majority; a tie drops the text (it cannot be learned)."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for row in rows:
        if row.text.strip():
            groups[dedupe_key(row.text)].append(row)
    kept: list[Example] = []
    dropped = 0
    for group in groups.values():
        ranked = Counter(r.label for r in group).most_common(2)
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            dropped += 1
            continue
        kept.append(next(r for r in group if r.label == ranked[0][0]))
    if dropped:
        log.info("dropped %d texts with tied conflicting labels", dropped)
    return kept


def balanced_subsample(rows: list[Example], n: int, seed: int) -> list[Example]:
    """At most n rows spread evenly over the classes (for quick, still-stratifiable slices)."""
    if n >= len(rows):
        return rows
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    rank: Counter[str] = Counter()
    keyed = []
    for position, row in enumerate(shuffled):
        keyed.append((rank[row.label], position, row))
        rank[row.label] += 1
    return [row for _, _, row in sorted(keyed, key=lambda k: (k[0], k[1]))[:n]]


def stratified_split(
    name: str, rows: list[Example], seed: int, validation: float = 0.1, test: float = 0.1
) -> Split:
    labels = [r.label for r in rows]
    rest, held_out = train_test_split(rows, test_size=test, stratify=labels, random_state=seed)
    train, val = train_test_split(
        rest,
        test_size=validation / (1 - test),
        stratify=[r.label for r in rest],
        random_state=seed,
    )
    return Split(name, train, val, held_out, sorted(set(labels)))
