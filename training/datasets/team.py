"""A team's own labelled data (`train --data FILE`): CSV with a header row, or JSON Lines (one
object per line), through the same deduplication and stratified 80/10/10 split as the shipped
data sets. Several text columns are joined, non-empty ones only, with a blank line between them,
so [subject, body] gives exactly the model input serving builds (processors/feedback.ts
modelInput)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.datasets import realistic
from training.datasets.base import Example, Split, balanced_subsample, deduplicate, sha256_file, stratified_split

# A class needs a row in each of validation and test and most of its rows in train: with
# 10 rows the 80/10/10 split gives it 8 / 1 / 1.
MIN_CLASS_ROWS = 10
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class DataFileError(ValueError):
    """A data file that cannot be trained on, with what to change."""


@dataclass(frozen=True)
class DataSpec:
    """Which file and columns; recorded in the manifest, so the gate can rebuild the split."""

    path: str
    text_columns: tuple[str, ...]
    label_column: str
    language_column: str | None = None

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "text_columns": list(self.text_columns)}

    @classmethod
    def of(cls, recorded: dict[str, Any]) -> DataSpec:
        return cls(
            str(recorded["path"]),
            tuple(recorded["text_columns"]),
            str(recorded["label_column"]),
            recorded.get("language_column"),
        )


@dataclass(frozen=True)
class TeamData:
    spec: DataSpec
    sha256: str
    format: str
    rows: int  # records in the file
    columns: list[str]
    examples: list[Example]  # rows with a text, before deduplication

    def provenance(self) -> dict[str, Any]:
        return {
            **self.spec.describe(),
            "sha256": self.sha256,
            "format": self.format,
            "rows": self.rows,
            "columns": self.columns,
        }


def _records(path: Path, fmt: str) -> tuple[list[dict[str, Any]], list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            if fmt == "csv":
                reader = csv.DictReader(handle)
                records = list(reader)
                return records, list(reader.fieldnames or [])
            records = []
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataFileError(f"{path}: line {number} is not JSON ({error.msg})") from error
                if not isinstance(record, dict):
                    raise DataFileError(f"{path}: line {number} is not a JSON object")
                records.append(record)
    except OSError as error:
        raise DataFileError(f"cannot read the data file {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise DataFileError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from error
    except csv.Error as error:
        raise DataFileError(f"{path} is not readable CSV: {error}") from error
    columns = list(dict.fromkeys(key for record in records for key in record))
    return records, columns


def _value(record: dict[str, Any], column: str) -> str:
    value = record.get(column)
    return "" if value is None else str(value).strip()


def read(spec: DataSpec) -> TeamData:
    """The file's examples; raises DataFileError for an unreadable file, an unknown format, a
    missing column or rows without a label."""
    path = Path(spec.path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataFileError(f"{path}: unknown format {path.suffix!r}; use .csv (with a header row) or .jsonl")
    if not path.is_file():
        raise DataFileError(f"cannot read the data file {path}: no such file")
    if realistic.is_realistic_file(path):
        raise DataFileError(
            f"{path} is the realistic evaluation set (training/datasets/realistic): it is never trained on, "
            "only `npm run eval` reads it"
        )
    records, columns = _records(path, fmt)
    if not records:
        raise DataFileError(f"{path} has no rows")
    wanted = [*spec.text_columns, spec.label_column, *([spec.language_column] if spec.language_column else [])]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataFileError(
            f"{path}: no column {', '.join(map(repr, missing))} (the file has {', '.join(map(repr, columns))})"
        )
    unlabelled = [n for n, r in enumerate(records, 1) if not _value(r, spec.label_column)]
    if unlabelled:
        first = ", ".join(map(str, unlabelled[:5]))
        raise DataFileError(
            f"{path}: {len(unlabelled)} of {len(records)} rows have an empty {spec.label_column!r} "
            f"(rows {first}{', ...' if len(unlabelled) > 5 else ''}, counting data rows from 1); "
            "label them or remove them"
        )
    examples = []
    for record in records:
        text = "\n\n".join(v for c in spec.text_columns if (v := _value(record, c)))
        if text:
            language = _value(record, spec.language_column) if spec.language_column else ""
            examples.append(Example(text, _value(record, spec.label_column), language or "en"))
    return TeamData(spec, sha256_file(path), fmt, len(records), columns, examples)


def split(data: TeamData, seed: int, limit: int | None = None) -> Split:
    """Deduplicated, optionally limited, stratified 80/10/10; refuses classes too small to split."""
    rows = deduplicate(data.examples)
    counts = Counter(r.label for r in rows)
    if len(counts) < 2:
        raise DataFileError(f"{data.spec.path}: {len(counts)} distinct label(s); a classifier needs at least 2")
    small = sorted((label, n) for label, n in counts.items() if n < MIN_CLASS_ROWS)
    if small:
        listed = ", ".join(f"{label!r} ({n})" for label, n in small)
        raise DataFileError(
            f"{data.spec.path}: classes with fewer than {MIN_CLASS_ROWS} distinct texts cannot be split into "
            f"train, validation and test: {listed}; add rows or merge them into another class"
        )
    if limit:
        rows = balanced_subsample(rows, limit, seed)
    return stratified_split(f"data:{Path(data.spec.path).name}", rows, seed)
