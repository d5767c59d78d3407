"""`python -m training.paired A.json B.json [--model M]`: two versions of a model on the same
realistic rows, paired. The files are `npm run eval -- --realistic-predictions FILE` output (the
rows through `clean` and the Node ONNX sessions, as the eval's figures); a version is taken from
each file (its model's only one, or the one named by --version-a / --version-b). Reported: both
accuracies on the rows with a truth, the rows only B gets right (gained) and only A (lost), and
the exact two-sided McNemar p-value (binomial on the discordant rows)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy.stats import binomtest


@dataclass(frozen=True)
class Paired:
    n: int
    accuracy_a: float
    accuracy_b: float
    gained: int  # right with B only
    lost: int  # right with A only
    p_value: float


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> Paired:
    """Rows of two versions, in the same order (ids checked); rows without a truth are left out."""
    if [r["id"] for r in a] != [r["id"] for r in b]:
        raise ValueError("the two files do not hold the same rows in the same order")
    scored = [(x, y) for x, y in zip(a, b, strict=True) if x["truth"] is not None]
    right_a = [x["label"] == x["truth"] for x, _ in scored]
    right_b = [y["label"] == y["truth"] for _, y in scored]
    gained = sum(rb and not ra for ra, rb in zip(right_a, right_b, strict=True))
    lost = sum(ra and not rb for ra, rb in zip(right_a, right_b, strict=True))
    p_value = float(binomtest(gained, gained + lost, 0.5).pvalue) if gained + lost else 1.0
    n = len(scored)
    return Paired(n, sum(right_a) / n, sum(right_b) / n, gained, lost, p_value)


def _version(path: Path, model: str, version: str | None) -> dict[str, Any]:
    data = json.loads(path.read_text())
    found = [v for v in data["versions"] if v["model"] == model and (version is None or v["version"] == version)]
    if len(found) != 1:
        listed = ", ".join(f"{v['model']}@{v['version']}" for v in data["versions"])
        raise SystemExit(f"{path}: {len(found)} versions of {model} match (the file holds: {listed})")
    return found[0]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m training.paired", description=__doc__)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--model", default="intent")
    parser.add_argument("--version-a")
    parser.add_argument("--version-b")
    args = parser.parse_args()
    a, b = _version(args.a, args.model, args.version_a), _version(args.b, args.model, args.version_b)
    result = paired(a["rows"], b["rows"])
    print(
        f"{args.model}: A {a['family']}@{a['version']} {result.accuracy_a:.4f}, "
        f"B {b['family']}@{b['version']} {result.accuracy_b:.4f} on {result.n} rows; "
        f"gained {result.gained}, lost {result.lost}, exact McNemar p = {result.p_value:.4f}"
    )


if __name__ == "__main__":
    main()
