from __future__ import annotations

from training.config import GatePolicy
from training.gate import decide, feedback_check, live_gain

POLICY = GatePolicy(min_macro_f1_gain=0.01, max_recall_drop=0.05, recall_drop_alpha=0.05)


def rows(**per_class: tuple[int, int, int]) -> tuple[list[str], list[str], list[str]]:
    """class=(n, production right, candidate right) -> truth, candidate, production; errors
    predict "other", and the candidate's right rows are the first ones, production's the last."""
    truth: list[str] = []
    candidate: list[str] = []
    production: list[str] = []
    for label, (n, prod_right, cand_right) in per_class.items():
        truth += [label] * n
        candidate += [label if i < cand_right else "other" for i in range(n)]
        production += [label if i >= n - prod_right else "other" for i in range(n)]
    return truth, candidate, production


def test_first_model_is_promoted() -> None:
    truth, candidate, _ = rows(a=(10, 0, 5))
    decision = decide(truth, candidate, None, POLICY)
    assert decision.promote and decision.reason == "no production version"


def test_better_candidate_is_promoted() -> None:
    truth, candidate, production = rows(a=(100, 80, 95), b=(100, 80, 90))
    decision = decide(truth, candidate, production, POLICY)
    assert decision.promote, decision.reason
    assert decision.numbers["macro_f1_gain"] > 0.01


def test_worse_candidate_is_rejected_with_its_numbers() -> None:
    truth, candidate, production = rows(a=(100, 90, 85), b=(100, 90, 88))
    decision = decide(truth, candidate, production, POLICY)
    assert not decision.promote
    assert "is below the required +0.0100" in decision.reason
    assert decision.numbers["candidate_macro_f1"] < decision.numbers["production_macro_f1"]


def test_significant_class_recall_loss_blocks_an_otherwise_better_candidate() -> None:
    truth, candidate, production = rows(a=(200, 100, 200), b=(100, 100, 80))
    decision = decide(truth, candidate, production, POLICY)
    assert not decision.promote
    assert "recall of class 'b' drops by 0.2000" in decision.reason
    assert decision.numbers["blocking_classes"][0]["lost"] == 20


def test_small_class_noise_does_not_block() -> None:
    """Three of ten rows lost (p = 0.125) is within the noise of a ten-row class."""
    truth, candidate, production = rows(a=(200, 100, 200), b=(10, 10, 7))
    decision = decide(truth, candidate, production, POLICY)
    assert decision.promote, decision.reason
    assert decision.numbers["worst_recall_drop"]["class"] == "b"


def test_every_drop_counts_when_alpha_is_one() -> None:
    truth, candidate, production = rows(a=(200, 100, 200), b=(10, 10, 7))
    strict = GatePolicy(min_macro_f1_gain=0.01, max_recall_drop=0.05, recall_drop_alpha=1.0)
    assert not decide(truth, candidate, production, strict).promote


def test_a_retraining_that_gains_on_the_live_traffic_passes_the_margin_there() -> None:
    # Saturated on the base held-out set (no gain possible), far better on the held-out feedback rows.
    truth, candidate, production = rows(a=(100, 99, 99), b=(100, 99, 99))
    base = decide(truth, candidate, production, POLICY)
    assert not base.promote and "below the required" in base.reason
    live_truth, live_candidate, live_production = rows(a=(60, 30, 50))
    feedback, failure = feedback_check(live_truth, live_candidate, live_production, POLICY)
    assert failure is None
    decision = live_gain(base, feedback, POLICY)
    assert decision.promote, decision.reason
    assert "on the 60 held-out feedback rows" in decision.reason and decision.numbers["live_gain"] == 1


def test_the_live_gain_does_not_excuse_a_base_loss_a_recall_loss_or_noise() -> None:
    live_truth, live_candidate, live_production = rows(a=(60, 30, 50))
    feedback, _ = feedback_check(live_truth, live_candidate, live_production, POLICY)
    worse = decide(*rows(a=(100, 99, 95), b=(100, 99, 95)), POLICY)
    assert not live_gain(worse, feedback, POLICY).promote
    recall = decide(*rows(a=(300, 100, 300), b=(100, 100, 70)), POLICY)
    assert recall.numbers["blocking_classes"] and not live_gain(recall, feedback, POLICY).promote
    saturated = decide(*rows(a=(100, 99, 99)), POLICY)
    noise, _ = feedback_check(*rows(a=(60, 30, 33)), POLICY)
    assert not live_gain(saturated, noise, POLICY).promote
