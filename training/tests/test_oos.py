"""The out-of-scope operating point: the rules that choose it on validation, on small fixed examples
whose right threshold is known, and the served intent target's CLINC150 out-of-scope rows."""

from __future__ import annotations

import numpy as np
import pytest

from training.oos import choose_threshold, choose_threshold_within_loss, evaluate
from training.tasks import TARGETS


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


def test_the_served_intent_target_takes_clinc150s_out_of_scope_queries_apart_from_its_test_rows() -> None:
    target = TARGETS["intent"]
    assert target.oos and target.oos_rule == "loss" and target.oos_examples is not None
    validation, test = target.oos_examples(0, None)
    assert len(validation) >= 90 and len(test) >= 90
    assert {r.label for r in validation + test} == {"oos"}
    assert not {r.text.casefold() for r in validation} & {r.text.casefold() for r in test}
    # The Bitext split itself is untouched: its held-out sets (and earlier versions' digests) stay.
    assert TARGETS["intent-clinc150"].oos_examples is None
