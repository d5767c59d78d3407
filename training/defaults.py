"""`defaults`: gives every model the triage pipeline serves a production version, so that the main
job works from a clean clone. A model that has a servable production version is left alone;
one without is trained and put through the gate (which promotes the first version of a model).

Only the linear family is trained here: it takes seconds to a few minutes per model on two cores
and reaches the targets for Bitext intent and category; the encoder and ensemble families (an
extra ~10 minutes, mostly embedding the data sets with MiniLM) are `train --task T`'s job, and a
better one then replaces the default through the same gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.artifacts import ArtifactError, load_version
from training.config import GatePolicy
from training.embedder import EMBEDDER_MODEL, export_embedder, register_embedder
from training.pipeline import Trainer
from training.promotion import run_gate
from training.registry import Registry
from training.tasks import TARGETS

# `classify` emits intent and category, `sentiment` and `urgency` one label each.
PIPELINE_MODELS = ("intent", "category", "sentiment", "urgency")
DEFAULT_FAMILY = "linear"


@dataclass(frozen=True)
class Outcome:
    model: str
    ok: bool
    message: str


def ensure_defaults(
    registry: Registry,
    trainer: Trainer,
    models_root: Path,
    policy: GatePolicy,
    report: Callable[[Outcome], None],
) -> list[Outcome]:
    outcomes = []
    for model in PIPELINE_MODELS:
        outcome = _ensure_classifier(registry, trainer, models_root, policy, model)
        report(outcome)
        outcomes.append(outcome)
    exported = export_embedder(models_root)
    row = register_embedder(registry, exported, models_root)
    outcome = Outcome(EMBEDDER_MODEL, row.stage == "production", f"{row.version} ({row.stage})")
    report(outcome)
    return [*outcomes, outcome]


def _ensure_classifier(
    registry: Registry, trainer: Trainer, models_root: Path, policy: GatePolicy, model: str
) -> Outcome:
    production = registry.production(model)
    if production is not None:
        try:
            load_version(production.directory(models_root))
        except ArtifactError as error:
            return Outcome(
                model,
                False,
                f"production version {production.version} cannot be served ({error}); "
                f"roll it back or train a replacement with `train --task {TARGETS[model].task}`",
            )
        return Outcome(model, True, f"{production.version} (production, kept)")
    (trained,) = trainer.train(TARGETS[model], [DEFAULT_FAMILY])
    registry.register(trained.manifest, str(trained.directory.relative_to(models_root)))
    decision = run_gate(registry, model, trained.version, policy, models_root)
    test = trained.manifest["metrics"]["test"]
    return Outcome(
        model,
        decision.promote,
        f"{trained.version} trained, test accuracy {test['accuracy']:.4f} macro-F1 {test['macro_f1']:.4f}, "
        f"{'promoted' if decision.promote else 'rejected'}: {decision.reason}",
    )
