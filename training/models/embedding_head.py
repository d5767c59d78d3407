"""Head family: logistic regression over the sentence embedding of a pinned `embedder` version.

Serving computes one embedding per inquiry with the production embedder (the static family:
~0.1 ms) and feeds it to every head, instead of each classifier featurizing the text itself. So
a head's graph is only `embedding [N, D]` -> Gemm -> temperature -> Softmax, and the head is
valid with exactly the embedder it was trained on: the manifest pins it (`embedder`: model,
version, family, dimensions, sha256 of its model.onnx) and loading refuses any other
(artifacts.load_version).

Training embeds with that version's own model.onnx through onnxruntime and the WordPiece
tokenizer its manifest describes, so the features are the ones serving computes. The classifier
sees the raw embedding (unit norm, unscaled), C in {1, 4, 16, 64} x class weights {none,
balanced}, chosen on validation macro-F1.

The graph also outputs `in_scope_similarity [N]`: the cosine of the embedding to the nearest
label centroid (the unit mean direction of that label's training embeddings). It is the intent
model's out-of-scope score (training/oos.py): on customers' text it tells out-of-scope inquiries
from in-scope ones far better than the maximum probability, which a linear head keeps high far
from its training data."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sklearn.linear_model import LogisticRegression

from training import reference
from training.artifacts import (
    EMBEDDER_PIN,
    EMBEDDING_TASK,
    MANIFEST_FILE,
    MODEL_FILE,
    ArtifactError,
    LoadedVersion,
    load_version,
)
from training.embedder import EMBEDDER_MODEL
from training.models.encoder import pad_batch
from training.models.head import class_rows, fit_logistic_regression
from training.models.multilingual import UnigramTokenizer, unigram_tokenizer
from training.models.wordpiece import MAX_CHARS_PER_WORD, WordPieceTokenizer
from training.onnx_graph import FLOAT, GraphBuilder
from training.registry import Registry

EXPORT_HINT = "export the embedder first: python -m training export-embedder"


class EmbedderNotFound(ArtifactError):
    """No embedder version to train a head on."""


def newest_embedder(models_root: Path, model: str = EMBEDDER_MODEL) -> Path:
    """The newest version directory of model `embedder` (version ids sort by time), or of
    another embedder model (the multilingual one)."""
    versions = sorted(
        d for d in (models_root / model).glob("[!.]*") if (d / MANIFEST_FILE).is_file()
    )
    if not versions:
        raise EmbedderNotFound(f"no version of `{model}` under {models_root}: {EXPORT_HINT}")
    return versions[-1]


def resolve_embedder(models_root: Path, registry: Registry | None = None, model: str = EMBEDDER_MODEL) -> Path:
    """The embedder a new head is trained on: the registry's production version when there is a
    registry (what serving runs), else the newest version directory under the models root."""
    if registry is None:
        return newest_embedder(models_root, model)
    try:
        row = registry.production(model)
    except psycopg.Error as error:  # e.g. `train --no-register` against a registry never migrated
        raise EmbedderNotFound(
            f"cannot read the production `{model}` from the registry: {error}"
        ) from error
    if row is None:
        raise EmbedderNotFound(
            f"the registry has no production version of `{model}`: {EXPORT_HINT}"
        )
    directory = row.directory(models_root)
    if not directory.is_dir():
        raise EmbedderNotFound(
            f"the production {model}@{row.version} is registered but missing at "
            f"{directory}: {EXPORT_HINT}"
        )
    return directory


def _tokenizer(embedder: LoadedVersion) -> WordPieceTokenizer | UnigramTokenizer:
    """The tokenizer the embedder's manifest describes, refused if wordpiece.py cannot be it
    (or, for kind `unigram`, the multilingual encoder's: multilingual.py checks its settings)."""
    spec = embedder.manifest["tokenizer"]
    if spec.get("kind") == "unigram":
        return unigram_tokenizer(embedder.directory, spec)
    if spec.get("kind") != "wordpiece":
        raise ArtifactError(f"{embedder.directory}: tokenizer kind {spec.get('kind')!r}, expected wordpiece")
    tokenizer = WordPieceTokenizer(embedder.directory / spec["vocab"], int(spec["max_length"]))
    actual = {"cls": tokenizer.cls, "sep": tokenizer.sep, "pad": tokenizer.pad, "unk": tokenizer.unk}
    settings = (
        spec.get("lowercase", True),
        spec.get("strip_accents", True),
        spec.get("continuing_subword_prefix", "##"),
        spec.get("max_input_chars_per_word", MAX_CHARS_PER_WORD),
    )
    if spec["special_ids"] != actual or settings != (True, True, "##", MAX_CHARS_PER_WORD):
        raise ArtifactError(
            f"{embedder.directory}: tokenizer settings {spec} differ from models/wordpiece.py's"
        )
    return tokenizer


class PinnedEmbedder:
    """Runs one embedder version as serving does; memoizes per text when `memo` (a training run
    embeds each dataset text once, the targets sharing a dataset too)."""

    def __init__(self, embedder: LoadedVersion, batch_size: int = 256, memo: bool = True) -> None:
        manifest = embedder.manifest
        if manifest["task"] != EMBEDDING_TASK:
            raise ArtifactError(f"{embedder.directory}: task {manifest['task']!r} is not an embedder")
        self.version = embedder
        self.tokenizer = _tokenizer(embedder)
        self.dimensions = int(manifest["onnx"]["outputs"]["embedding"]["shape"][-1])
        self.pin: dict[str, Any] = {
            "model": manifest["model"],
            "version": manifest["version"],
            "family": manifest["family"],
            "dimensions": self.dimensions,
            "sha256": manifest["files"][MODEL_FILE],
        }
        self._batch_size = batch_size
        self._cache: dict[str, np.ndarray] | None = {} if memo else None

    @classmethod
    def at(cls, directory: Path) -> PinnedEmbedder:
        return cls(load_version(directory))

    def _embed(self, texts: list[str]) -> dict[str, np.ndarray]:
        encoded = {t: self.tokenizer.encode(t) for t in texts}
        # Length-sorted batches waste little on padding (which changes no row); fixed order.
        order = sorted(encoded, key=lambda t: (len(encoded[t]), t))
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            input_ids, mask = pad_batch([encoded[t] for t in batch], self.tokenizer.pad)
            feed = {"input_ids": input_ids, "attention_mask": mask}
            (vectors,) = self.version.session.run(["embedding"], feed)
            out.update(zip(batch, vectors, strict=True))
        return out

    def __call__(self, texts: list[str]) -> np.ndarray:
        """float32 [N, dimensions], rows in the order of `texts`."""
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        if self._cache is None:
            vectors = self._embed(texts)
        else:
            self._cache.update(self._embed([t for t in set(texts) if t not in self._cache]))
            vectors = self._cache
        return np.stack([vectors[t] for t in texts])


@dataclass(frozen=True)
class HeadParams:
    c_grid: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    class_weights: tuple[str | None, ...] = (None, "balanced")


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class HeadModel:
    family = "head"
    outputs: dict[str, dict[str, Any]] = {"in_scope_similarity": {"type": "float32", "shape": ["N"]}}

    def __init__(self, embedder: PinnedEmbedder, params: HeadParams | None = None, seed: int = 0) -> None:
        self.embedder = embedder
        self.params = params or HeadParams()
        self.seed = seed
        self.inputs: dict[str, dict[str, Any]] = {
            "embedding": {"type": "float32", "shape": ["N", embedder.dimensions]}
        }
        self.classifier: LogisticRegression | None = None
        self.centroids: np.ndarray | None = None  # [labels, D], unit rows

    def _x(self, texts: list[str]) -> np.ndarray:
        return self.embedder(texts).astype(np.float64)

    def fit(self, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray) -> None:
        x = self._x(texts)
        _, self.classifier = fit_logistic_regression(
            x,
            labels,
            self._x(val_texts),
            val_labels,
            self.params.c_grid,
            self.seed,
            self.params.class_weights,
        )
        unit = _unit_rows(x)
        self.centroids = _unit_rows(np.stack([unit[labels == label].mean(axis=0) for label in np.unique(labels)]))

    def in_scope_similarity(self, texts: list[str]) -> np.ndarray:
        """[N]: the cosine of each text's embedding to the nearest label centroid."""
        assert self.centroids is not None
        return (_unit_rows(self._x(texts)) @ self.centroids.T).max(axis=1)

    def logits(self, texts: list[str]) -> np.ndarray:
        assert self.classifier is not None
        coef, intercept = class_rows(self.classifier)
        return self._x(texts) @ coef.T + intercept

    def describe(self) -> dict[str, Any]:
        assert self.classifier is not None
        return {
            **asdict(self.params),
            "C": float(self.classifier.C),
            "class_weight": self.classifier.class_weight,
            "features": "the pinned embedder's embedding, raw (unit norm, unscaled)",
        }

    def manifest_fields(self) -> dict[str, Any]:
        return {EMBEDDER_PIN: dict(self.embedder.pin)}

    def tokenizer_spec(self) -> dict[str, Any]:
        return {"kind": "embedder"}

    def extra_files(self) -> dict[str, Path]:
        return {}

    def feature_summaries(self, texts: list[str]) -> list[dict[str, Any]]:
        """Per-dimension mean and std of the training embeddings, and each one's cosine to their
        mean direction: live inquiries about other things sit further from it."""
        x = self._x(texts)
        centroid = x.mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        cosine = x @ centroid / np.maximum(np.linalg.norm(x, axis=1), 1e-12)
        return [
            reference.vector_summary("embedding", x),
            reference.scalar_summary("embedding_centroid_cosine", cosine),
        ]

    def add_logits(self, graph: GraphBuilder) -> str:
        assert self.classifier is not None
        assert self.centroids is not None
        embedding = graph.input("embedding", FLOAT, ["N", self.embedder.dimensions])
        # The embedders output unit rows (serving checks it at load), so a MatMul gives the cosines.
        cosines = graph.op("MatMul", [embedding, graph.const(self.centroids.T.astype(np.float32), "centroids")])
        nearest = graph.op("ReduceMax", [cosines], "in_scope_similarity", axes=[1], keepdims=0)
        graph.output(nearest, "in_scope_similarity", FLOAT, ["N"])
        return graph.linear_logits(embedding, *class_rows(self.classifier))
