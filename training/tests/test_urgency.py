"""Urgency's combination fit (training/urgency.py): the ordinal model recovers a known ordering,
its probabilities are the ones Node computes, the folds' fits never see their fold, and the file
it writes is the one processors/urgency/combination.ts reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training import urgency

FEATURES = ["model", "signal:outage", "sentiment:negative"]
LEVELS = ["low", "medium", "high", "critical"]


def _feature_file(tmp_path: Path, n: int = 200, seed: int = 0) -> Path:
    """Rows whose level grows with the model's level and an outage; noise keeps every level present."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        model = float(rng.uniform(0, 2))
        outage = float(rng.random() < 0.2)
        negative = float(rng.random() < 0.4)
        score = 1.5 * model + 3.0 * outage + rng.logistic(0, 0.5)
        level = int(np.digitize(score, [1.0, 2.5, 4.0]))
        rows.append(
            {
                "id": f"rs-{i + 1:04d}",
                "fold": (i + 1) % 5,
                "urgency": LEVELS[level],
                "features": {"model": model, "signal:outage": outage, "sentiment:negative": negative},
            }
        )
    path = tmp_path / "features.json"
    path.write_text(
        json.dumps(
            {
                "set_sha256": "test",
                "versions": ["urgency@test"],
                "features": FEATURES,
                "levels": LEVELS,
                "folds": {"k": 5, "rule": "id modulo k"},
                "rows": rows,
            }
        )
    )
    return path


def test_probabilities_are_the_ordinal_model_node_serves() -> None:
    x = np.array([[1.0, 0.0, 0.0]])
    p = urgency.probabilities(x, np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.5, 2.5]))
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert p.sum() == pytest.approx(1.0)
    assert p[0, 0] == pytest.approx(1 - s(0.5))
    assert p[0, 1] == pytest.approx(s(0.5) - s(-0.5))
    assert p[0, 3] == pytest.approx(s(-1.5))


def test_fit_recovers_the_ordering_and_keeps_thresholds_increasing(tmp_path: Path) -> None:
    data = urgency.load_features(_feature_file(tmp_path))
    weights, thresholds = urgency.fit(data.x, data.y, 4, l2=0.1)
    model, outage, negative = weights
    assert model > 0.5 and outage > model  # an outage weighs more than one model step
    assert abs(negative) < 0.5 * model  # noise stays small
    assert np.all(np.diff(thresholds) > 0)


def test_cross_validation_fits_each_fold_without_it(tmp_path: Path) -> None:
    data = urgency.load_features(_feature_file(tmp_path))
    cv = urgency.cross_validate(data, grid=(0.1, 1.0))
    assert len(cv["fits"]) == 5
    for f, fitted in enumerate(cv["fits"]):
        train = data.fold != f
        l2 = urgency.choose_l2(data.x[train], data.y[train], data.fold[train], 4, (0.1, 1.0))
        w, t = urgency.fit(data.x[train], data.y[train], 4, l2)
        assert fitted["l2"] == l2
        assert fitted["weights"] == pytest.approx(list(w), abs=1e-5)
        assert fitted["thresholds"] == pytest.approx(list(t), abs=1e-5)
    # A learnable ordering: well above the majority level's share.
    majority = np.bincount(data.y).max() / len(data.y)
    assert cv["accuracy"] > majority + 0.1


def test_write_combination_is_the_file_node_reads(tmp_path: Path) -> None:
    out = tmp_path / "combination.json"
    result = urgency.write_combination(_feature_file(tmp_path, n=120), out, grid=(0.3,))
    written = json.loads(out.read_text())
    assert written == result
    assert written["features"] == FEATURES
    assert len(written["weights"]) == len(FEATURES)
    assert written["folds"]["k"] == 5 and len(written["folds"]["fits"]) == 5
    assert written["fitted_on"]["rows"] == 120
    assert set(written["fitted_on"]["out_of_fold"]) == {"accuracy", "macro_f1"}


def test_a_file_with_an_unknown_level_is_refused(tmp_path: Path) -> None:
    path = _feature_file(tmp_path, n=10)
    data = json.loads(path.read_text())
    data["rows"][0]["urgency"] = "urgent-ish"
    path.write_text(json.dumps(data))
    with pytest.raises(urgency.FeatureFileError, match="not one of"):
        urgency.load_features(path)


def test_the_served_file_was_fitted_on_the_committed_features() -> None:
    served = json.loads(urgency.COMBINATION_FILE.read_text())
    features = json.loads((Path(urgency.__file__).parent / "urgency-features.json").read_text())
    assert served["features"] == features["features"]
    assert served["fitted_on"]["set_sha256"] == features["set_sha256"]
    assert served["fitted_on"]["rows"] == len(features["rows"])
