"""The promotion gate: a pure decision on two versions' predictions for the same held-out rows.

A candidate is promoted when its macro-F1 beats production's by the configured margin and no
class loses more than the configured recall. Per-class test sets can be small (CLINC150 has 10
rows per intent, where one row is 0.1 recall), so a recall drop only blocks when it is also
significant: an exact one-sided McNemar test on that class's rows (rows production gets right
and the candidate wrong, against the reverse) must give p < `recall_drop_alpha`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

from training.config import GatePolicy
from training.metrics import macro_f1


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    numbers: dict[str, Any]
    action: str = ""  # what the registry did with it: promoted, shadow_started or rejected


def _mcnemar(truth: np.ndarray, candidate: np.ndarray, production: np.ndarray) -> tuple[int, int, float]:
    """Rows production gets right and the candidate wrong (lost), the reverse (gained), and the
    exact one-sided p-value that the candidate is worse."""
    prod_right, cand_right = production == truth, candidate == truth
    lost, gained = int((prod_right & ~cand_right).sum()), int((cand_right & ~prod_right).sum())
    p_value = binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue if lost > gained else 1.0
    return lost, gained, float(p_value)


def feedback_check(
    truth: Sequence[str], candidate: Sequence[str], production: Sequence[str] | None, policy: GatePolicy
) -> tuple[dict[str, Any], str | None]:
    """Numbers on the `feedback` evaluation split, and the failure when the candidate is clearly
    worse there than production (accuracy lower by more than `max_feedback_drop`, significant by
    an exact one-sided McNemar test at `recall_drop_alpha`)."""
    y, cand = np.asarray(truth, dtype=object), np.asarray(candidate, dtype=object)
    numbers: dict[str, Any] = {"n": len(y), "candidate_accuracy": round(float((cand == y).mean()), 6)}
    if production is None or not len(y):
        return numbers, None
    prod = np.asarray(production, dtype=object)
    lost, gained, p_value = _mcnemar(y, cand, prod)
    drop = float((prod == y).mean() - (cand == y).mean())
    numbers.update(
        production_accuracy=round(float((prod == y).mean()), 6),
        accuracy_drop=round(drop, 6),
        lost=lost,
        gained=gained,
        p_value=round(p_value, 6),
        max_feedback_drop=policy.max_feedback_drop,
    )
    gain_p = binomtest(gained, lost + gained, 0.5, alternative="greater").pvalue if gained > lost else 1.0
    numbers["gain_p_value"] = round(float(gain_p), 6)
    if drop > policy.max_feedback_drop and p_value < policy.recall_drop_alpha:
        return numbers, (
            f"on the {len(y)} held-out feedback rows accuracy drops by {drop:.4f} "
            f"({lost} lost, {gained} gained, p={p_value:.3f}), more than {policy.max_feedback_drop:.4f}"
        )
    return numbers, None


def live_gain(decision: Decision, feedback: dict[str, Any], policy: GatePolicy) -> Decision:
    """The margin passed on the feedback split instead (GatePolicy): `decision` failed on the
    base held-out set by its margin alone, within `max_base_loss_for_live_gain`, and the held-out
    feedback rows show a significant accuracy gain of at least the margin."""
    numbers = decision.numbers
    gain = numbers.get("macro_f1_gain")
    margin_only = not numbers.get("blocking_classes") and gain is not None and gain < policy.min_macro_f1_gain
    if decision.promote or not margin_only or "production_accuracy" not in feedback:
        return decision
    live = -float(feedback["accuracy_drop"])
    if gain < -policy.max_base_loss_for_live_gain or live < policy.min_macro_f1_gain:
        return decision
    if feedback["gain_p_value"] >= policy.recall_drop_alpha:
        return decision
    return Decision(
        True,
        f"macro-F1 {gain:+.4f} on the base held-out set (within {policy.max_base_loss_for_live_gain:.4f}), and "
        f"accuracy {live:+.4f} on the {feedback['n']} held-out feedback rows ({feedback['gained']} gained, "
        f"{feedback['lost']} lost, p={feedback['gain_p_value']:.3f}) with no significant class recall loss",
        {**numbers, "live_gain": 1},
    )


def decide_absolute(
    truth: Sequence[str],
    candidate: Sequence[str],
    majority_accuracy: float,
    policy: GatePolicy,
    why: str,
    unmapped: list[str],
) -> Decision:
    """A candidate with no comparable production version (`why`): it must beat the majority
    class by `new_taxonomy_min_gain` accuracy and reach `new_taxonomy_min_macro_f1`, and every
    label must be routable (`unmapped`: labels the routing rules do not map)."""
    y, cand = np.asarray(truth, dtype=object), np.asarray(candidate, dtype=object)
    accuracy, f1 = float((cand == y).mean()), macro_f1(y, cand)
    numbers: dict[str, Any] = {
        "n": len(y),
        "candidate_accuracy": round(accuracy, 6),
        "candidate_macro_f1": f1,
        "majority_accuracy": round(majority_accuracy, 6),
        "unmapped_labels": len(unmapped),
        "policy": {
            "new_taxonomy_min_gain": policy.new_taxonomy_min_gain,
            "new_taxonomy_min_macro_f1": policy.new_taxonomy_min_macro_f1,
        },
    }
    failures = []
    if accuracy < majority_accuracy + policy.new_taxonomy_min_gain:
        failures.append(
            f"accuracy {accuracy:.4f} is not {policy.new_taxonomy_min_gain:.2f} above the majority class's "
            f"{majority_accuracy:.4f}"
        )
    if f1 < policy.new_taxonomy_min_macro_f1:
        failures.append(f"macro-F1 {f1:.4f} is below the floor {policy.new_taxonomy_min_macro_f1:.4f}")
    if unmapped:
        failures.append(f"the routing rules map no department for {', '.join(map(repr, unmapped))}")
    if failures:
        return Decision(False, f"{why}: " + "; ".join(failures), numbers)
    return Decision(
        True,
        f"{why}: accuracy {accuracy:.4f} over the majority class's {majority_accuracy:.4f}, macro-F1 {f1:.4f}, "
        "every label routed",
        numbers,
    )


def _recall_drop(
    truth: np.ndarray, candidate: np.ndarray, production: np.ndarray, label: str
) -> dict[str, Any]:
    rows = truth == label
    prod_right, cand_right = production[rows] == label, candidate[rows] == label
    lost, gained = int((prod_right & ~cand_right).sum()), int((cand_right & ~prod_right).sum())
    p_value = binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue if lost > gained else 1.0
    return {
        "class": label,
        "n": int(rows.sum()),
        "drop": round((lost - gained) / rows.sum(), 6),
        "lost": lost,
        "gained": gained,
        "p_value": round(float(p_value), 6),
    }


def decide(
    truth: Sequence[str], candidate: Sequence[str], production: Sequence[str] | None, policy: GatePolicy
) -> Decision:
    """truth / candidate / production: labels of the same held-out rows, in the same order."""
    y = np.asarray(truth, dtype=object)
    cand = np.asarray(candidate, dtype=object)
    candidate_f1 = macro_f1(y, cand)
    if production is None:
        return Decision(True, "no production version", {"candidate_macro_f1": candidate_f1, "n": len(y)})
    prod = np.asarray(production, dtype=object)
    production_f1 = macro_f1(y, prod)
    gain = candidate_f1 - production_f1
    drops = [_recall_drop(y, cand, prod, label) for label in sorted(set(truth))]
    blocking = [
        d for d in drops if d["drop"] > policy.max_recall_drop and d["p_value"] < policy.recall_drop_alpha
    ]
    numbers: dict[str, Any] = {
        "n": len(y),
        "candidate_macro_f1": candidate_f1,
        "production_macro_f1": production_f1,
        "macro_f1_gain": round(gain, 6),
        "policy": {
            "min_macro_f1_gain": policy.min_macro_f1_gain,
            "max_recall_drop": policy.max_recall_drop,
            "recall_drop_alpha": policy.recall_drop_alpha,
        },
        "worst_recall_drop": max(drops, key=lambda d: (d["drop"], -d["p_value"])),
        "blocking_classes": blocking,
    }
    failures = []
    if gain < policy.min_macro_f1_gain:
        failures.append(f"macro-F1 gain {gain:+.4f} is below the required {policy.min_macro_f1_gain:+.4f}")
    for d in blocking:
        failures.append(
            f"recall of class {d['class']!r} drops by {d['drop']:.4f} (p={d['p_value']:.3f}), "
            f"more than {policy.max_recall_drop:.4f}"
        )
    if failures:
        return Decision(False, "; ".join(failures), numbers)
    return Decision(
        True,
        f"macro-F1 {gain:+.4f} over production and no significant class recall loss "
        f"above {policy.max_recall_drop:.4f}",
        numbers,
    )
