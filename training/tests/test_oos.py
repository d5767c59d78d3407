"""The out-of-scope operating point: the rules that choose it on validation, on small fixed examples
whose right threshold is known, and the served intent target's CLINC150 out-of-scope rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.datasets import clinc150
from training.evaluation import evaluate_on, held_out_split, oos_test_rows
from training.oos import IN_SCOPE_SIMILARITY, MAX_PROBABILITY, choose_threshold, choose_threshold_within_loss, evaluate
from training.pipeline import Trainer
from training.predictor import Predictor
from training.tasks import TARGETS
from training.tests.conftest import SLICE


def _probs(confidences: list[float], labels: list[int], n: int = 3) -> np.ndarray:
    """Rows whose max probability is `confidence`, on `label`; the rest spread evenly."""
    rows = np.zeros((len(confidences), n))
    for i, (c, label) in enumerate(zip(confidences, labels, strict=True)):
        rows[i, :] = (1 - c) / (n - 1)
        rows[i, label] = c
    return rows


# Ten in-scope validation rows, all predicted right, with these confidences; five out of scope.
IN_CONF = [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.92, 0.91, 0.62]
IN_Y = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
OOS_CONF = [0.50, 0.55, 0.60, 0.80, 0.935]


def test_within_loss_takes_the_highest_recall_losing_at_most_the_stated_accuracy() -> None:
    in_probs, in_y, oos = _probs(IN_CONF, IN_Y), np.array(IN_Y), _probs(OOS_CONF, [1] * 5)
    # Without a threshold every in-scope row is right (accuracy 1.0). A loss of 0.1 lets one row
    # go: the threshold is 0.91 (the 0.62 row refused), refusing the four below 0.91 (recall 0.8);
    # 0.935 would refuse all five but lose four in-scope rows.
    chosen = choose_threshold_within_loss(in_probs, in_y, oos, max_in_scope_loss=0.1)
    assert chosen.threshold == pytest.approx(0.91)
    assert chosen.in_scope_accuracy == pytest.approx(0.9)
    assert chosen.oos_recall == pytest.approx(0.8)
    assert chosen.oos_precision == pytest.approx(0.8)  # four out of scope among the five refused
    # No loss allowed: the threshold stays at or below the least confident right answer (0.62),
    # and among those the highest recall is 0.62's own (refusing 0.50, 0.55, 0.60).
    strict = choose_threshold_within_loss(in_probs, in_y, oos, max_in_scope_loss=0.0)
    assert strict.threshold == pytest.approx(0.62)
    assert (strict.in_scope_accuracy, strict.oos_recall) == (pytest.approx(1.0), pytest.approx(0.6))
    # A wrong in-scope answer counts as lost whatever the threshold: the loss is from the accuracy
    # without a threshold (0.9 here), so a loss of 0.1 lets the 0.62 row go; 0.91 and 0.92 then
    # score alike (accuracy 0.8, recall 0.8) and the lower threshold is taken.
    wrong_y = np.array([*IN_Y[:-2], 0, 0])  # the 0.91 row is now wrong
    assert evaluate(0.0, in_probs, wrong_y, oos).in_scope_accuracy == pytest.approx(0.9)
    assert choose_threshold_within_loss(in_probs, wrong_y, oos, 0.1).threshold == pytest.approx(0.91)


def test_floor_rule_unchanged() -> None:
    in_probs, in_y, oos = _probs(IN_CONF, IN_Y), np.array(IN_Y), _probs(OOS_CONF, [1] * 5)
    assert choose_threshold(in_probs, in_y, oos, min_in_scope_accuracy=0.6).threshold == pytest.approx(0.94)


def test_a_score_other_than_the_probability_decides_refusals_while_the_probabilities_decide_answers() -> None:
    # Every row is confident (0.99), so the max probability cannot tell them apart; the scores can.
    in_probs, in_y = _probs([0.99] * 4, [0, 1, 2, 0]), np.array([0, 1, 2, 1])
    oos_probs = _probs([0.99] * 2, [0, 1])
    scores = (np.array([0.8, 0.7, 0.9, 0.75]), np.array([0.3, 0.5]))
    assert evaluate(0.6, in_probs, in_y, oos_probs).oos_recall == 0.0
    report = evaluate(0.6, in_probs, in_y, oos_probs, scores)
    assert report.oos_recall == 1.0 and report.in_scope_accuracy == 0.75 and report.oos_precision == 1.0
    chosen = choose_threshold_within_loss(in_probs, in_y, oos_probs, 0.0, scores)
    assert chosen.oos_recall == 1.0 and 0.5 < chosen.threshold <= 0.7
    # A cosine can be negative or round above 1; a manifest's threshold stays in [0, 1].
    negative = (np.array([-0.2, 0.7, 0.9, 0.75]), np.array([-0.5, 1.2]))
    assert 0.0 <= choose_threshold(in_probs, in_y, oos_probs, 0.0, negative).threshold <= 1.0


def test_the_served_intent_target_takes_clinc150s_out_of_scope_queries_apart_from_its_test_rows() -> None:
    target = TARGETS["intent"]
    assert target.oos and target.oos_rule == "loss" and target.oos_examples is not None
    validation, test = target.oos_examples(0, None)
    assert len(validation) >= 90 and len(test) >= 90
    assert {r.label for r in validation + test} == {"oos"}
    assert not {r.text.casefold() for r in validation} & {r.text.casefold() for r in test}
    # The Bitext split itself is untouched: its held-out sets (and earlier versions' digests) stay.
    assert TARGETS["intent-clinc150"].oos_examples is None


def test_every_intent_model_classify_serves_measures_a_point_and_serves_only_a_similarity_one() -> None:
    # classify serves `intent` for English and `intent-multilingual` for the other languages.
    for target in (TARGETS["intent"], TARGETS["intent-multilingual"]):
        assert target.oos and target.oos_rule == "loss" and target.oos_examples is clinc150.oos_examples
        assert target.serve_oos_point is False
    # The English head's point is on in-scope similarity, chosen against customer-style rows: served.
    assert TARGETS["intent"].oos_statistic == "similarity"
    assert TARGETS["intent-multilingual"].oos_statistic == "probability"


def test_an_intent_version_of_each_default_family_carries_its_point(models_root: Path) -> None:
    """Both default families (linear, head) on a slice: the point, its rule and source in the
    manifest, reported on CLINC150's oos_train beside the Bitext test rows; and the held-out
    evaluation (npm run eval's rows) finds the same out-of-scope rows."""
    versions = Trainer(models_root, seed=0, limit=SLICE).train(TARGETS["intent"], ["linear", "head"])
    for version in versions:
        point = version.manifest["operating_point"]
        assert 0 < point["threshold"] < 1
        assert point["out_of_scope_source"].startswith("clinc150 oos_val")
        assert "at most 0.02 below" in point["rule"]
        if version.manifest["family"] == "head":
            # On in-scope similarity, against customer-style copies of the held-out rows: served.
            assert point["statistic"] == IN_SCOPE_SIMILARITY and point["served"] is True
            assert point["in_scope_source"].startswith("customer-style copies of bitext")
            assert "customer-style copies of the validation rows" in point["rule"]
        else:
            # Measured, not served: classify takes the configured fallback for it (training/tasks.py).
            assert point["statistic"] == MAX_PROBABILITY and point["served"] is False
        assert point["validation"]["out_of_scope"] == point["test"]["out_of_scope"] == SLICE // 20
        assert version.manifest["metrics"]["oos"] == point["test"]
        # The Bitext split is untouched: no out-of-scope row in its sizes or test digest.
        split = held_out_split(version.manifest)
        assert all(r.label != "oos" for r in split.validation + split.test)
        rows = oos_test_rows(version.manifest, split)
        assert len(rows) == SLICE // 20 and {r.label for r in rows} == {"oos"}
        result = evaluate_on(Predictor(version.directory), split)
        assert result["oos_recall"] == pytest.approx(point["test"]["oos_recall"], abs=1e-6)
