"""The knowledge base's sentence embedder: all-MiniLM-L6-v2 as published (mean-pooled,
L2-normalized, nothing trained), exported as a version directory of model `embedder` and put in
production directly. There is no gate: an embedder has no labels, hence no held-out metric a new
version could be compared on; the recorded decision says so. Exporting identical bytes again
reuses the version that holds them."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnxruntime as ort
from safetensors.numpy import load_file

from training.artifacts import (
    EMBEDDING_TASK,
    MANIFEST_SCHEMA,
    MODEL_FILE,
    ArtifactError,
    load_version,
    write_version,
)
from training.datasets.base import sha256_file
from training.gate import Decision
from training.models.encoder import (
    HIDDEN,
    MAX_LENGTH,
    WEIGHTS_PACKAGE,
    WEIGHTS_SHA256,
    embedding_graph,
    weights_dir,
    wordpiece_spec,
)
from training.models.wordpiece import WordPieceTokenizer
from training.onnx_graph import OPSET
from training.registry import Registry, VersionRow

log = logging.getLogger(__name__)

EMBEDDER_MODEL = "embedder"
FAMILY = "encoder"
VOCAB_FILE = "vocab.txt"


@dataclass(frozen=True)
class ExportedEmbedder:
    version: str
    directory: Path
    manifest: dict[str, Any]
    created: bool  # False: a version with identical files already existed


def _manifest(vocab: Path) -> dict[str, Any]:
    return {
        "schema_version": MANIFEST_SCHEMA,
        "model": EMBEDDER_MODEL,
        "task": EMBEDDING_TASK,
        "family": FAMILY,
        "labels": [],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_data_digest": None,
        "dataset": None,
        "parameters": {
            "encoder": "all-MiniLM-L6-v2",
            "weights_package": WEIGHTS_PACKAGE,
            "weights_sha256": WEIGHTS_SHA256,
            "pooling": "mean over attention_mask",
            "normalized": "L2",
            "dimensions": HIDDEN,
            "max_length": MAX_LENGTH,
        },
        "training_seconds": 0.0,
        "calibration": None,
        "metrics": {},
        "operating_point": None,
        "onnx": {
            "file": MODEL_FILE,
            "opset": OPSET,
            "onnxruntime": ort.__version__,
            "inputs": {
                "input_ids": {"type": "int64", "shape": ["N", "T"]},
                "attention_mask": {"type": "int64", "shape": ["N", "T"]},
            },
            "outputs": {"embedding": {"type": "float32", "shape": ["N", HIDDEN]}},
        },
        "tokenizer": wordpiece_spec(WordPieceTokenizer(vocab, MAX_LENGTH)),
        "reference": None,
    }


def _existing(models_root: Path, model_sha256: str, vocab_sha256: str) -> ExportedEmbedder | None:
    """An intact version directory holding exactly these files, if there is one."""
    for directory in sorted((models_root / EMBEDDER_MODEL).glob(f"[!.]*-{FAMILY}-{model_sha256[:8]}")):
        try:
            manifest = load_version(directory).manifest
        except ArtifactError as error:
            log.warning("ignoring %s: %s", directory, error)
            continue
        if manifest["files"] == {MODEL_FILE: model_sha256, VOCAB_FILE: vocab_sha256}:
            return ExportedEmbedder(directory.name, directory, manifest, created=False)
    return None


def export_embedder(models_root: Path) -> ExportedEmbedder:
    """Writes `<models_root>/embedder/<version>/` unless a version with the same bytes exists."""
    weights = weights_dir()
    vocab = weights / VOCAB_FILE
    onnx_bytes = embedding_graph(load_file(str(weights / "model.safetensors"))).SerializeToString()
    model_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    existing = _existing(models_root, model_sha256, sha256_file(vocab))
    if existing:
        return existing
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{FAMILY}-{model_sha256[:8]}"
    directory, manifest = write_version(
        models_root,
        EMBEDDER_MODEL,
        version,
        onnx_bytes,
        {**_manifest(vocab), "version": version},
        {VOCAB_FILE: vocab},
    )
    load_version(directory)  # what serving will do: checksums, signature
    return ExportedEmbedder(version, directory, manifest, created=True)


def register_embedder(registry: Registry, exported: ExportedEmbedder, models_root: Path) -> VersionRow:
    """Registers the exported version unless a version with the same model.onnx is registered,
    and makes a new one production. An existing version keeps its stage: if it was rolled back,
    that was an operator's decision."""
    row = registry.find_by_checksum(EMBEDDER_MODEL, exported.manifest["files"][MODEL_FILE])
    if row is not None:
        return row
    row = registry.register(exported.manifest, str(exported.directory.relative_to(models_root)))
    decision = Decision(
        True,
        "no gate: an embedding model has no labels and so no held-out metric to compare; "
        "promoted as exported from the pinned pre-trained weights",
        {"weights_sha256": WEIGHTS_SHA256, "model_sha256": exported.manifest["files"][MODEL_FILE]},
    )
    with registry.locked(EMBEDDER_MODEL):
        registry.record(EMBEDDER_MODEL, row.version, decision)
    return registry.version(EMBEDDER_MODEL, row.version)
