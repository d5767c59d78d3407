from __future__ import annotations

import json
import random

import numpy as np
import pytest
from tokenizers import Tokenizer

from training.datasets import airline, tickets
from training.models.encoder import MAX_LENGTH, Encoder, weights_dir
from training.models.wordpiece import WordPieceTokenizer
from training.tests import tokenization_fixture
from training.tests.tokenization_fixture import FIXTURE

REFERENCE = FIXTURE.parent / "minilm_reference.json"


@pytest.fixture(scope="module")
def library() -> Tokenizer:
    """The `tokenizers` library with the model's own tokenizer.json: the reference implementation."""
    tokenizer = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_LENGTH)
    return tokenizer


def test_fixture_has_1000_cases_and_is_current() -> None:
    committed = FIXTURE.read_text(encoding="utf-8")
    assert len(json.loads(committed)["cases"]) == 1000
    assert committed == tokenization_fixture.dumps(tokenization_fixture.build()), "regenerate the fixture"


def test_fixture_ids_match_the_reference_library(library: Tokenizer) -> None:
    cases = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
    expected = [e.ids for e in library.encode_batch([c["text"] for c in cases])]
    assert [c["input_ids"] for c in cases] == expected


def test_wordpiece_matches_the_reference_library_on_real_inquiries(library: Tokenizer) -> None:
    texts = [r.text for split in (airline.load(0), tickets.load("queue", 0)) for r in split.train]
    sample = random.Random(0).sample(texts, 1500)
    ours = WordPieceTokenizer(weights_dir() / "vocab.txt", MAX_LENGTH)
    assert [ours.encode(t) for t in sample] == [e.ids for e in library.encode_batch(sample)]


def test_onnx_encoder_reproduces_sentence_transformers() -> None:
    """Embeddings computed once with sentence-transformers/PyTorch (see the fixture's description)."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    encoder = Encoder()
    assert [encoder.tokenizer.encode(t) for t in reference["texts"]] == reference["input_ids"]
    np.testing.assert_allclose(encoder(reference["texts"]), np.array(reference["embeddings"]), atol=1e-5)
