"""The exported graphs must give the Python models' probabilities (within 1e-5) on any text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from training.calibration import calibrated
from training.datasets import airline
from training.models.encoder import Encoder, EncoderModel, EncoderParams, pad_batch
from training.models.embedding_head import HeadModel, PinnedEmbedder
from training.models.ensemble import EnsembleModel, Member
from training.models.linear import LinearModel
from training.models.protocol import Model
from training.pipeline import export

SAMPLES = [
    "",
    "ok",
    "@united where is my bag?? 3 hours waiting 😡😡",
    "Thanks!!! Great crew :) #happy",
    "Meine Rechnung ist falsch, bitte prüfen Sie das. Größe: XL",
    "¿Dónde está mi reembolso?",
    "ÉTÉ İstanbul ǅ ΣΊΣΥΦΟΣ 中文 naïve",
    "line one\nline two\ttabbed",
    "x" * 300,
    "my flight was cancelled and rebooked " * 40,
]


@pytest.fixture(scope="module")
def pinned(embedder_version: Path) -> PinnedEmbedder:
    return PinnedEmbedder.at(embedder_version)


@pytest.fixture(scope="module")
def fitted(pinned: PinnedEmbedder) -> dict[str, tuple[Model, float]]:
    split = airline.load(seed=0, limit=300)
    labels = {label: i for i, label in enumerate(split.labels)}
    texts, y = [r.text for r in split.train], np.array([labels[r.label] for r in split.train])
    val, val_y = [r.text for r in split.validation], np.array([labels[r.label] for r in split.validation])
    encoder = Encoder()
    linear = LinearModel()
    sentence = EncoderModel(encoder, EncoderParams(layers_c_grid=()))
    layers = EncoderModel(encoder, EncoderParams(sentence_c_grid=()))
    head = HeadModel(pinned)
    for model in (linear, sentence, layers, head):
        model.fit(texts, y, val, val_y)
    assert (sentence.features, layers.features) == ("sentence", "layers")
    ensemble = EnsembleModel(Member(linear, 0.8), Member(layers, 1.3))
    ensemble.fit(texts, y, val, val_y)
    return {
        "linear": (linear, 1.7),
        "encoder-sentence": (sentence, 0.6),
        "encoder-layers": (layers, 0.9),
        "ensemble": (ensemble, 1.1),
        "head": (head, 0.7),
    }


@pytest.mark.parametrize("variant", ["linear", "encoder-sentence", "encoder-layers", "ensemble", "head"])
def test_onnx_equals_python(
    fitted: dict[str, tuple[Model, float]], pinned: PinnedEmbedder, variant: str
) -> None:
    model, temperature = fitted[variant]
    session = ort.InferenceSession(export(model, temperature, 3).SerializeToString())
    feed: dict[str, np.ndarray] = {}
    if "text" in model.inputs:
        feed["text"] = np.array(SAMPLES, dtype=object)
    if "input_ids" in model.inputs:
        tokenizer = Encoder().tokenizer
        feed["input_ids"], feed["attention_mask"] = pad_batch(
            [tokenizer.encode(t) for t in SAMPLES], tokenizer.pad
        )
    if "embedding" in model.inputs:
        # As served: the embedder's graph computes the head's input, one batch of all samples.
        feed["embedding"] = PinnedEmbedder(pinned.version, memo=False)(SAMPLES)
    (onnx_probabilities,) = session.run(["probabilities"], feed)
    np.testing.assert_allclose(
        onnx_probabilities, calibrated(model.logits(SAMPLES), temperature), atol=1e-5, rtol=0
    )
