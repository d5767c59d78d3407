"""Which out-of-scope score separates real out-of-scope text from customers' in-scope inquiries.

A linear intent model's maximum probability does not (training/README.md, "Realistic inquiries
and CLINC150's official test"), so its operating point is measured, not served. This compares, on
the realistic set, three scores over one embedder's sentence embeddings: the maximum calibrated
probability of a head trained as `defaults` trains it (logistic regression, C and class weights
on validation macro-F1, Bitext train with customer-style copies), the cosine similarity to the
nearest intent centroid (the mean direction of each intent's training embeddings) and to the
nearest training row. For each: AUROC of in scope against out of scope (every row; English rows
and the out-of-scope ones) and CLINC150's out-of-scope queries against Bitext test rows. Then
the operating point each score would get from the loss rule (in-scope rows refused at most
`loss`), chosen once on Bitext's validation rows and once on customer-style copies of them, with
what that threshold does on the realistic set.

    python -m training.oos_report [--embedder DIR] [--bitext-limit N] [--json out.json]

`--embedder` is an embedder version directory (default: the production `embedder` in the
registry when DATABASE_URL is set, else the newest one under the models directory). The
realistic rows are scored as written (not through `clean`), as `multilingual_report` does."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from training import config
from training.augment import AugmentParams, augmented
from training.calibration import calibrated, fit_temperature
from training.datasets import bitext, clinc150, realistic
from training.models.embedding_head import PinnedEmbedder, resolve_embedder
from training.models.head import fit_logistic_regression
from training.registry import Registry

C_GRID = (1.0, 4.0, 16.0, 64.0)
LOSSES = (0.02, 0.05, 0.10)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _embedder(directory: Path | None) -> PinnedEmbedder:
    if directory is not None:
        return PinnedEmbedder.at(directory)
    registry = Registry.open() if config.database_url() else None
    return PinnedEmbedder.at(resolve_embedder(config.models_dir(), registry))


def run(embed: PinnedEmbedder, bitext_limit: int | None, seed: int = 0) -> dict[str, object]:
    split = bitext.load("intent", seed, bitext_limit)
    train = augmented(split, AugmentParams(), seed).train
    # Customer-style copies of the validation rows: the augmenter copies a split's training rows.
    copied = augmented(replace(split, train=split.validation, validation=[], test=[]), AugmentParams(rate=1.0), seed + 1)
    validation_copies = copied.train[len(split.validation) :]
    rows = realistic.load()
    out_of_scope = np.array([r.intent == realistic.label_space().out_of_scope for r in rows])
    english = np.array([r.language == "en" for r in rows])
    oos_validation, oos_test = clinc150.oos_examples(seed, None)

    x = embed([e.text for e in train]).astype(np.float64)
    y = np.array([e.label for e in train])
    x_val = embed([e.text for e in split.validation]).astype(np.float64)
    y_val = np.array([e.label for e in split.validation])
    _, head = fit_logistic_regression(x, y, x_val, y_val, C_GRID, seed, (None, "balanced"))
    temperature = fit_temperature(head.decision_function(x_val), np.searchsorted(head.classes_, y_val))
    rows_unit = _unit(x)
    centroids = _unit(np.stack([rows_unit[y == label].mean(axis=0) for label in head.classes_]))

    def scores(texts: list[str]) -> dict[str, np.ndarray]:
        q = embed(texts).astype(np.float64)
        probabilities = calibrated(head.decision_function(q), temperature)
        similarities = _unit(q) @ rows_unit.T
        return {
            "max_probability": probabilities.max(axis=1),
            "centroid_similarity": (_unit(q) @ centroids.T).max(axis=1),
            "nearest_row_similarity": similarities.max(axis=1),
        }

    on_rows = scores([r.text for r in rows])
    on_test, on_clinc_test = scores([e.text for e in split.test]), scores([e.text for e in oos_test])
    on_val, on_val_copies = scores([e.text for e in split.validation]), scores([e.text for e in validation_copies])
    on_clinc_val = scores([e.text for e in oos_validation])
    report: dict[str, object] = {
        "embedder": embed.pin,
        "rows": {"realistic": len(rows), "realistic_out_of_scope": int(out_of_scope.sum()), "bitext_train": len(train),
                 "bitext_validation": len(split.validation), "validation_copies": len(validation_copies),
                 "clinc150_oos_val": len(oos_validation), "clinc150_oos_train": len(oos_test)},
        "scores": {},
    }
    considered = english | out_of_scope
    for name, values in on_rows.items():
        clinc_y = np.r_[np.ones(len(on_test[name])), np.zeros(len(on_clinc_test[name]))]
        entry: dict[str, object] = {
            "auroc_realistic": float(roc_auc_score(~out_of_scope, values)),
            "auroc_realistic_english": float(roc_auc_score(~out_of_scope[considered], values[considered])),
            "auroc_clinc150_oos_vs_bitext_test": float(roc_auc_score(clinc_y, np.r_[on_test[name], on_clinc_test[name]])),
            "points": [],
        }
        for chosen_on, reference in (("bitext validation", on_val[name]), ("validation customer copies", on_val_copies[name])):
            for loss in LOSSES:
                threshold = float(np.quantile(reference, loss))
                refused = values < threshold
                entry["points"].append({  # type: ignore[union-attr]
                    "chosen_on": chosen_on,
                    "loss": loss,
                    "threshold": threshold,
                    "clinc150_oos_val_recall": float((on_clinc_val[name] < threshold).mean()),
                    "realistic_oos_recall": float(refused[out_of_scope].mean()),
                    "realistic_english_in_scope_answered": float((~refused[~out_of_scope & english]).mean()),
                    "realistic_other_in_scope_answered": float((~refused[~out_of_scope & ~english]).mean()),
                    "realistic_english_oos_precision": float(
                        (refused & out_of_scope)[considered].sum() / max(1, refused[considered].sum())
                    ),
                })
        report["scores"][name] = entry  # type: ignore[index]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", type=Path, help="an embedder version directory")
    parser.add_argument("--bitext-limit", type=int, help="load at most this many Bitext rows (default: all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(_embedder(args.embedder), args.bitext_limit)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    pin = report["embedder"]
    print(f"embedder {pin['model']}@{pin['version']} ({pin['family']}); rows {json.dumps(report['rows'])}")
    for name, entry in report["scores"].items():  # type: ignore[union-attr]
        print(
            f"{name:23s} AUROC realistic {entry['auroc_realistic']:.3f}, English + out of scope "
            f"{entry['auroc_realistic_english']:.3f}; CLINC150 oos vs Bitext test {entry['auroc_clinc150_oos_vs_bitext_test']:.3f}"
        )
        for p in entry["points"]:
            print(
                f"  on {p['chosen_on']:26s} loss {p['loss']:.2f}: threshold {p['threshold']:.3f}, CLINC150 oos_val recall "
                f"{p['clinc150_oos_val_recall']:.3f}; realistic oos recall {p['realistic_oos_recall']:.3f}, in scope answered "
                f"en {p['realistic_english_in_scope_answered']:.3f} / other {p['realistic_other_in_scope_answered']:.3f}, "
                f"precision (en) {p['realistic_english_oos_precision']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
