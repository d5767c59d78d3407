"""Ensemble family: a weighted sum of the linear and encoder models' calibrated log-probabilities
(the weight chosen on validation), in one graph fed with both the raw text and WordPiece ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_softmax

from training.metrics import macro_f1
from training.models.encoder import EncoderModel
from training.models.linear import LinearModel
from training.models.protocol import Model
from training.onnx_graph import GraphBuilder

# Balanced weights first, so that a tie on validation keeps the more even mix.
LINEAR_WEIGHTS = (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8)


@dataclass(frozen=True)
class Member:
    """A fitted model with the temperature calibrated for it alone."""

    model: Model
    temperature: float


class EnsembleModel:
    family = "ensemble"
    inputs: dict[str, dict[str, Any]] = {**LinearModel.inputs, **EncoderModel.inputs}
    outputs: dict[str, dict[str, Any]] = {**LinearModel.outputs, **EncoderModel.outputs}

    def __init__(self, linear: Member, encoder: Member) -> None:
        self.linear = linear
        self.encoder = encoder
        self.linear_weight = 0.5

    def _member_log_probs(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return (
            log_softmax(self.linear.model.logits(texts) / self.linear.temperature, axis=1),
            log_softmax(self.encoder.model.logits(texts) / self.encoder.temperature, axis=1),
        )

    def fit(self, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray) -> None:
        """The members are fitted already; only the weight is chosen, by validation macro-F1."""
        lin, enc = self._member_log_probs(val_texts)
        scores = {w: macro_f1(val_labels, (w * lin + (1 - w) * enc).argmax(axis=1)) for w in LINEAR_WEIGHTS}
        self.linear_weight = max(LINEAR_WEIGHTS, key=lambda w: scores[w])

    def logits(self, texts: list[str]) -> np.ndarray:
        lin, enc = self._member_log_probs(texts)
        return self.linear_weight * lin + (1 - self.linear_weight) * enc

    def describe(self) -> dict[str, Any]:
        return {
            "linear_weight": self.linear_weight,
            "members": {
                m.model.family: {**m.model.describe(), "temperature": m.temperature}
                for m in (self.linear, self.encoder)
            },
        }

    def tokenizer_spec(self) -> dict[str, Any]:
        return {"text": self.linear.model.tokenizer_spec(), **self.encoder.model.tokenizer_spec()}

    def extra_files(self) -> dict[str, Path]:
        return self.encoder.model.extra_files()

    def manifest_fields(self) -> dict[str, Any]:
        return {}

    def feature_summaries(self, texts: list[str]) -> list[dict[str, Any]]:
        return self.linear.model.feature_summaries(texts) + self.encoder.model.feature_summaries(texts)

    def add_logits(self, graph: GraphBuilder) -> str:
        def member(m: Member, weight: float) -> str:
            log_probs = graph.op(
                "LogSoftmax", [graph.tempered(m.model.add_logits(graph), m.temperature)], axis=-1
            )
            return graph.op("Mul", [log_probs, graph.const(np.array(weight, np.float32), "weight")])

        return graph.op(
            "Add", [member(self.linear, self.linear_weight), member(self.encoder, 1 - self.linear_weight)]
        )
