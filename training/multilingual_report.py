"""Per-language comparison of the multilingual encoder (multilingual-e5-small) with today's English
one (all-MiniLM-L6-v2): the same logistic-regression head (models/head.py, C on validation
macro-F1) over each encoder's sentence embedding, trained on the same rows, scored on the same
rows through onnxruntime. intent / category: trained on English Bitext only (so the other
languages measure cross-lingual transfer), scored on the realistic set by language; department
/ priority: the tickets split (every language), scored on its test rows by language.

    python -m training.multilingual_report [--bitext-limit 5000] [--json out.json]

Embeddings are cached on disk (SWITCHBOARD_CACHE_DIR/embeddings/<encoder>/), per text."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from training import config
from training.datasets import bitext, realistic, tickets
from training.datasets.base import Example
from training.metrics import macro_f1
from training.models import multilingual
from training.models.encoder import Encoder, pad_batch
from training.models.head import fit_logistic_regression

C_GRID = (1.0, 4.0, 16.0, 64.0)
LANGUAGES = ("en", "de", "es", "fr", "pt")


class CachedEmbedder:
    """texts -> [N, D] float32, each text's vector stored once under the cache directory."""

    def __init__(self, name: str, embed: Callable[[list[str]], np.ndarray]) -> None:
        self.name = name
        self._embed = embed
        self.directory = config.cache_dir() / "embeddings" / name
        self.directory.mkdir(parents=True, exist_ok=True)
        self.seconds = 0.0
        self.computed = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        store = self.directory / "vectors.npz"
        known: dict[str, np.ndarray] = dict(np.load(store)) if store.exists() else {}
        missing = sorted({t for t, k in zip(texts, keys, strict=True) if k not in known})
        if missing:
            start = time.process_time()
            vectors = self._embed(missing)
            self.seconds += time.process_time() - start
            self.computed += len(missing)
            for t, v in zip(missing, vectors, strict=True):
                known[hashlib.sha256(t.encode("utf-8")).hexdigest()] = v
            np.savez(store, **known)
        return np.stack([known[k] for k in keys]) if texts else np.zeros((0, 384), np.float32)


def e5_embedder(threads: int = 2, batch_size: int = 32) -> Callable[[list[str]], np.ndarray]:
    model = multilingual.read_q4(multilingual.weights_path())
    vocab = multilingual.build_vocab(model, multilingual.reference_tokenizer_json())
    tokenizer = multilingual.UnigramTokenizer(vocab)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(multilingual.embedding_graph(model).SerializeToString(), options)

    def embed(texts: list[str]) -> np.ndarray:
        encoded = [tokenizer.encode(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(texts), model.hidden), np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = pad_batch([encoded[i] for i in rows], tokenizer.pad)
            out[rows] = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        return out

    return embed


def minilm_embedder() -> Callable[[list[str]], np.ndarray]:
    encoder = Encoder()
    return lambda texts: encoder(texts)


def _scores(gold: list[str], predicted: list[str]) -> dict[str, float]:
    y, p = np.array(gold), np.array(predicted)
    return {"n": len(y), "accuracy": float((y == p).mean()) if len(y) else float("nan"),
            "macro_f1": macro_f1(y, p) if len(y) else float("nan")}


def per_language(rows: list[tuple[str, str]], predicted: list[str]) -> dict[str, dict[str, float]]:
    by: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for (language, gold), p in zip(rows, predicted, strict=True):
        for key in (language, "all") + (("non-en",) if language != "en" else ()):
            by[key][0].append(gold)
            by[key][1].append(p)
    return {k: _scores(*v) for k, v in sorted(by.items())}


def run(bitext_limit: int, seed: int = 0) -> dict[str, object]:
    embedders = {"minilm": CachedEmbedder("all-MiniLM-L6-v2", minilm_embedder()),
                 "e5": CachedEmbedder(multilingual.ENCODER_NAME, e5_embedder())}
    inquiries = [r for r in realistic.load() if r.intent != realistic.label_space().out_of_scope]
    tasks: list[tuple[str, object, list[tuple[str, str, str]]]] = []
    for label in ("intent", "category"):
        split = bitext.load(label, seed, limit=bitext_limit)
        gold = [(r.language, r.text, getattr(r, label)) for r in inquiries]
        tasks.append((label, split, gold))
    for label, name in (("queue", "department"), ("priority", "priority")):
        split = tickets.load(label, seed)  # type: ignore[arg-type]
        tasks.append((name, split, [(e.language, e.text, e.label) for e in split.test]))
    report: dict[str, object] = {}
    for name, split, scored in tasks:
        train: list[Example] = split.train  # type: ignore[attr-defined]
        validation: list[Example] = split.validation  # type: ignore[attr-defined]
        for key, embed in embedders.items():
            print(f"{name} {key}: {len(train)} train rows, {len(scored)} scored", file=sys.stderr, flush=True)
            x, xv = embed([e.text for e in train]), embed([e.text for e in validation])
            _, head = fit_logistic_regression(
                x, np.array([e.label for e in train]), xv, np.array([e.label for e in validation]), C_GRID, seed
            )
            predicted = list(head.predict(embed([t for _, t, _ in scored])))
            report[f"{name}/{key}"] = {
                "C": float(head.C),
                "scored_on": "realistic set (in scope)" if name in ("intent", "category") else "tickets test split",
                "by_language": per_language([(lang, g) for lang, _, g in scored], predicted),
            }
    report["embedding_cpu_seconds"] = {k: {"seconds": e.seconds, "texts": e.computed} for k, e in embedders.items()}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bitext-limit", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(args.bitext_limit)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    for key, value in report.items():
        if isinstance(value, dict) and "by_language" in value:
            cells = " ".join(
                f"{lang} {s['accuracy']:.3f}/{s['macro_f1']:.3f} (n={s['n']})" for lang, s in value["by_language"].items()
            )
            print(f"{key:22s} {cells}")
    print(json.dumps(report["embedding_cpu_seconds"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
