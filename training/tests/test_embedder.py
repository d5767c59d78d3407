"""The knowledge base's embedder, MiniLM kind: version directory, serving parity, idempotent export,
registry (the static kind: test_static.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.artifacts import ArtifactError, load_version
from training.config import GatePolicy
from training.embedder import EMBEDDER_MODEL, ExportedEmbedder, export_embedder, register_embedder
from training.predictor import Predictor
from training.promotion import run_gate
from training.registry import Registry, RegistryError
from training.tests.test_tokenization import REFERENCE


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedder-models")


@pytest.fixture(scope="module")
def exported(root: Path) -> ExportedEmbedder:
    return export_embedder(root, "minilm")


def test_version_directory_has_the_embedding_signature(exported: ExportedEmbedder) -> None:
    assert exported.created
    files = sorted(p.name for p in exported.directory.iterdir())
    assert files == ["manifest.json", "model.onnx", "vocab.txt"]
    manifest = load_version(exported.directory).manifest
    assert (manifest["model"], manifest["task"], manifest["labels"]) == (EMBEDDER_MODEL, "embedding", [])
    assert manifest["onnx"]["outputs"] == {"embedding": {"type": "float32", "shape": ["N", 384]}}
    assert set(manifest["onnx"]["inputs"]) == {"input_ids", "attention_mask"}
    assert manifest["tokenizer"]["kind"] == "wordpiece" and manifest["tokenizer"]["vocab"] == "vocab.txt"
    assert set(manifest["files"]) == {"model.onnx", "vocab.txt"}


def test_served_embeddings_equal_sentence_transformers(exported: ExportedEmbedder) -> None:
    """Reference embeddings computed once with sentence-transformers/PyTorch."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    embeddings = Predictor(exported.directory).embeddings(reference["texts"])
    np.testing.assert_allclose(embeddings, np.array(reference["embeddings"]), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_exporting_identical_bytes_reuses_the_version(exported: ExportedEmbedder, root: Path) -> None:
    again = export_embedder(root, "minilm")
    assert not again.created
    assert again.version == exported.version
    assert [p.name for p in (root / EMBEDDER_MODEL).iterdir()] == [exported.version]


def test_embedding_version_with_labels_is_refused(exported: ExportedEmbedder, tmp_path: Path) -> None:
    copy = tmp_path / "version"
    shutil.copytree(exported.directory, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["labels"] = ["a", "b"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="an embedding model has no labels"):
        load_version(copy)


def test_registered_in_production_without_gate_once(
    registry: Registry, exported: ExportedEmbedder, root: Path
) -> None:
    row = register_embedder(registry, exported, root)
    assert (row.version, row.stage) == (exported.version, "production")
    trained, decision = registry.decisions(EMBEDDER_MODEL)
    assert trained["action"] == "trained"
    assert decision["action"] == "promoted" and decision["reason"].startswith("no gate")
    lineage = registry.conn.execute("SELECT * FROM lineage WHERE model = %s", (EMBEDDER_MODEL,)).fetchone()
    assert lineage is not None and lineage["dataset"] is None
    assert lineage["weights_sha256"] == exported.manifest["parameters"]["weights_sha256"]

    assert register_embedder(registry, export_embedder(root, "minilm"), root).version == exported.version
    assert len(registry.versions(EMBEDDER_MODEL)) == 1
    with pytest.raises(RegistryError, match="no held-out metric"):
        run_gate(registry, EMBEDDER_MODEL, exported.version, GatePolicy(), root)


def test_int8_kind_is_a_quantized_servable_embedder(root: Path, exported: ExportedEmbedder) -> None:
    int8 = export_embedder(root, "minilm-int8")
    assert int8.created and int8.version != exported.version
    assert int8.manifest["parameters"]["quantization"].startswith("onnxruntime dynamic, int8")
    size = (int8.directory / "model.onnx").stat().st_size
    assert size < (exported.directory / "model.onnx").stat().st_size / 3
    texts = ["Where is my order?", "I was charged twice, please refund the second payment"]
    quantized = Predictor(int8.directory).embeddings(texts)
    np.testing.assert_allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    cosine = (quantized * Predictor(exported.directory).embeddings(texts)).sum(axis=1)
    assert np.all(cosine > 0.85)  # close to fp32, not equal: the int8 graph is not the same function
