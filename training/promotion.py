"""Runs the promotion gate for a registered version and records the decision: an `evaluated`
row with the gate's numbers, then `promoted`, `shadow_started` or `rejected`."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import yaml

from training import config, feedback
from training.artifacts import EMBEDDING_TASK
from training.config import GatePolicy
from training.evaluation import held_out_split, majority_baseline, predict_held_out
from training.gate import Decision, decide, decide_absolute, feedback_check, live_gain
from training.predictor import Predictor
from training.registry import Registry, RegistryError, VersionRow

log = logging.getLogger(__name__)

# Models whose labels the route processor maps to departments, and the rules section doing it
# (processors/route/decision.ts: the intent's mapping wins, else the category's).
ROUTED_SECTIONS = {"category": "categories", "intent": "intents"}


def unmapped_labels(model: str, labels: list[str]) -> list[str]:
    """Labels of a routed model that the routing rules do not map: route would send them to the
    default department. (Names match case-insensitively, as route matches them.)"""
    section = ROUTED_SECTIONS.get(model)
    if section is None:
        return []
    path = config.routing_rules_path()
    try:
        rules = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RegistryError(f"cannot read the routing rules {path}: {error}") from error
    mapped = {str(key).lower() for key in rules.get(section) or {}}
    return [label for label in labels if label.lower() not in mapped]


def _feedback_numbers(
    registry: Registry, candidate: VersionRow, production: VersionRow | None, models_root: Path, policy: GatePolicy
) -> tuple[dict[str, Any], str | None]:
    """Both versions on the candidate's `feedback` evaluation split, when it has one."""
    ids = ((candidate.manifest.get("dataset") or {}).get("feedback") or {}).get("evaluation_ids") or []
    if not ids:
        return {}, None
    rows = feedback.evaluation_rows(registry.conn, candidate.model, ids, candidate.manifest["labels"])
    texts, truth = [r.text for r in rows], [r.label for r in rows]

    def predict(version: VersionRow) -> list[str]:
        predictor = Predictor(version.directory(models_root))
        return [predictor.labels[i] for i in predictor.probabilities(texts).argmax(axis=1)] if texts else []

    return feedback_check(truth, predict(candidate), predict(production) if production else None, policy)


def run_gate(
    registry: Registry,
    model: str,
    version: str,
    policy: GatePolicy,
    models_root: Path,
    selection: Decision | None = None,
    shadow: bool = False,
) -> Decision:
    """Scores the candidate and the production version through onnxruntime on the candidate's
    held-out test set (so both are judged on the same rows, as served), and on its held-out
    feedback rows, and applies the gate. A candidate whose labels differ from production's needs
    `new_taxonomy` in its manifest (`train --new-taxonomy`) and passes the absolute rule instead
    (decide_absolute), as does the first version trained on a team's own file. `shadow`: a
    passing candidate becomes the shadow version instead of production (when there is a
    production version to shadow). The model's row stays locked meanwhile, so concurrent
    promotions cannot interleave. `selection`: why this candidate rather than a sibling was put
    to the gate (`defaults`' family choice); its reason precedes the gate's in the recorded
    decision, its numbers are kept under `selection`. Returns the decision with the action taken."""
    with registry.locked(model):
        candidate = registry.version(model, version)
        if candidate.manifest["task"] == EMBEDDING_TASK:
            raise RegistryError(
                f"{model}@{version}: an embedding model has no held-out metric to gate on "
                "(export-embedder puts a new embedder in production)"
            )
        if candidate.stage == "production":
            raise RegistryError(f"{model}@{version} is already in production")
        if candidate.stage == "shadow":
            raise RegistryError(
                f"{model}@{version} is the shadow version: promote it with --after-shadow or reject it"
            )
        dataset = candidate.manifest["dataset"]
        split = held_out_split(candidate.manifest)
        truth, candidate_pred = predict_held_out(Predictor(candidate.directory(models_root)), split)
        production = registry.production(model)
        labels = list(candidate.manifest["labels"])
        different = production is not None and set(production.manifest["labels"]) != set(labels)
        if different and not dataset.get("new_taxonomy"):
            assert production is not None
            old = set(production.manifest["labels"])
            decision = Decision(
                False,
                f"its labels differ from production's {production.version} (new: {sorted(set(labels) - old)}, "
                f"gone: {sorted(old - set(labels))}): the gate cannot compare them; train with --new-taxonomy",
                {"labels": len(labels), "production_labels": len(old)},
            )
        elif different or (production is None and dataset.get("data")):
            why = "new taxonomy" if different else "first version of the model, trained on a team's file"
            decision = decide_absolute(
                truth,
                candidate_pred,
                majority_baseline(split)["accuracy"],
                policy,
                why,
                unmapped_labels(model, labels),
            )
        else:
            production_pred = (
                predict_held_out(Predictor(production.directory(models_root)), split)[1] if production else None
            )
            decision = decide(truth, candidate_pred, production_pred, policy)
            numbers, failure = _feedback_numbers(registry, candidate, production, models_root, policy)
            if numbers:
                decision.numbers["feedback"] = numbers
                decision = live_gain(decision, numbers, policy)
            if failure:
                reason = failure if decision.promote else f"{decision.reason}; {failure}"
                decision = Decision(False, reason, decision.numbers)
        if production:
            decision.numbers["production_version"] = production.version
        if selection is not None:
            decision = Decision(
                decision.promote,
                f"{selection.reason}; gate: {decision.reason}",
                {**decision.numbers, "selection": selection.numbers},
            )
        if shadow and decision.promote and production is None:
            decision = Decision(True, f"{decision.reason} (no production version to shadow)", decision.numbers)
        registry.evaluated(model, version, decision)
        action = registry.record(model, version, decision, shadow=shadow and production is not None)
    log.info("%s@%s %s: %s", model, version, action, decision.reason)
    return dataclasses.replace(decision, action=action)
