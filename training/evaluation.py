"""Evaluation of version directories through onnxruntime on their held-out test set."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from training.datasets import team
from training.datasets.base import OOS_LABEL, Example, Split, dedupe_key
from training.metrics import report, report_probabilities
from training.oos import IN_SCOPE_SIMILARITY, evaluate as evaluate_oos
from training.predictor import Predictor
from training.tasks import TARGETS


class HeldOutMismatch(Exception):
    """The dataset no longer yields the test set a version was evaluated on."""


def held_out_split(manifest: dict[str, Any]) -> Split:
    """Rebuilds the split a version was trained on (its target's data set, or the team's file
    it names under `dataset.data`) and proves its test set is the same rows."""
    dataset = manifest["dataset"]
    recorded = dataset.get("data")
    if recorded:
        data = team.read(team.DataSpec.of(recorded))
        if data.sha256 != recorded["sha256"]:
            raise HeldOutMismatch(
                f"{manifest['model']}@{manifest['version']}: the data file {recorded['path']} changed since "
                f"training (sha256 {data.sha256}, trained on {recorded['sha256']})"
            )
        split = team.split(data, int(dataset["seed"]), dataset["limit"])
    else:
        split = TARGETS[str(manifest["model"])].load(int(dataset["seed"]), dataset["limit"])
    if split.digest("test") != dataset["digests"]["test"]:
        raise HeldOutMismatch(
            f"{manifest['model']}@{manifest['version']}: the test set changed since training"
        )
    return split


def oos_test_rows(manifest: dict[str, Any], split: Split) -> list[Example]:
    """The out-of-scope rows a version's operating point is reported on: the split's own, else
    (the served intent model, whose data set has none) its target's `oos_examples` test part,
    CLINC150's `oos_train`; none for a version without an operating point."""
    rows = [r for r in split.test if r.label == OOS_LABEL]
    target = TARGETS.get(str(manifest.get("model")))
    if rows or not manifest.get("operating_point") or target is None or target.oos_examples is None:
        return rows
    dataset = manifest["dataset"]
    trained = {dedupe_key(r.text) for r in split.train}
    return [r for r in target.oos_examples(int(dataset["seed"]), dataset["limit"])[1] if dedupe_key(r.text) not in trained]


def predict_held_out(predictor: Predictor, split: Split) -> tuple[list[str], list[str]]:
    """True and predicted labels of the in-scope test rows, in split order."""
    in_scope = [r for r in split.test if r.label != OOS_LABEL]
    probabilities = predictor.probabilities([r.text for r in in_scope])
    return [r.label for r in in_scope], [predictor.labels[i] for i in probabilities.argmax(axis=1)]


def evaluate_on(predictor: Predictor, split: Split) -> dict[str, Any]:
    """Scores a version on `split.test`: in-scope metrics, plus out-of-scope metrics at the
    version's own operating threshold when it has one."""
    in_scope = [r for r in split.test if r.label != OOS_LABEL]
    in_texts = [r.text for r in in_scope]
    probabilities = predictor.probabilities(in_texts)
    result = report_probabilities([r.label for r in in_scope], probabilities, predictor.labels)
    operating_point = predictor.manifest.get("operating_point")
    if operating_point:
        oos_rows = oos_test_rows(predictor.manifest, split)
        index = {label: i for i, label in enumerate(predictor.labels)}
        y = np.array([index.get(r.label, -1) for r in in_scope])
        oos_texts = [r.text for r in oos_rows]
        # Without scores, evaluate_oos thresholds the max probability of the probabilities it has.
        scores = (
            (predictor.in_scope_similarity(in_texts), predictor.in_scope_similarity(oos_texts))
            if operating_point.get("statistic") == IN_SCOPE_SIMILARITY
            else None
        )
        oos = evaluate_oos(float(operating_point["threshold"]), probabilities, y, predictor.probabilities(oos_texts), scores)
        result["oos_recall"], result["in_scope_accuracy_at_threshold"] = oos.oos_recall, oos.in_scope_accuracy
    return result


def majority_baseline(split: Split) -> dict[str, Any]:
    """Always the most frequent training class, with its training share as the confidence."""
    majority, count = Counter(r.label for r in split.train).most_common(1)[0]
    in_scope = [r for r in split.test if r.label != OOS_LABEL]
    return report(
        [r.label for r in in_scope],
        [majority] * len(in_scope),
        np.full(len(in_scope), count / len(split.train)),
    )
