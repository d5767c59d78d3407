"""Out-of-scope detection by thresholding the maximum calibrated probability."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OosReport:
    threshold: float
    in_scope_accuracy: float  # correct intent and confident enough to answer
    oos_recall: float  # out-of-scope queries refused
    in_scope: int
    out_of_scope: int
    # Refused queries that are out of scope (None when none is refused: manifests are JSON);
    # it depends on the mix's ratio of out-of-scope to in-scope rows.
    oos_precision: float | None = None


def evaluate(threshold: float, in_probs: np.ndarray, in_y: np.ndarray, oos_probs: np.ndarray) -> OosReport:
    answered = in_probs.max(axis=1) >= threshold
    refused_oos = int((oos_probs.max(axis=1) < threshold).sum())
    refused = refused_oos + int((~answered).sum())
    return OosReport(
        threshold=threshold,
        in_scope_accuracy=float((answered & (in_probs.argmax(axis=1) == in_y)).mean()),
        oos_recall=float((oos_probs.max(axis=1) < threshold).mean()),
        in_scope=len(in_y),
        out_of_scope=len(oos_probs),
        oos_precision=refused_oos / refused if refused else None,
    )


def choose_threshold(
    in_probs: np.ndarray, in_y: np.ndarray, oos_probs: np.ndarray, min_in_scope_accuracy: float
) -> OosReport:
    """On validation: the threshold with the highest out-of-scope recall among those keeping
    in-scope accuracy at or above the floor; if none does, the one with the best in-scope accuracy."""
    candidates = np.unique(np.round(np.concatenate([[0.0], in_probs.max(axis=1), oos_probs.max(axis=1)]), 4))
    reports = [evaluate(float(t), in_probs, in_y, oos_probs) for t in candidates]
    meeting = [r for r in reports if r.in_scope_accuracy >= min_in_scope_accuracy]
    if meeting:
        return max(meeting, key=lambda r: (r.oos_recall, r.in_scope_accuracy, -r.threshold))
    return max(reports, key=lambda r: (r.in_scope_accuracy, r.oos_recall, -r.threshold))


def choose_threshold_within_loss(
    in_probs: np.ndarray, in_y: np.ndarray, oos_probs: np.ndarray, max_in_scope_loss: float
) -> OosReport:
    """On validation: the threshold with the highest out-of-scope recall among those whose
    in-scope accuracy is at most `max_in_scope_loss` below the accuracy with no threshold (every
    inquiry answered); a model already near-perfect in scope keeps that, however easy its data."""
    floor = evaluate(0.0, in_probs, in_y, oos_probs).in_scope_accuracy - max_in_scope_loss
    return choose_threshold(in_probs, in_y, oos_probs, floor - 1e-12)
