"""Held-out metrics on label strings: accuracy, macro-F1, per-class recall, expected calibration
error. Strings, not indexes, so two versions with different label lists compare on one set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, recall_score

ECE_BINS = 15


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins (low, high], weighted by size."""
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def report(y_true: Sequence[str], y_pred: Sequence[str], confidence: np.ndarray) -> dict[str, Any]:
    """Metrics over the classes present in y_true (a small slice may miss some)."""
    truth, predicted = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    present = sorted(set(y_true))
    correct = truth == predicted
    recalls = recall_score(truth, predicted, labels=present, average=None, zero_division=0)
    return {
        "n": len(truth),
        "accuracy": float(correct.mean()),
        "macro_f1": float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        "per_class_recall": {label: float(r) for label, r in zip(present, recalls, strict=True)},
        "ece": expected_calibration_error(confidence, correct),
    }


def report_probabilities(
    y_true: Sequence[str], probabilities: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    return report(y_true, [labels[i] for i in probabilities.argmax(axis=1)], probabilities.max(axis=1))
