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
