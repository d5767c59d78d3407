"""Registry round trip, gate decisions and rollback against a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import GatePolicy
from training.models.linear import LinearParams
from training.pipeline import TrainedVersion, Trainer
from training.promotion import run_gate
from training.registry import Registry, RegistryError
from training.tasks import TARGETS
from training.tests.conftest import SLICE


def _register(registry: Registry, version: TrainedVersion, root: Path) -> None:
    registry.register(version.manifest, str(version.directory.relative_to(root)))


def test_migration_is_idempotent(registry: Registry) -> None:
    assert registry.migrate() == []


def test_round_trip(registry: Registry, trained: dict[str, TrainedVersion], models_root: Path) -> None:
    version = trained["linear"]
    _register(registry, version, models_root)
    row = registry.version("sentiment", version.version)
    assert row.stage == "candidate" and row.family == "linear"
    assert row.manifest == version.manifest
    assert row.directory(models_root) == version.directory
    listed = registry.versions("sentiment")
    assert [(r["version"], r["stage"]) for r in listed] == [(version.version, "candidate")]
    assert listed[0]["macro_f1"] == pytest.approx(version.manifest["metrics"]["test"]["macro_f1"])
    lineage = registry.conn.execute("SELECT * FROM lineage WHERE version = %s", (version.version,)).fetchone()
    assert lineage is not None
    assert lineage["test_digest"] == version.manifest["dataset"]["digests"]["test"]


def test_gate_promotes_first_rejects_worse_and_rollback_restores(
    registry: Registry, trained: dict[str, TrainedVersion], models_root: Path
) -> None:
    policy = GatePolicy(min_macro_f1_gain=0.0, max_recall_drop=0.05)
    good = trained["linear"]
    _register(registry, good, models_root)
    assert run_gate(registry, "sentiment", good.version, policy, models_root).promote

    # Same split, but ten n-grams and heavy regularization: clearly worse on the same rows.
    (worse,) = Trainer(
        models_root,
        seed=0,
        limit=SLICE,
        linear_params=LinearParams(max_word_features=5, max_char_features=5, c_grid=(1e-4,)),
    ).train(TARGETS["sentiment"], ["linear"])
    _register(registry, worse, models_root)
    decision = run_gate(registry, "sentiment", worse.version, policy, models_root)
    assert not decision.promote
    assert "below the required" in decision.reason
    assert registry.production("sentiment").version == good.version  # type: ignore[union-attr]
    assert registry.version("sentiment", worse.version).stage == "archived"
    recorded = registry.decisions("sentiment")[-1]
    assert (recorded["action"], recorded["candidate_version"], recorded["production_version"]) == (
        "rejected",
        worse.version,
        good.version,
    )
    assert recorded["reason"] == decision.reason
    assert recorded["numbers"]["candidate_macro_f1"] < recorded["numbers"]["production_macro_f1"]

    lenient = GatePolicy(min_macro_f1_gain=-1.0, max_recall_drop=1.0)
    assert run_gate(registry, "sentiment", worse.version, lenient, models_root).promote
    assert registry.rollback("sentiment") == (worse.version, good.version)
    assert registry.production("sentiment").version == good.version  # type: ignore[union-attr]
    assert registry.decisions("sentiment")[-1]["action"] == "rolled_back"
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback("sentiment")
