"""`python -m training.reference_texts MANIFEST [--rows N] [--seed S]`: a seeded sample of the
training texts a model version was trained on, as a JSON array on stdout. The reference side of
the drift processor's text-drift test, a domain classifier that tries to tell these from live
inquiries (drift/text-drift.ts). The split is rebuilt from the manifest and proved the same."""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from training.evaluation import HeldOutMismatch, held_out_split


def sample(manifest: dict[str, object], rows: int, seed: int) -> list[str]:
    train = held_out_split(manifest).train  # type: ignore[arg-type]
    chosen = sorted(random.Random(seed).sample(range(len(train)), min(rows, len(train))))
    return [train[i].text for i in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.reference_texts", description=__doc__)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
        texts = sample(manifest, args.rows, args.seed)
    except (OSError, ValueError, KeyError, HeldOutMismatch) as error:
        print(f"cannot sample the training texts of {args.manifest}: {error}", file=sys.stderr)
        return 1
    json.dump(texts, sys.stdout, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
