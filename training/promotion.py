"""Runs the promotion gate for a registered version and records the decision."""

from __future__ import annotations

import logging
from pathlib import Path

from training.artifacts import EMBEDDING_TASK
from training.config import GatePolicy
from training.evaluation import held_out_split, predict_held_out
from training.gate import Decision, decide
from training.predictor import Predictor
from training.registry import Registry, RegistryError

log = logging.getLogger(__name__)


def run_gate(
    registry: Registry,
    model: str,
    version: str,
    policy: GatePolicy,
    models_root: Path,
    selection: Decision | None = None,
) -> Decision:
    """Scores the candidate and the production version through onnxruntime on the candidate's
    held-out test set (so both are judged on the same rows, as served) and applies the gate.
    The model's row stays locked meanwhile, so concurrent promotions cannot interleave.
    `selection`: why this candidate rather than a sibling was put to the gate (`defaults`' family
    choice); its reason precedes the gate's in the recorded decision, its numbers are kept under
    `selection`."""
    with registry.locked(model):
        candidate = registry.version(model, version)
        if candidate.manifest["task"] == EMBEDDING_TASK:
            raise RegistryError(
                f"{model}@{version}: an embedding model has no held-out metric to gate on "
                "(export-embedder puts a new embedder in production)"
            )
        if candidate.stage == "production":
            raise RegistryError(f"{model}@{version} is already in production")
        split = held_out_split(candidate.manifest)
        truth, candidate_pred = predict_held_out(Predictor(candidate.directory(models_root)), split)
        production = registry.production(model)
        production_pred = (
            predict_held_out(Predictor(production.directory(models_root)), split)[1] if production else None
        )
        decision = decide(truth, candidate_pred, production_pred, policy)
        if production:
            decision.numbers["production_version"] = production.version
        if selection is not None:
            decision = Decision(
                decision.promote,
                f"{selection.reason}; gate: {decision.reason}",
                {**decision.numbers, "selection": selection.numbers},
            )
        registry.record(model, version, decision)
    log.info("%s@%s %s: %s", model, version, "promoted" if decision.promote else "rejected", decision.reason)
    return decision
