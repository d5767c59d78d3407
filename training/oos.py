"""Out-of-scope detection by thresholding a per-inquiry score: by default the maximum calibrated
probability; for a head, optionally its in-scope similarity (the cosine of the embedding to the
nearest intent centroid, models/embedding_head.py), which separates customers' out-of-scope text
far better (training/README.md, "Out of scope by similarity")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The manifest's `operating_point.statistic`: what the threshold applies to (classify reads it too).
MAX_PROBABILITY = "max calibrated probability"
IN_SCOPE_SIMILARITY = "in-scope similarity"

# (in-scope rows' scores, out-of-scope rows' scores) when the statistic is not the max probability.
Scores = tuple[np.ndarray, np.ndarray]


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


def _scores(in_probs: np.ndarray, oos_probs: np.ndarray, scores: Scores | None) -> Scores:
    return scores if scores is not None else (in_probs.max(axis=1), oos_probs.max(axis=1))


def evaluate(
    threshold: float, in_probs: np.ndarray, in_y: np.ndarray, oos_probs: np.ndarray, scores: Scores | None = None
) -> OosReport:
    """An inquiry scoring below `threshold` is refused; `in_probs` decide the in-scope answers."""
    in_scores, oos_scores = _scores(in_probs, oos_probs, scores)
    answered = in_scores >= threshold
    refused_oos = int((oos_scores < threshold).sum())
    refused = refused_oos + int((~answered).sum())
    return OosReport(
        threshold=threshold,
        in_scope_accuracy=float((answered & (in_probs.argmax(axis=1) == in_y)).mean()),
        oos_recall=float((oos_scores < threshold).mean()),
        in_scope=len(in_y),
        out_of_scope=len(oos_scores),
        oos_precision=refused_oos / refused if refused else None,
    )


def choose_threshold(
    in_probs: np.ndarray,
    in_y: np.ndarray,
    oos_probs: np.ndarray,
    min_in_scope_accuracy: float,
    scores: Scores | None = None,
) -> OosReport:
    """On validation: the threshold with the highest out-of-scope recall among those keeping
    in-scope accuracy at or above the floor; if none does, the one with the best in-scope accuracy."""
    in_scores, oos_scores = _scores(in_probs, oos_probs, scores)
    candidates = np.unique(np.round(np.concatenate([[0.0], in_scores, oos_scores]), 4))
    candidates = candidates[(candidates >= 0) & (candidates <= 1)]  # a manifest's threshold is in [0, 1]
    reports = [evaluate(float(t), in_probs, in_y, oos_probs, (in_scores, oos_scores)) for t in candidates]
    meeting = [r for r in reports if r.in_scope_accuracy >= min_in_scope_accuracy]
    if meeting:
        return max(meeting, key=lambda r: (r.oos_recall, r.in_scope_accuracy, -r.threshold))
    return max(reports, key=lambda r: (r.in_scope_accuracy, r.oos_recall, -r.threshold))


def choose_threshold_within_loss(
    in_probs: np.ndarray,
    in_y: np.ndarray,
    oos_probs: np.ndarray,
    max_in_scope_loss: float,
    scores: Scores | None = None,
) -> OosReport:
    """On validation: the threshold with the highest out-of-scope recall among those whose
    in-scope accuracy is at most `max_in_scope_loss` below the accuracy with no threshold (every
    inquiry answered); a model already near-perfect in scope keeps that, however easy its data."""
    floor = evaluate(0.0, in_probs, in_y, oos_probs, scores).in_scope_accuracy - max_in_scope_loss
    return choose_threshold(in_probs, in_y, oos_probs, floor - 1e-12, scores)
