"""`defaults`: gives every model the triage pipeline serves a production version, so that the main
job works from a clean clone. A model that has a servable production version is left alone.

respond's reply guardrail, `toxicity`, is a converted pre-trained classifier (training/toxicity.py):
exported and put in production where none is, nothing trained.

The knowledge base's `embedder` comes first (exported, or found by its recipe, and put in
production): the classifier heads are trained on it. Then every pipeline model without a
production version gets two families trained on the same split, both registered as candidates
(intent's and category's with customer-style copies of half their training rows, as `train`
does by default for them: training/augment.py):

* `linear`: TF-IDF + logistic regression; its graph featurizes the text itself, 0.15-0.75 ms
  of CPU per inquiry for each model (the sparse graph; the dense one cost 0.3-1.3 ms);
* `head`: logistic regression over the production embedder's sentence embedding, which serving
  computes once per inquiry (~0.1 ms, static family) for all the heads, so a head costs a
  fraction of a linear model.

The rule: production becomes the head when its validation macro-F1 is at most `HEAD_MARGIN`
(0.02) below linear's, else linear (validation, because the test split is the gate's). The
chosen version goes through the gate, which promotes the first version of a model, and the
decision records the choice with both validation scores (`numbers.selection`); the other version
is archived with a `rejected` decision carrying the same numbers, so `models --model M
--decisions` says why. The encoder and ensemble families (an extra ~10 minutes, mostly embedding
the data sets with MiniLM) are `train --task T`'s job; a better version then replaces the
default through the same gate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.artifacts import ArtifactError, load_version
from training.config import GatePolicy
from training.embedder import EMBEDDER_MODEL, export_embedder, register_embedder
from training.gate import Decision
from training.pipeline import TrainedVersion, Trainer
from training.promotion import run_gate
from training.registry import Registry
from training.tasks import TARGETS
from training.toxicity import TOXICITY_MODEL, export_toxicity, register_toxicity

# `classify` emits intent and category, `sentiment` and `urgency` one label each.
PIPELINE_MODELS = ("intent", "category", "sentiment", "urgency")
DEFAULT_FAMILIES = ("linear", "head")
# Validation macro-F1 the head may trail linear by and still be chosen: it shares one embedding
# pass per inquiry with the other heads instead of featurizing the text itself.
HEAD_MARGIN = 0.02


@dataclass(frozen=True)
class Outcome:
    model: str
    ok: bool
    message: str


def choose_family(validation_macro_f1: dict[str, float], margin: float = HEAD_MARGIN) -> tuple[str, Decision]:
    """`head` if its validation macro-F1 is within `margin` of linear's, else `linear`; the
    decision's reason and numbers say so (`promote` tells whether the head was chosen)."""
    linear, head = validation_macro_f1["linear"], validation_macro_f1["head"]
    shortfall = linear - head
    # A shortfall of exactly the margin is within it (up to float rounding of the subtraction).
    chosen = "head" if shortfall <= margin + 1e-12 else "linear"
    relation = "not more" if chosen == "head" else "more"
    reason = (
        f"defaults chose {chosen}: validation macro-F1 head {head:.4f}, linear {linear:.4f}; the head is "
        f"{relation} than {margin} below linear (head - linear {-shortfall:+.6f})"
        + (", and a head shares one embedding pass per inquiry with the other heads" if chosen == "head" else "")
    )
    numbers: dict[str, Any] = {
        "rule": "head if linear's validation macro-F1 minus head's <= margin, else linear",
        "margin": margin,
        "validation_macro_f1": {"linear": linear, "head": head},
        "chosen": chosen,
    }
    return chosen, Decision(chosen == "head", reason, numbers)


def ensure_defaults(
    registry: Registry,
    trainer: Trainer,
    models_root: Path,
    policy: GatePolicy,
    report: Callable[[Outcome], None],
    margin: float = HEAD_MARGIN,
) -> list[Outcome]:
    exported = export_embedder(models_root)
    row = register_embedder(registry, exported, models_root)
    outcome = Outcome(EMBEDDER_MODEL, row.stage == "production", f"{row.version} ({row.stage})")
    report(outcome)
    outcomes = [outcome, _ensure_toxicity(registry, models_root)]
    report(outcomes[-1])
    for model in PIPELINE_MODELS:
        outcome = _ensure_classifier(registry, trainer, models_root, policy, model, margin)
        report(outcome)
        outcomes.append(outcome)
    return outcomes


# classify's models for inquiries not in English (training/models/multilingual.py): heads over the
# multilingual encoder, which `up` trains in the background once the pipeline serves (minutes).
MULTILINGUAL_MODELS = ("intent-multilingual", "category-multilingual")


def ensure_multilingual_defaults(
    registry: Registry,
    trainer: Trainer,
    models_root: Path,
    policy: GatePolicy,
    report: Callable[[Outcome], None],
) -> list[Outcome]:
    """Gives classify's multilingual pair a production version where it has none: exports (or
    finds) the multilingual embedder and puts it in production, then trains the `head` family of
    each model and puts it to the gate (which promotes a model's first version). A servable
    production version is kept. classify serves the pair once both are in production."""
    from training.models import multilingual

    kept = [_servable_production(registry, models_root, model) for model in MULTILINGUAL_MODELS]
    if all(outcome is not None and outcome.ok for outcome in kept):
        outcomes = [outcome for outcome in kept if outcome is not None]
        for outcome in outcomes:
            report(outcome)
        return outcomes
    directory, manifest, created = multilingual.export_embedder(models_root)
    version = multilingual.register_embedder(models_root, directory, manifest, registry)
    outcome = Outcome(multilingual.EMBEDDER_MODEL, True, f"{version} ({'exported' if created else 'found'}, production)")
    report(outcome)
    outcomes = [outcome]
    for model, production in zip(MULTILINGUAL_MODELS, kept, strict=True):
        outcomes.append(production or _train_head(registry, trainer, models_root, policy, model))
        report(outcomes[-1])
    return outcomes


def _train_head(registry: Registry, trainer: Trainer, models_root: Path, policy: GatePolicy, model: str) -> Outcome:
    (trained,) = trainer.train(TARGETS[model], ["head"], augment=TARGETS[model].default_augment())
    registry.register(trained.manifest, str(trained.directory.relative_to(models_root)))
    decision = run_gate(registry, model, trained.version, policy, models_root)
    test = trained.manifest["metrics"]["test"]
    return Outcome(
        model,
        decision.promote,
        f"{trained.version} trained, test accuracy {test['accuracy']:.4f} macro-F1 {test['macro_f1']:.4f}, "
        f"{'promoted' if decision.promote else 'rejected'}: {decision.reason}",
    )


def _servable_production(registry: Registry, models_root: Path, model: str) -> Outcome | None:
    """The outcome for a model whose production version is kept (or cannot be served); None when it has none."""
    production = registry.production(model)
    if production is None:
        return None
    try:
        load_version(production.directory(models_root))
    except ArtifactError as error:
        return Outcome(
            model,
            False,
            f"production version {production.version} cannot be served ({error}); "
            f"roll it back or train a replacement with `train --model {model}`",
        )
    return Outcome(model, True, f"{production.version} (production, kept)")


def _ensure_toxicity(registry: Registry, models_root: Path) -> Outcome:
    """respond's reply guardrail: the converted pre-trained classifier (training/toxicity.py), kept
    when a servable production version exists, else exported (or found by its bytes) and put in
    production."""
    production = registry.production(TOXICITY_MODEL)
    if production is not None:
        try:
            load_version(production.directory(models_root))
            return Outcome(TOXICITY_MODEL, True, f"{production.version} (production, kept)")
        except ArtifactError as error:
            return Outcome(
                TOXICITY_MODEL,
                False,
                f"production version {production.version} cannot be served ({error}); roll it back "
                "or export a replacement with `export-toxicity`",
            )
    exported = export_toxicity(models_root)
    row = register_toxicity(registry, exported, models_root)
    threshold = exported.manifest["operating_point"]["threshold"]
    return Outcome(TOXICITY_MODEL, row.stage == "production", f"{row.version} ({row.stage}, threshold {threshold:.4f})")


def _ensure_classifier(
    registry: Registry, trainer: Trainer, models_root: Path, policy: GatePolicy, model: str, margin: float
) -> Outcome:
    kept = _servable_production(registry, models_root, model)
    if kept is not None:
        return kept
    target = TARGETS[model]
    trained: dict[str, TrainedVersion] = {
        t.family: t for t in trainer.train(target, list(DEFAULT_FAMILIES), augment=target.default_augment())
    }
    for version in trained.values():
        registry.register(version.manifest, str(version.directory.relative_to(models_root)))
    chosen, selection = choose_family(
        {family: t.manifest["metrics"]["validation"]["macro_f1"] for family, t in trained.items()}, margin
    )
    other = next(family for family in DEFAULT_FAMILIES if family != chosen)
    selection.numbers["versions"] = {family: t.version for family, t in trained.items()}
    decision = run_gate(registry, model, trained[chosen].version, policy, models_root, selection)
    with registry.locked(model):
        registry.record(
            model,
            trained[other].version,
            Decision(False, f"not chosen: {selection.reason}", {"selection": selection.numbers}),
        )
    test = trained[chosen].manifest["metrics"]["test"]
    return Outcome(
        model,
        decision.promote,
        f"{trained[chosen].version} trained, test accuracy {test['accuracy']:.4f} macro-F1 "
        f"{test['macro_f1']:.4f}, {'promoted' if decision.promote else 'rejected'}: {decision.reason}; "
        f"{trained[other].version} archived",
    )
