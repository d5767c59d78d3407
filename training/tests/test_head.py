"""Head family (models/embedding_head.py): the version pins its embedder, runs as served, is refused
without exactly that embedder, is gated against other families, and `defaults` chooses between
it and linear by validation macro-F1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
import pytest

from training import defaults
from training import embedder as embedder_module
from training.artifacts import ArtifactError, load_version, manifest_problems, write_version
from training.config import GatePolicy
from training.defaults import HEAD_MARGIN, MULTILINGUAL_MODELS, Outcome, choose_family, ensure_defaults, ensure_multilingual_defaults
from training.toxicity import TOXICITY_MODEL
from training.embedder import EMBEDDER_MODEL
from training.gate import Decision
from training.models import static
from training.models.embedding_head import EXPORT_HINT, EmbedderNotFound, PinnedEmbedder, resolve_embedder
from training.pipeline import TrainedVersion, Trainer
from training.predictor import Predictor
from training.promotion import run_gate
from training.registry import Registry
from training.tasks import TARGETS
from training.tests.conftest import SLICE, install_embedder, token_embedding_table

TEXTS = ["where is my bag?? 3 hours 😡", "Thanks, great crew :)", "", "vol annulé, remboursement ?"]


@pytest.fixture
def head(trained: dict[str, TrainedVersion]) -> TrainedVersion:
    return trained["head"]


def _copy_head(head: TrainedVersion, root: Path) -> Path:
    target = root / head.model / head.version
    shutil.copytree(head.directory, target)
    return target


def test_manifest_pins_the_embedder_and_has_the_head_signature(
    head: TrainedVersion, embedder_version: Path
) -> None:
    manifest = load_version(head.directory).manifest
    pinned = json.loads((embedder_version / "manifest.json").read_text())
    assert manifest["family"] == "head" and manifest["task"] == "sentiment"
    assert manifest["embedder"] == {
        "model": EMBEDDER_MODEL,
        "version": pinned["version"],
        "family": "static",
        "dimensions": 384,
        "sha256": pinned["files"]["model.onnx"],
    }
    assert manifest["tokenizer"] == {"kind": "embedder"}
    assert manifest["onnx"]["inputs"] == {"embedding": {"type": "float32", "shape": ["N", 384]}}
    assert manifest["onnx"]["outputs"] == {
        "probabilities": {"type": "float32", "shape": ["N", 3]},
        "in_scope_similarity": {"type": "float32", "shape": ["N"]},
    }
    assert list(manifest["files"]) == ["model.onnx"]
    assert sorted(p.name for p in head.directory.iterdir()) == ["manifest.json", "model.onnx"]
    assert manifest["parameters"]["C"] in (1.0, 4.0, 16.0, 64.0)
    assert manifest_problems(manifest) == []
    embedding, cosine = manifest["reference"]["features"]
    assert (embedding["name"], embedding["dimensions"], len(embedding["mean"])) == ("embedding", 384, 384)
    assert cosine["name"] == "embedding_centroid_cosine" and 0 < cosine["mean"] < 1
    # Trained on this slice, it beats the majority class on held-out rows.
    assert manifest["metrics"]["test"]["macro_f1"] > 0.4


def test_schema_requires_the_pin_for_a_head_only(
    head: TrainedVersion, trained: dict[str, TrainedVersion]
) -> None:
    unpinned = {k: v for k, v in head.manifest.items() if k != "embedder"}
    assert [path for path, _ in manifest_problems(unpinned)] == [["embedder"]]
    bad = {**head.manifest, "embedder": {**head.manifest["embedder"], "dimensions": "384", "sha256": "x"}}
    assert sorted(path for path, _ in manifest_problems(bad)) == [
        ["embedder", "dimensions"],
        ["embedder", "sha256"],
    ]
    linear = trained["linear"].manifest
    assert "embedder" not in linear and manifest_problems(linear) == []


def test_predictor_runs_the_embedder_then_the_head(head: TrainedVersion, embedder_version: Path) -> None:
    served = Predictor(head.directory).probabilities(TEXTS)
    embedding = PinnedEmbedder.at(embedder_version)(TEXTS)
    session = ort.InferenceSession(str(head.directory / "model.onnx"))
    (expected,) = session.run(["probabilities"], {"embedding": embedding})
    np.testing.assert_allclose(served, expected, atol=1e-6)
    np.testing.assert_allclose(served.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)
    assert Predictor(head.directory).probabilities([]).shape == (0, 3)


def test_the_graph_outputs_the_cosine_to_the_nearest_label_centroid(head: TrainedVersion) -> None:
    predictor = Predictor(head.directory)
    graph = onnx.load(head.directory / "model.onnx").graph
    (centroids,) = [numpy_helper.to_array(t) for t in graph.initializer if t.name.startswith("centroids")]
    assert centroids.shape == (head.manifest["onnx"]["inputs"]["embedding"]["shape"][1], len(predictor.labels))
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=0), 1.0, atol=1e-5)
    embeddings = predictor._feed(TEXTS)["embedding"]
    expected = (embeddings @ centroids).max(axis=1)
    np.testing.assert_allclose(predictor.in_scope_similarity(TEXTS), expected, atol=1e-5)


def test_head_without_its_embedder_is_refused(head: TrainedVersion, tmp_path: Path) -> None:
    copy = _copy_head(head, tmp_path)
    with pytest.raises(ArtifactError, match=r"its embedder embedder@.* is missing .*only valid with exactly"):
        load_version(copy)
    with pytest.raises(ArtifactError, match="is missing"):
        Predictor(copy)


def test_head_with_a_different_embedder_of_the_same_name_is_refused(
    head: TrainedVersion, embedder_version: Path, tmp_path: Path
) -> None:
    copy = _copy_head(head, tmp_path)
    # A servable embedder under the pinned version's name, but other bytes (another table).
    manifest = json.loads((embedder_version / "manifest.json").read_text())
    table = token_embedding_table()[:, ::-1].copy()
    del manifest["files"]
    write_version(
        tmp_path,
        EMBEDDER_MODEL,
        embedder_version.name,
        static.static_graph(table).SerializeToString(),
        manifest,
        {"vocab.txt": embedder_version / "vocab.txt"},
    )
    with pytest.raises(ArtifactError, match=r"has model.onnx sha256 [0-9a-f]{64}, the head was trained on"):
        load_version(copy)
    with pytest.raises(ArtifactError, match="the exact embedder it pins"):
        Predictor(copy)


def test_head_with_a_corrupt_embedder_or_no_pin_is_refused(
    head: TrainedVersion, embedder_version: Path, tmp_path: Path
) -> None:
    copy = _copy_head(head, tmp_path)
    corrupt = tmp_path / EMBEDDER_MODEL / embedder_version.name
    shutil.copytree(embedder_version, corrupt)
    (corrupt / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(ArtifactError, match=r"cannot be served: .*vocab.txt: sha256 does not match"):
        load_version(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["embedder"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="a head version must pin its embedder"):
        load_version(copy)


def test_without_an_embedder_training_a_head_says_to_export_one(tmp_path: Path) -> None:
    with pytest.raises(EmbedderNotFound, match=EXPORT_HINT.replace(".", r"\.")):
        Trainer(tmp_path, limit=SLICE).train(TARGETS["sentiment"], ["head"])
    assert not (tmp_path / "sentiment").exists()


def test_the_newest_embedder_or_the_registrys_production_one_is_pinned(
    registry: Registry, embedder_version: Path, tmp_path: Path
) -> None:
    older = install_embedder(tmp_path, embedder_version)
    newer = tmp_path / EMBEDDER_MODEL / "20990101T000000Z-static-newer"
    shutil.copytree(embedder_version, newer)
    assert resolve_embedder(tmp_path) == newer
    with pytest.raises(EmbedderNotFound, match="the registry has no production version of `embedder`"):
        resolve_embedder(tmp_path, registry)
    manifest = load_version(older).manifest
    registry.register(manifest, str(older.relative_to(tmp_path)))
    with registry.locked(EMBEDDER_MODEL):
        registry.record(EMBEDDER_MODEL, manifest["version"], Decision(True, "test", {}))
    assert resolve_embedder(tmp_path, registry) == older  # production, though not the newest
    (trained,) = Trainer(tmp_path, limit=SLICE, registry=registry).train(TARGETS["sentiment"], ["head"])
    assert trained.manifest["embedder"]["version"] == older.name


def test_gate_compares_head_and_linear_both_ways(
    registry: Registry, trained: dict[str, TrainedVersion], models_root: Path
) -> None:
    lenient = GatePolicy(min_macro_f1_gain=-1.0, max_recall_drop=1.0)
    linear, head = trained["linear"], trained["head"]
    for version in (linear, head):
        registry.register(version.manifest, str(version.directory.relative_to(models_root)))
    assert run_gate(registry, "sentiment", linear.version, lenient, models_root).promote
    for candidate, production in ((head, linear), (linear, head)):
        decision = run_gate(registry, "sentiment", candidate.version, lenient, models_root)
        assert decision.promote and decision.numbers["production_version"] == production.version
        # Both scored through onnxruntime on the same rows: the figures the manifests recorded.
        for side, version in (("candidate", candidate), ("production", production)):
            assert decision.numbers[f"{side}_macro_f1"] == pytest.approx(
                version.manifest["metrics"]["test"]["macro_f1"]
            )
    assert registry.production("sentiment").version == linear.version  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("linear", "head", "chosen"),
    [
        (0.90, 0.90, "head"),
        (0.90, 0.95, "head"),
        (0.90, 0.88, "head"),  # exactly the margin
        (0.90, 0.8801, "head"),
        (0.90, 0.8799, "linear"),
        (0.75, 0.60, "linear"),
    ],
)
def test_choice_rule(linear: float, head: float, chosen: str) -> None:
    assert HEAD_MARGIN == 0.02
    family, decision = choose_family({"linear": linear, "head": head})
    assert family == chosen and decision.promote == (chosen == "head")
    assert decision.reason.startswith(
        f"defaults chose {chosen}: validation macro-F1 head {head:.4f}, linear {linear:.4f}; the head is "
        + ("not more" if chosen == "head" else "more")
        + " than 0.02 below linear"
    )
    assert decision.numbers["validation_macro_f1"] == {"linear": linear, "head": head}
    assert decision.numbers["margin"] == HEAD_MARGIN


@pytest.mark.parametrize(("margin", "chosen"), [(1.0, "head"), (-1.0, "linear")])
def test_defaults_export_the_embedder_then_promote_the_chosen_family(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, margin: float, chosen: str
) -> None:
    """The rule's two sides through the registry; the minutes-long distillation replaced by a table."""
    monkeypatch.setattr(embedder_module, "static_table", lambda corpus, threads=2: token_embedding_table())
    monkeypatch.setattr(defaults, "PIPELINE_MODELS", ("sentiment",))
    reported: list[Outcome] = []
    trainer = Trainer(tmp_path, limit=SLICE, registry=registry)
    outcomes = ensure_defaults(registry, trainer, tmp_path, GatePolicy(), reported.append, margin)
    assert outcomes == reported and [o.model for o in outcomes] == [EMBEDDER_MODEL, TOXICITY_MODEL, "sentiment"]
    assert all(o.ok for o in outcomes), outcomes
    embedder_row = registry.production(EMBEDDER_MODEL)
    # respond's reply guardrail, converted from its package and put in production beside them.
    toxicity_row = registry.production(TOXICITY_MODEL)
    assert toxicity_row is not None and toxicity_row.manifest["operating_point"]["threshold"] > 0
    production = registry.production("sentiment")
    assert embedder_row is not None and production is not None and production.family == chosen
    stages = {v["family"]: v["stage"] for v in registry.versions("sentiment")}
    assert stages == {chosen: "production", ({"head", "linear"} - {chosen}).pop(): "archived"}
    head_row = next(v for v in registry.versions("sentiment") if v["family"] == "head")
    pin = registry.version("sentiment", str(head_row["version"])).manifest["embedder"]
    assert pin["version"] == embedder_row.version
    assert pin["sha256"] == embedder_row.manifest["files"]["model.onnx"]

    # Both versions' `trained` rows, the gate's `evaluated` row, then the two outcomes.
    decisions = registry.decisions("sentiment")
    assert [d["action"] for d in decisions] == ["trained", "trained", "evaluated", "promoted", "rejected"]
    promoted, rejected = decisions[3:]
    assert (promoted["action"], promoted["candidate_version"]) == ("promoted", production.version)
    assert promoted["reason"].startswith(f"defaults chose {chosen}: ")
    assert promoted["reason"].endswith("; gate: no production version")
    # Decision rows hold numbers only, flattened (the choice itself is in the reason).
    selection: dict[str, Any] = {k: v for k, v in promoted["numbers"].items() if k.startswith("selection.")}
    assert selection["selection.margin"] == margin
    assert set(selection) >= {"selection.validation_macro_f1.linear", "selection.validation_macro_f1.head"}
    assert rejected["action"] == "rejected" and rejected["reason"].startswith("not chosen: defaults chose")
    assert rejected["numbers"] == selection

    again = ensure_defaults(registry, trainer, tmp_path, GatePolicy(), lambda _: None, margin)
    assert again[1] == Outcome(TOXICITY_MODEL, True, f"{toxicity_row.version} (production, kept)")
    assert again[2] == Outcome("sentiment", True, f"{production.version} (production, kept)")



def test_multilingual_defaults_export_the_encoder_then_promote_each_head_once(registry: Registry, tmp_path: Path) -> None:
    """What `up` runs in the background: the multilingual embedder in production, then each of
    classify's multilingual models' head trained on it and promoted (first versions); a second
    run keeps them and exports nothing."""
    reported: list[Outcome] = []
    trainer = Trainer(tmp_path, limit=SLICE, registry=registry)
    outcomes = ensure_multilingual_defaults(registry, trainer, tmp_path, GatePolicy(), reported.append)
    assert outcomes == reported and [o.model for o in outcomes] == ["embedder-multilingual", *MULTILINGUAL_MODELS]
    assert all(o.ok for o in outcomes), outcomes
    embedder_row = registry.production("embedder-multilingual")
    assert embedder_row is not None
    for model in MULTILINGUAL_MODELS:
        production = registry.production(model)
        assert production is not None and production.family == "head", model
        assert production.manifest["embedder"]["version"] == embedder_row.version
    assert "operating_point" in registry.production("intent-multilingual").manifest  # type: ignore[union-attr]

    again = ensure_multilingual_defaults(registry, trainer, tmp_path, GatePolicy(), lambda _: None)
    kept = [f"{registry.production(m).version} (production, kept)" for m in MULTILINGUAL_MODELS]  # type: ignore[union-attr]
    assert again == [Outcome(m, True, message) for m, message in zip(MULTILINGUAL_MODELS, kept, strict=True)]
