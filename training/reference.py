"""Reference distributions that drift detection compares live traffic against.

Input-side statistics come from the training rows (what the model learned from); output-side
statistics come from the held-out test rows, where confidences are not inflated by fitting."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

CONFIDENCE_EDGES = [round(i / 20, 2) for i in range(21)]
# Characters; the last bin is open-ended. Inquiries run from one word to long e-mails.
LENGTH_EDGES = [0, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]


def _shares(counter: Counter[str], keys: list[str] | None = None) -> dict[str, float]:
    total = sum(counter.values()) or 1
    return {k: counter.get(k, 0) / total for k in (keys if keys is not None else sorted(counter))}


def histogram(values: np.ndarray, edges: Sequence[float], open_ended: bool) -> dict[str, Any]:
    """Counts per bin [edges[i], edges[i+1]); the last bin also holds values >= its left edge
    when open_ended, and values equal to the right edge otherwise."""
    bounds = np.asarray(edges, dtype=np.float64)
    bins = np.clip(
        np.searchsorted(bounds, values, side="right") - 1, 0, len(bounds) - (1 if open_ended else 2)
    )
    counts = np.bincount(bins, minlength=len(bounds) - (0 if open_ended else 1))
    return {"edges": edges, "open_ended": open_ended, "counts": counts.tolist()}


def build(
    labels: list[str],
    train_labels: list[str],
    train_texts: list[str],
    train_languages: list[str],
    test_probabilities: np.ndarray,
    features: list[dict[str, Any]],
) -> dict[str, Any]:
    predicted = Counter(labels[i] for i in test_probabilities.argmax(axis=1))
    return {
        "label_distribution": {"computed_on": "train", "shares": _shares(Counter(train_labels), labels)},
        "prediction_distribution": {"computed_on": "test", "shares": _shares(predicted, labels)},
        "confidence_histogram": {
            "computed_on": "test",
            "statistic": "max calibrated probability",
            **histogram(test_probabilities.max(axis=1), CONFIDENCE_EDGES, open_ended=False),
        },
        "input_length_histogram": {
            "computed_on": "train",
            "unit": "characters",
            **histogram(
                np.array([len(t) for t in train_texts], dtype=np.float64), LENGTH_EDGES, open_ended=True
            ),
        },
        "language_histogram": {"computed_on": "train", "shares": _shares(Counter(train_languages))},
        "features": features,
    }


def vector_summary(name: str, vectors: np.ndarray) -> dict[str, Any]:
    return {
        "name": name,
        "computed_on": "train",
        "dimensions": int(vectors.shape[1]),
        "mean": [round(float(v), 6) for v in vectors.mean(axis=0)],
        "std": [round(float(v), 6) for v in vectors.std(axis=0)],
    }


def scalar_summary(name: str, values: np.ndarray) -> dict[str, Any]:
    return {
        "name": name,
        "computed_on": "train",
        "mean": float(values.mean()),
        "std": float(values.std()),
        "quantiles": {str(q): float(np.quantile(values, q)) for q in (0.01, 0.05, 0.5, 0.95, 0.99)},
    }
