"""What the training pipeline needs from a model family."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from training.onnx_graph import GraphBuilder


class Model(Protocol):
    family: str
    inputs: dict[str, dict[str, Any]]  # ONNX inputs, as the manifest lists them
    outputs: dict[str, dict[str, Any]]  # ONNX outputs besides `probabilities`

    def fit(
        self, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray
    ) -> None: ...

    def logits(self, texts: list[str]) -> np.ndarray:
        """Uncalibrated scores; probabilities are softmax(logits / temperature)."""
        ...

    def describe(self) -> dict[str, Any]: ...

    def tokenizer_spec(self) -> dict[str, Any]: ...

    def manifest_fields(self) -> dict[str, Any]:
        """Top-level manifest fields of the family (a head's `embedder` pin), usually none."""
        ...

    def extra_files(self) -> dict[str, Path]:
        """Files the version directory needs besides model.onnx (name -> source path)."""
        ...

    def feature_summaries(self, texts: list[str]) -> list[dict[str, Any]]:
        """Reference statistics of the model's features, for drift detection."""
        ...

    def add_logits(self, graph: GraphBuilder) -> str:
        """Adds the model's inputs and extra outputs to the graph; returns the logits tensor."""
        ...
