"""Training of one target: fit each family, calibrate, evaluate on held-out data, export to ONNX,
check the exported artifact against the Python model, and write the version directory."""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from scipy.special import softmax

from training import config, reference
from training.augment import AugmentParams, augmented, held_out_copies
from training.artifacts import MANIFEST_SCHEMA, MODEL_FILE, write_version
from training.calibration import calibrated, fit_temperature, nll
from training.config import OosPolicy
from training.datasets.base import OOS_LABEL, Example, Split, dedupe_key, rows_digest
from training.metrics import ECE_BINS, report_probabilities
from training.embedder import EMBEDDER_MODEL
from training.models.embedding_head import HeadModel, PinnedEmbedder, resolve_embedder
from training.models.encoder import Encoder, EncoderModel, EncoderParams
from training.models.finetune import FineTuneParams, fine_tune
from training.models.ensemble import EnsembleModel, Member
from training.models.linear import LinearModel, LinearParams
from training.models.protocol import Model
from training.onnx_graph import FLOAT, OPSET, GraphBuilder
from training.oos import (
    IN_SCOPE_SIMILARITY,
    MAX_PROBABILITY,
    Scores,
    choose_threshold,
    choose_threshold_within_loss,
    evaluate,
)
from training.predictor import Predictor
from training.registry import Registry
from training.tasks import Target

log = logging.getLogger(__name__)

FAMILIES = ("linear", "encoder", "ensemble", "head")
PARITY_TOLERANCE = 1e-5
PARITY_SAMPLE = 64


@dataclass(frozen=True)
class TrainedVersion:
    model: str
    version: str
    family: str
    directory: Path
    manifest: dict[str, Any]


@dataclass(frozen=True)
class Fitted:
    model: Model
    temperature: float
    val_logits: np.ndarray
    seconds: float


@dataclass
class Prepared:
    """A split in the form the models need; `fitted` collects the families fitted on it."""

    split: Split
    labels: list[str]
    train_y: np.ndarray
    val: list[Example]  # in-scope rows only: the model cannot predict out-of-scope
    val_y: np.ndarray
    test: list[Example]  # in-scope rows only
    test_y: np.ndarray
    augmentation: dict[str, Any] | None = None  # AugmentParams.describe() of the training rows' copies
    fitted: dict[str, Fitted] = field(default_factory=dict)

    @classmethod
    def of(cls, split: Split, augmentation: dict[str, Any] | None = None) -> Prepared:
        index = {label: i for i, label in enumerate(split.labels)}

        def y(rows: list[Example]) -> np.ndarray:
            return np.array([index[r.label] for r in rows])

        val = [r for r in split.validation if r.label in index]
        test = [r for r in split.test if r.label in index]
        return cls(split, split.labels, y(split.train), val, y(val), test, y(test), augmentation)


def _texts(rows: list[Example]) -> list[str]:
    return [r.text for r in rows]


def export(model: Model, temperature: float, n_labels: int) -> onnx.ModelProto:
    """The model's graph with temperature-scaled probabilities as the `probabilities` output."""
    graph = GraphBuilder(f"switchboard-{model.family}")
    probabilities = graph.op("Softmax", [graph.tempered(model.add_logits(graph), temperature)], axis=-1)
    graph.output(probabilities, "probabilities", FLOAT, ["N", n_labels])
    return graph.build()


class Trainer:
    """Trains targets; the encoder, the pinned embedder and their embedding memos are shared by
    all targets of a run. Heads are trained on `registry`'s production embedder when a registry
    is given, else on the newest embedder version under `models_root` (resolve_embedder)."""

    def __init__(
        self,
        models_root: Path,
        seed: int = 0,
        limit: int | None = None,
        linear_params: LinearParams | None = None,
        oos_policy: OosPolicy | None = None,
        registry: Registry | None = None,
        fine_tune: FineTuneParams | None = None,
    ) -> None:
        self.models_root = models_root
        self.fine_tune = fine_tune
        self.seed = seed
        self.limit = limit
        self.linear_params = linear_params or LinearParams()
        self.oos_policy = oos_policy or OosPolicy()
        self.registry = registry
        self._encoder: Encoder | None = None
        self._embedders: dict[str, PinnedEmbedder] = {}

    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = Encoder()
        return self._encoder

    def _fine_tuned(self, data: Prepared) -> Encoder:
        """MiniLM fine-tuned on this split's training rows (finetune.py): an encoder of its own,
        since its embeddings hold for this target only."""
        assert self.fine_tune is not None
        rows = data.split.train
        tuned = fine_tune(
            [r.text for r in rows], [r.label for r in rows], self.fine_tune, self.seed, config.cache_dir()
        )
        return Encoder(weights=tuned.weights, fine_tuning=tuned.description)

    def embedder(self, model: str = EMBEDDER_MODEL) -> PinnedEmbedder:
        """Resolved once per run and embedder model (a target's `embedder`), so every head of
        the run on that model pins the same version."""
        if model not in self._embedders:
            self._embedders[model] = PinnedEmbedder.at(resolve_embedder(self.models_root, self.registry, model))
        return self._embedders[model]

    def train(
        self,
        target: Target,
        families: list[str],
        split: Split | None = None,
        dataset: dict[str, Any] | None = None,
        lineage: dict[str, str] | None = None,
        augment: AugmentParams | None = None,
    ) -> list[TrainedVersion]:
        """`split`: train on this one instead of the target's own (base data plus feedback, a
        team's file); `dataset`: extra manifest `dataset` fields saying where it came from;
        `lineage`: the manifest's `lineage` (string values), which every decision row repeats;
        `augment`: add customer-style copies of the training rows (training/augment.py)."""
        split = split or target.load(self.seed, self.limit)
        dataset, lineage = dict(dataset or {}), dict(lineage or {})
        if augment is not None:
            rows = len(split.train)
            split = augmented(split, augment, self.seed)
            dataset["augmentation"] = {**augment.describe(), "rows": rows, "copies": len(split.train) - rows}
            lineage["augmentation"] = augment.lineage()
        log.info(
            "%s: train %d, validation %d, test %d rows",
            split.name,
            len(split.train),
            len(split.validation),
            len(split.test),
        )
        data = Prepared.of(split, augment.describe() if augment else None)
        return [self._version(target, data, family, dataset, lineage) for family in families]

    def _fit(self, data: Prepared, family: str, embedder: str = EMBEDDER_MODEL) -> Fitted:
        if family in data.fitted:
            return data.fitted[family]
        started = time.perf_counter()
        model: Model
        if family == "linear":
            model = LinearModel(self.linear_params, seed=self.seed)
        elif family == "encoder":
            if self.fine_tune:
                # The head SetFit fits: on the sentence embedding, which is what the fine-tuning trained.
                model = EncoderModel(self._fine_tuned(data), EncoderParams(layers_c_grid=()), seed=self.seed)
            else:
                model = EncoderModel(self.encoder(), seed=self.seed)
        elif family == "head":
            model = HeadModel(self.embedder(embedder), seed=self.seed)
        elif family == "ensemble":
            linear, encoder = self._fit(data, "linear"), self._fit(data, "encoder")
            model = EnsembleModel(
                Member(linear.model, linear.temperature), Member(encoder.model, encoder.temperature)
            )  # type: ignore[arg-type]
            started -= linear.seconds + encoder.seconds
        else:
            raise ValueError(f"unknown family {family!r}")
        log.info("fitting %s on %d rows", family, len(data.split.train))
        model.fit(_texts(data.split.train), data.train_y, _texts(data.val), data.val_y)
        val_logits = model.logits(_texts(data.val))
        temperature = fit_temperature(val_logits, data.val_y)
        data.fitted[family] = Fitted(model, temperature, val_logits, time.perf_counter() - started)
        return data.fitted[family]

    def _version(
        self, target: Target, data: Prepared, family: str, dataset: dict[str, Any], lineage: dict[str, str]
    ) -> TrainedVersion:
        fitted = self._fit(data, family, target.embedder)
        log.info("evaluating and exporting %s", family)
        metrics, test_probs = _held_out_metrics(fitted, data)
        operating_point = self._operating_point(target, fitted, data, test_probs) if target.oos else None
        if operating_point:
            metrics["oos"] = operating_point["test"]
        onnx_bytes = export(fitted.model, fitted.temperature, len(data.labels)).SerializeToString()
        manifest = self._manifest(target, data, fitted, metrics, operating_point, test_probs)
        manifest["dataset"].update(dataset)
        manifest["lineage"] = {"base_dataset": data.split.name, **lineage}
        version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{family}-{hashlib.sha256(onnx_bytes).hexdigest()[:8]}"
        directory, manifest = write_version(
            self.models_root,
            target.model,
            version,
            onnx_bytes,
            {**manifest, "version": version},
            fitted.model.extra_files(),
        )
        _check_parity(directory, fitted.model, _texts(data.test[:PARITY_SAMPLE]))
        test = metrics["test"]
        log.info(
            "%s %s: test accuracy %.4f macro-F1 %.4f ECE %.4f -> %.4f (T=%.3f), fitted in %.0fs",
            target.model,
            family,
            test["accuracy"],
            test["macro_f1"],
            test["ece_uncalibrated"],
            test["ece"],
            fitted.temperature,
            fitted.seconds,
        )
        return TrainedVersion(target.model, version, family, directory, manifest)

    def _operating_point(
        self, target: Target, fitted: Fitted, data: Prepared, test_probs: np.ndarray
    ) -> dict[str, Any]:
        """Out-of-scope threshold chosen on validation, reported on the held-out test rows. The
        out-of-scope rows are the split's own, else the target's `oos_examples` (CLINC150's for
        the served intent model), minus any text of the training split."""
        validation_oos = [r for r in data.split.validation if r.label == OOS_LABEL]
        test_oos = [r for r in data.split.test if r.label == OOS_LABEL]
        source = data.split.name
        if not validation_oos and target.oos_examples is not None:
            trained = {dedupe_key(r.text) for r in data.split.train}
            extra_validation, extra_test = target.oos_examples(self.seed, self.limit)
            validation_oos = [r for r in extra_validation if dedupe_key(r.text) not in trained]
            test_oos = [r for r in extra_test if dedupe_key(r.text) not in trained]
            source = "clinc150 oos_val (validation), oos_train (test)"

        def oos_probs(rows: list[Example]) -> np.ndarray:
            return calibrated(fitted.model.logits(_texts(rows)), fitted.temperature)

        model = fitted.model
        similarity = target.oos_statistic == "similarity" and isinstance(model, HeadModel)
        in_val, in_val_y, in_val_probs = data.val, data.val_y, calibrated(fitted.val_logits, fitted.temperature)
        in_test, in_test_y, in_test_probs = data.test, data.test_y, test_probs
        val_scores: Scores | None = None
        test_scores: Scores | None = None
        if similarity:
            # Bitext's held-out rows are near-copies of its templates, as close to the centroids as
            # the training rows; customers' text is not. Their customer-style copies stand in for it.
            index = {label: i for i, label in enumerate(data.labels)}
            in_val = [r for r in held_out_copies(data.split, "validation", self.seed) if r.label in index]
            in_test = [r for r in held_out_copies(data.split, "test", self.seed) if r.label in index]
            in_val_y, in_test_y = (np.array([index[r.label] for r in rows]) for rows in (in_val, in_test))
            in_val_probs, in_test_probs = oos_probs(in_val), oos_probs(in_test)
            val_scores = (model.in_scope_similarity(_texts(in_val)), model.in_scope_similarity(_texts(validation_oos)))
            test_scores = (model.in_scope_similarity(_texts(in_test)), model.in_scope_similarity(_texts(test_oos)))
        in_scope_rows = "customer-style copies of the validation rows" if similarity else "validation"
        if target.oos_rule == "loss":
            loss = self.oos_policy.max_in_scope_loss
            chosen = choose_threshold_within_loss(
                in_val_probs, in_val_y, oos_probs(validation_oos), loss, val_scores
            )
            rule = (
                f"highest out-of-scope recall with in-scope accuracy ({in_scope_rows}) at most "
                f"{loss} below its accuracy without a threshold"
            )
        else:
            floor = self.oos_policy.min_in_scope_accuracy
            chosen = choose_threshold(in_val_probs, in_val_y, oos_probs(validation_oos), floor, val_scores)
            rule = f"highest out-of-scope recall with in-scope accuracy ({in_scope_rows}) >= {floor}"
        result = evaluate(chosen.threshold, in_test_probs, in_test_y, oos_probs(test_oos), test_scores)
        return {
            "threshold": chosen.threshold,
            "statistic": IN_SCOPE_SIMILARITY if similarity else MAX_PROBABILITY,
            "rule": rule,
            "served": similarity or target.serve_oos_point,
            "in_scope_source": f"customer-style copies of {data.split.name} validation (choice) and test (report)"
            if similarity
            else data.split.name,
            "out_of_scope_source": source,
            "validation": asdict(chosen),
            "test": asdict(result),
        }

    def _manifest(
        self,
        target: Target,
        data: Prepared,
        fitted: Fitted,
        metrics: dict[str, Any],
        operating_point: dict[str, Any] | None,
        test_probs: np.ndarray,
    ) -> dict[str, Any]:
        split, model, temperature = data.split, fitted.model, fitted.temperature
        train_texts = _texts(split.train)
        return {
            "schema_version": MANIFEST_SCHEMA,
            "model": target.model,
            "task": target.task,
            "family": model.family,
            "labels": data.labels,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "training_data_digest": rows_digest(split.train),
            "dataset": {
                "name": split.name,
                "source": {
                    "local": target.source.local,
                    "sha256": target.source.local_sha256,
                    "url": target.source.url,
                },
                "seed": self.seed,
                "limit": self.limit,
                "sizes": {
                    "train": len(split.train),
                    "validation": len(split.validation),
                    "test": len(split.test),
                },
                "digests": {part: split.digest(part) for part in ("train", "validation", "test")},
            },
            "parameters": {**model.describe(), "augmentation": data.augmentation},
            "training_seconds": round(fitted.seconds, 1),
            "calibration": {
                "method": "temperature",
                "temperature": temperature,
                "fitted_on": "validation",
                "applied_in_graph": True,
                "validation_nll": {
                    "before": nll(fitted.val_logits, data.val_y),
                    "after": nll(fitted.val_logits, data.val_y, temperature),
                },
                "test_ece": {
                    "before": metrics["test"]["ece_uncalibrated"],
                    "after": metrics["test"]["ece"],
                    "bins": ECE_BINS,
                },
            },
            "metrics": metrics,
            "operating_point": operating_point,
            "onnx": {
                "file": MODEL_FILE,
                "opset": OPSET,
                "onnxruntime": ort.__version__,
                "inputs": model.inputs,
                "outputs": {
                    "probabilities": {"type": "float32", "shape": ["N", len(data.labels)]},
                    **model.outputs,
                },
            },
            "tokenizer": model.tokenizer_spec(),
            **model.manifest_fields(),
            "reference": reference.build(
                data.labels,
                [r.label for r in split.train],
                train_texts,
                [r.language for r in split.train],
                test_probs,
                model.feature_summaries(train_texts),
            ),
        }


def _held_out_metrics(fitted: Fitted, data: Prepared) -> tuple[dict[str, Any], np.ndarray]:
    """Test metrics with calibration (and the ECE without), validation metrics; and the test
    probabilities, which the reference distributions reuse."""
    test_labels = [r.label for r in data.test]
    test_logits = fitted.model.logits(_texts(data.test))
    test_probs = calibrated(test_logits, fitted.temperature)
    test = report_probabilities(test_labels, test_probs, data.labels)
    test["ece_uncalibrated"] = report_probabilities(test_labels, softmax(test_logits, axis=1), data.labels)[
        "ece"
    ]
    validation = report_probabilities(
        [r.label for r in data.val], calibrated(fitted.val_logits, fitted.temperature), data.labels
    )
    return {"test": test, "validation": validation}, test_probs


def _check_parity(directory: Path, model: Model, texts: list[str]) -> None:
    """The written artifact, run as Node runs it, must agree with the Python model; if it does
    not, the version is removed before anything can register it."""
    predictor = Predictor(directory)
    expected = calibrated(model.logits(texts), float(predictor.manifest["calibration"]["temperature"]))
    gap = float(np.abs(predictor.probabilities(texts) - expected).max()) if texts else 0.0
    if isinstance(model, HeadModel) and texts:
        similarity_gap = float(np.abs(predictor.in_scope_similarity(texts) - model.in_scope_similarity(texts)).max())
        gap = max(gap, similarity_gap)
    if gap > PARITY_TOLERANCE:
        shutil.rmtree(directory)
        raise RuntimeError(
            f"{directory}: ONNX and Python outputs (probabilities, in-scope similarity) differ by {gap:.2e} > {PARITY_TOLERANCE}"
        )
