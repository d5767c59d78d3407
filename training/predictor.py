"""Runs a model version directory the way the Node side does: onnxruntime only, inputs built
from the manifest (raw strings for the linear family, WordPiece ids for the encoder, the pinned
embedder's output for a head)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.artifacts import LoadedVersion, load_version
from training.models.embedding_head import PinnedEmbedder
from training.models.encoder import pad_batch
from training.models.wordpiece import WordPieceTokenizer


class Predictor:
    def __init__(self, directory: Path, batch_size: int = 32) -> None:
        self.version: LoadedVersion = load_version(directory)
        self.manifest = self.version.manifest
        self.labels: list[str] = list(self.manifest["labels"])
        self._batch_size = batch_size
        self._inputs = set(self.manifest["onnx"]["inputs"])
        tokenizer = self.manifest["tokenizer"]
        self._wordpiece = (
            WordPieceTokenizer(directory / tokenizer["vocab"], tokenizer["max_length"])
            if "input_ids" in self._inputs
            else None
        )
        # load_version has verified the pinned embedder (present, same sha256 and width).
        pinned = self.version.embedder
        self._embedder = PinnedEmbedder(pinned, memo=False) if pinned is not None else None

    def _feed(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Raw strings for a `text` input, WordPiece ids for `input_ids` (the ensemble takes both),
        the pinned embedder's vectors for `embedding`."""
        feed: dict[str, np.ndarray] = {}
        if "text" in self._inputs:
            feed["text"] = np.array(texts, dtype=object)
        if self._wordpiece is not None:
            feed["input_ids"], feed["attention_mask"] = pad_batch(
                [self._wordpiece.encode(t) for t in texts], self._wordpiece.pad
            )
        if "embedding" in self._inputs:
            assert self._embedder is not None, "load_version loads a head with its embedder"
            feed["embedding"] = self._embedder(texts)
        return feed

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self._run("probabilities", texts, len(self.labels))

    def embeddings(self, texts: list[str]) -> np.ndarray:
        """The `embedding` output (encoder, ensemble and embedder versions)."""
        return self._run("embedding", texts, self.manifest["onnx"]["outputs"]["embedding"]["shape"][-1])

    def in_scope_similarity(self, texts: list[str]) -> np.ndarray:
        """The `in_scope_similarity` output [N] (head versions)."""
        return self._run("in_scope_similarity", texts, None)

    def _run(self, output: str, texts: list[str], width: int | None) -> np.ndarray:
        out = [
            self.version.session.run([output], self._feed(texts[i : i + self._batch_size]))[0]
            for i in range(0, len(texts), self._batch_size)
        ]
        if out:
            return np.concatenate(out)
        return np.zeros((0,) if width is None else (0, width), np.float32)
