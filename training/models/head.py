"""The logistic-regression head shared by the families, chosen on validation macro-F1."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from training.metrics import macro_f1


def fit_logistic_regression(
    x: np.ndarray | sp.spmatrix,
    y: np.ndarray,
    x_val: np.ndarray | sp.spmatrix,
    y_val: np.ndarray,
    c_grid: tuple[float, ...],
    seed: int,
    class_weights: tuple[str | None, ...] = (None,),
) -> tuple[float, LogisticRegression]:
    """The model with the best validation macro-F1 over C x class weighting, and that score;
    ties keep the earlier candidate. `"balanced"` weights classes by inverse frequency, which
    trades some accuracy on the majority class for recall on the others."""
    best: tuple[float, LogisticRegression] | None = None
    for class_weight in class_weights:
        for c in c_grid:
            model = LogisticRegression(
                C=c, class_weight=class_weight, max_iter=3000, random_state=seed
            ).fit(x, y)
            score = macro_f1(y_val, model.predict(x_val))
            if best is None or score > best[0]:
                best = (score, model)
    assert best is not None, "empty grid"
    return best


def class_rows(model: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients with one row per class: a binary model's single logit z becomes (-z/2, z/2),
    whose softmax equals the logistic model's probabilities."""
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:
        return np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    return coef, intercept
