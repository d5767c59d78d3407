"""Urgency's combination: an ordinal (proportional-odds) logistic regression over the inputs
processors/urgency/combination.ts computes (the ticket-priority model's expected level, the
explicit signals, the intent's group, the sentiment), fitted on the realistic set's agent-judged
urgency labels and written as processors/urgency/combination.json, which Node serves.

The realistic set is also the evaluation set, so the fit is cross-validated: the rows are cut into
k folds by a rule pinned in Node (models/eval/realistic.ts realisticFold, carried in the feature
file) and the file keeps, beside the weights fitted on every row (served), the weights fitted
without each fold; `npm run eval` scores each row with its fold's weights and reports only those
out-of-fold figures. The model stays small on purpose (one weight per input, three thresholds,
L2 on the weights, its strength chosen by an inner cross-validation) because the set has 380 rows.

The inputs come from Node (`npm run eval -- --urgency-features <file>`), so the features are
defined once, in TypeScript; this module only fits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

COMBINATION_FILE = Path(__file__).resolve().parent.parent / "processors" / "urgency" / "combination.json"
# L2 on the weights (not the thresholds), on the summed log-loss; chosen from this grid by
# cross-validation inside the rows a fit may see (nested: a fold's figures never choose its own L2).
L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)


class FeatureFileError(ValueError):
    """The feature file is not what `npm run eval -- --urgency-features` writes."""


@dataclass(frozen=True)
class FeatureSet:
    features: list[str]
    levels: list[str]
    x: np.ndarray  # rows × features
    y: np.ndarray  # level index per row
    fold: np.ndarray
    k: int
    rule: str
    source: dict[str, Any]


def load_features(path: Path) -> FeatureSet:
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        features = list(data["features"])
        levels = list(data["levels"])
        k = int(data["folds"]["k"])
        rows = data["rows"]
    except (KeyError, TypeError) as error:
        raise FeatureFileError(f"{path}: missing {error}") from error
    if len(levels) != 4:
        raise FeatureFileError(f"{path}: {len(levels)} levels; the combination has four thresholds' worth (4 levels)")
    x = np.array([[float(r["features"][f]) for f in features] for r in rows])
    try:
        y = np.array([levels.index(r["urgency"]) for r in rows])
    except ValueError as error:
        raise FeatureFileError(f"{path}: a row's urgency is not one of {levels}") from error
    fold = np.array([int(r["fold"]) for r in rows])
    if fold.min() < 0 or fold.max() >= k:
        raise FeatureFileError(f"{path}: folds outside 0..{k - 1}")
    return FeatureSet(
        features,
        levels,
        x,
        y,
        fold,
        k,
        str(data["folds"]["rule"]),
        {"set_sha256": data.get("set_sha256"), "versions": data.get("versions", [])},
    )


def _thresholds(params: np.ndarray, n_features: int) -> np.ndarray:
    # θ_0, then positive steps: the thresholds stay increasing without constraints.
    start, steps = params[n_features], params[n_features + 1 :]
    return start + np.concatenate([[0.0], np.cumsum(np.exp(steps))])


def probabilities(x: np.ndarray, weights: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """P(level = j) per row, as processors/urgency/combination.ts computes it."""
    above = expit((x @ weights)[:, None] - thresholds[None, :])
    ones = np.ones((above.shape[0], 1))
    zeros = np.zeros((above.shape[0], 1))
    return np.hstack([ones, above]) - np.hstack([above, zeros])


def fit(x: np.ndarray, y: np.ndarray, levels: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and increasing thresholds minimising the summed log-loss plus l2 × |w|²."""
    n_features = x.shape[1]

    def loss(params: np.ndarray) -> float:
        w = params[:n_features]
        p = probabilities(x, w, _thresholds(params, n_features))
        chosen = np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)
        return float(-np.log(chosen).sum() + l2 * (w @ w))

    start = np.concatenate([np.zeros(n_features), [0.0], np.zeros(levels - 2)])
    result = minimize(loss, start, method="L-BFGS-B")
    if not np.isfinite(result.fun):
        raise RuntimeError(f"the urgency combination did not converge: {result.message}")
    return result.x[:n_features], _thresholds(result.x, n_features)


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    scores = []
    for label in np.unique(truth):
        tp = int(((truth == label) & (predicted == label)).sum())
        fp = int(((truth != label) & (predicted == label)).sum())
        fn = int(((truth == label) & (predicted != label)).sum())
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def choose_l2(x: np.ndarray, y: np.ndarray, fold: np.ndarray, levels: int = 4, grid: tuple[float, ...] = L2_GRID) -> float:
    """The L2 of the grid with the lowest out-of-fold log-loss over the given rows' own folds."""
    best, best_loss = grid[0], np.inf
    for l2 in grid:
        total = 0.0
        for f in np.unique(fold):
            train = fold != f
            w, t = fit(x[train], y[train], levels, l2)
            p = probabilities(x[~train], w, t)
            total -= float(np.log(np.clip(p[np.arange(len(y[~train])), y[~train]], 1e-12, 1.0)).sum())
        if total < best_loss:
            best, best_loss = l2, total
    return best


def cross_validate(data: FeatureSet, grid: tuple[float, ...] = L2_GRID) -> dict[str, Any]:
    """Per fold, the weights fitted without it (its L2 chosen without it too); and the out-of-fold figures they give."""
    fits = []
    predicted = np.zeros(len(data.y), dtype=int)
    levels = len(data.levels)
    for f in range(data.k):
        train = data.fold != f
        l2 = choose_l2(data.x[train], data.y[train], data.fold[train], levels, grid)
        w, t = fit(data.x[train], data.y[train], levels, l2)
        fits.append({"weights": _rounded(w), "thresholds": _rounded(t), "l2": l2})
        held = ~train
        predicted[held] = probabilities(data.x[held], w, t).argmax(axis=1)
    return {
        "fits": fits,
        "accuracy": float((predicted == data.y).mean()),
        "macro_f1": _macro_f1(data.y, predicted),
    }


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


def combination(data: FeatureSet, grid: tuple[float, ...] = L2_GRID) -> dict[str, Any]:
    """The weights file: the served fit on every row, and the k fold fits for the out-of-fold figures."""
    l2 = choose_l2(data.x, data.y, data.fold, len(data.levels), grid)
    weights, thresholds = fit(data.x, data.y, len(data.levels), l2)
    cv = cross_validate(data, grid)
    return {
        "description": (
            "Urgency combination (processors/urgency/combination.ts), fitted by training/urgency.py on the "
            "realistic set's agent-judged labels; folds.fits[i] is fitted without fold i and scores it in npm run eval."
        ),
        "features": data.features,
        "weights": _rounded(weights),
        "thresholds": _rounded(thresholds),
        "folds": {"k": data.k, "rule": data.rule, "fits": cv["fits"]},
        "fitted_on": {
            **data.source,
            "rows": int(len(data.y)),
            "levels": {level: int((data.y == i).sum()) for i, level in enumerate(data.levels)},
            "l2": l2,
            "l2_grid": list(grid),
            "out_of_fold": {"accuracy": round(cv["accuracy"], 4), "macro_f1": round(cv["macro_f1"], 4)},
        },
    }


def write_combination(
    features_file: Path, out: Path = COMBINATION_FILE, grid: tuple[float, ...] = L2_GRID
) -> dict[str, Any]:
    result = combination(load_features(features_file), grid)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result
