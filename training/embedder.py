"""The knowledge base's sentence embedder, exported as a version directory of model `embedder` and
put in production directly. Three kinds, all taking WordPiece ids and giving a unit 384-dim
`embedding`:

* `static` (the default): a token table distilled from MiniLM (`models/static.py`), ~0.1 ms of
  CPU per query where MiniLM takes ~10-25;
* `static-distill`: the same without the refinement on a corpus (model2vec's distillation alone),
  for comparison;
* `minilm`: all-MiniLM-L6-v2 as published (mean-pooled, L2-normalized, nothing trained);
* `minilm-int8`: the same graph with onnxruntime's dynamic int8 quantization of its MatMuls,
  for comparison (`npm run bench:embedding`).

There is no gate: an embedder has no labels, hence no held-out metric a new version could be
compared on; the recorded decision says so. Exporting identical bytes again reuses the version
that holds them; a static export whose recipe (weights, corpus digests, parameters) matches an
existing version reuses it without recomputing (the distillation takes minutes)."""

from __future__ import annotations

import hashlib
import json
import csv
import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import load_file

from training.artifacts import (
    EMBEDDING_TASK,
    MANIFEST_SCHEMA,
    MODEL_FILE,
    ArtifactError,
    load_version,
    write_version,
)
from training.datasets import airline, bitext, clinc150
from training.datasets.base import sha256_file
from training.gate import Decision
from training.models.encoder import (
    HIDDEN,
    MAX_LENGTH,
    WEIGHTS_PACKAGE,
    WEIGHTS_SHA256,
    Encoder,
    embedding_graph,
    weights_dir,
    wordpiece_spec,
)
from training.models import static
from training.models.wordpiece import WordPieceTokenizer
from training.onnx_graph import OPSET
from training.registry import Registry, VersionRow

log = logging.getLogger(__name__)

EMBEDDER_MODEL = "embedder"
FAMILY = "encoder"
STATIC_FAMILY = "static"
VOCAB_FILE = "vocab.txt"
KINDS = ("static", "static-distill", "minilm", "minilm-int8")
DEFAULT_KIND = "static"
# Bumped when the static recipe's code changes in a way its parameters do not record.
STATIC_METHOD = 1
# Unlabelled texts for the static table's refinement (MiniLM's embeddings are the targets, no
# label is read): the train splits of CLINC150 and the airline tweets, and of Bitext, the stand-in
# for the inquiry traffic respond sees, minus the rows the knowledge-base retrieval test and
# `npm run bench:embedding` query (`bitextSample(size, offset)` in test/integration/kb-fixture.ts).
STATIC_CORPUS = ("clinc150", "airline-sentiment", "bitext")
BITEXT_EVALUATION_SAMPLES = ((200, 3), (1000, 11))
PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


@dataclass(frozen=True)
class ExportedEmbedder:
    version: str
    directory: Path
    manifest: dict[str, Any]
    created: bool  # False: a version with identical files already existed


def _minilm_parameters(quantized: bool) -> dict[str, Any]:
    return {
        "encoder": "all-MiniLM-L6-v2",
        "weights_package": WEIGHTS_PACKAGE,
        "weights_sha256": WEIGHTS_SHA256,
        "pooling": "mean over attention_mask",
        "normalized": "L2",
        "dimensions": HIDDEN,
        "max_length": MAX_LENGTH,
        **({"quantization": "onnxruntime dynamic, int8 weights (QInt8), per tensor"} if quantized else {}),
    }


def embedding_manifest(
    model: str, family: str, parameters: dict[str, Any], seconds: float, dimensions: int, tokenizer: dict[str, Any]
) -> dict[str, Any]:
    """The manifest of an embedder version (every embedder model's: no labels, no gate, token ids
    in, one L2-normalized vector per row out); `write_version` adds its files."""
    return {
        "schema_version": MANIFEST_SCHEMA,
        "model": model,
        "task": EMBEDDING_TASK,
        "family": family,
        "labels": [],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_data_digest": None,
        "dataset": None,
        "parameters": parameters,
        "training_seconds": round(seconds, 1),
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
            "outputs": {"embedding": {"type": "float32", "shape": ["N", dimensions]}},
        },
        "tokenizer": tokenizer,
        "reference": None,
    }


def _manifest(vocab: Path, family: str, parameters: dict[str, Any], seconds: float) -> dict[str, Any]:
    tokenizer = wordpiece_spec(WordPieceTokenizer(vocab, MAX_LENGTH))
    return embedding_manifest(EMBEDDER_MODEL, family, parameters, seconds, HIDDEN, tokenizer)


def _versions(models_root: Path, family: str, pattern: str = "*") -> list[ExportedEmbedder]:
    found = []
    for directory in sorted((models_root / EMBEDDER_MODEL).glob(f"[!.]*-{family}-{pattern}")):
        try:
            manifest = load_version(directory).manifest
        except ArtifactError as error:
            log.warning("ignoring %s: %s", directory, error)
            continue
        found.append(ExportedEmbedder(directory.name, directory, manifest, created=False))
    return found


def _existing(
    models_root: Path, family: str, model_sha256: str, vocab_sha256: str
) -> ExportedEmbedder | None:
    """An intact version directory holding exactly these files, if there is one."""
    for version in _versions(models_root, family, model_sha256[:8]):
        if version.manifest["files"] == {MODEL_FILE: model_sha256, VOCAB_FILE: vocab_sha256}:
            return version
    return None


def _quantized(onnx_bytes: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "fp32.onnx", Path(scratch) / "int8.onnx"
        source.write_bytes(onnx_bytes)
        root = logging.getLogger()
        level = root.level
        root.setLevel(max(level, logging.WARNING))  # the quantizer logs a line per tensor it skips
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        return target.read_bytes()


def _without_placeholders(text: str) -> str:
    """As the benchmark's queries: Bitext's `{{Order Number}}` slots removed (live inquiries carry values)."""
    return " ".join(PLACEHOLDER.sub(" ", text).split())


def _static_corpus(datasets_root: Path | None) -> dict[str, list[str]]:
    with bitext.SOURCE.resolve(datasets_root).open(newline="", encoding="utf-8") as handle:
        rows = [r["instruction"] for r in csv.DictReader(handle)]
    evaluated = {
        _without_placeholders(rows[offset + i * (len(rows) // size)]).lower()
        for size, offset in BITEXT_EVALUATION_SAMPLES
        for i in range(size)
    }
    bitext_train = {
        _without_placeholders(r.text) for r in bitext.load("intent", seed=0, root=datasets_root).train
    }
    corpus = {
        "clinc150": {r.text for r in clinc150.load(seed=0, root=datasets_root).train},
        "airline-sentiment": {r.text for r in airline.load(seed=0, root=datasets_root).train},
        "bitext": {t for t in bitext_train if t and t.lower() not in evaluated},
    }
    return {name: sorted(corpus[name]) for name in STATIC_CORPUS}


def _static_recipe(
    datasets_root: Path | None, refined: bool
) -> tuple[dict[str, Any], dict[str, list[str]] | None]:
    """The static table's parameters (everything its bytes depend on) and its corpus by data set."""
    corpus = _static_corpus(datasets_root) if refined else None
    refinement = (
        {
            "kind": "ridge regression onto MiniLM sentence embeddings, conjugate gradient",
            "lambda": static.RIDGE_LAMBDA,
            "iterations": static.CG_ITERATIONS,
            "corpus": {
                name: {
                    "split": "train, seed 0" + (", without the benchmark's rows" if name == "bitext" else ""),
                    "texts": len(texts),
                    "sha256": hashlib.sha256("\n".join(texts).encode()).hexdigest(),
                }
                for name, texts in corpus.items()
            },
        }
        if corpus is not None
        else None
    )
    parameters = {
        "method": STATIC_METHOD,
        "distilled_from": "all-MiniLM-L6-v2",
        "weights_package": WEIGHTS_PACKAGE,
        "weights_sha256": WEIGHTS_SHA256,
        "token_vector": "mean of the last layer over [CLS] t [SEP], L2-normalized",
        "sif_coefficient": static.SIF_COEFFICIENT,
        "refinement": refinement,
        "pooling": "sum of token rows over attention_mask (special tokens have zero rows)",
        "normalized": "L2",
        "dimensions": HIDDEN,
        "max_length": MAX_LENGTH,
    }
    recipe_sha256 = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
    return {**parameters, "recipe_sha256": recipe_sha256}, corpus


def static_table(corpus: dict[str, list[str]] | None, threads: int = 2) -> np.ndarray:
    """The static family's token table [vocab, 384] float32 (models/static.py, steps 1-3; step 2
    only with a corpus)."""
    encoder = Encoder(threads=threads)
    tokenizer = encoder.tokenizer
    specials = static.Specials(tokenizer.pad, tokenizer.unk, tokenizer.cls, tokenizer.sep)
    vocab_size = len(encoder.vocab_path.read_text(encoding="utf-8").splitlines())
    vectors = static.token_vectors(encoder.weights, np.arange(vocab_size), specials, threads=threads)
    prior = static.prior_table(vectors)
    if corpus is None:
        return static.finish(prior, specials)
    texts = [text for name in sorted(corpus) for text in corpus[name]]
    pooling = static.pooling_matrix([tokenizer.encode(t) for t in texts], vocab_size, specials)
    return static.finish(static.refine(prior, pooling, encoder(texts)), specials)


def export_embedder(
    models_root: Path, kind: str = DEFAULT_KIND, datasets_root: Path | None = None
) -> ExportedEmbedder:
    """Writes `<models_root>/embedder/<version>/` unless a version with the same bytes (or, for
    `static`, the same recipe) exists."""
    if kind not in KINDS:
        raise ValueError(f"unknown embedder kind {kind!r}: one of {', '.join(KINDS)}")
    weights = weights_dir()
    vocab = weights / VOCAB_FILE
    started = datetime.now(UTC)
    if kind.startswith("static"):
        family = STATIC_FAMILY
        parameters, corpus = _static_recipe(datasets_root, refined=kind == "static")
        for version in _versions(models_root, family):
            if version.manifest["parameters"].get("recipe_sha256") == parameters["recipe_sha256"]:
                return version
        onnx_bytes = static.static_graph(static_table(corpus)).SerializeToString()
    else:
        family = FAMILY
        parameters = _minilm_parameters(quantized=kind == "minilm-int8")
        onnx_bytes = embedding_graph(load_file(str(weights / "model.safetensors"))).SerializeToString()
        if kind == "minilm-int8":
            onnx_bytes = _quantized(onnx_bytes)
    model_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    existing = _existing(models_root, family, model_sha256, sha256_file(vocab))
    if existing:
        return existing
    seconds = (datetime.now(UTC) - started).total_seconds()
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{family}-{model_sha256[:8]}"
    directory, manifest = write_version(
        models_root,
        EMBEDDER_MODEL,
        version,
        onnx_bytes,
        {**_manifest(vocab, family, parameters, seconds), "version": version},
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
        f"promoted as exported ({exported.manifest['family']}) from the pinned pre-trained weights",
        {"weights_sha256": WEIGHTS_SHA256, "model_sha256": exported.manifest["files"][MODEL_FILE]},
    )
    with registry.locked(EMBEDDER_MODEL):
        registry.record(EMBEDDER_MODEL, row.version, decision)
    return registry.version(EMBEDDER_MODEL, row.version)
