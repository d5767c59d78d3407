"""The multilingual encoder (training/models/multilingual.py): the weights file read as the
package's engine reads it, the Unigram tokenizer against the `tokenizers` library on the model's
own tokenizer.json, the ONNX graph against a numpy forward pass, and the Node fixture."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from training.datasets import realistic
from training.models import multilingual
from training.models.encoder import pad_batch
from training.tests import unigram_fixture


@pytest.fixture(scope="module")
def model() -> multilingual.Q4Model:
    return multilingual.read_q4(multilingual.weights_path())


@pytest.fixture(scope="module")
def vocab(model: multilingual.Q4Model) -> dict:
    return multilingual.build_vocab(model, multilingual.reference_tokenizer_json())


@pytest.fixture(scope="module")
def reference() -> Tokenizer:
    return Tokenizer.from_file(str(multilingual.reference_tokenizer_json()))


def test_weights_file_has_the_architecture_of_multilingual_e5_small(model: multilingual.Q4Model) -> None:
    assert (model.hidden, model.layers, model.heads, model.ffn) == (384, 12, 12, 1536)
    assert len(model.pieces) == 250002 and model.word_scales.shape == (model.vocab_size, 12)
    assert model.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert model.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and model.pieces[-1] == "<mask>"


def test_q4_blocks_dequantize_as_the_engine_does() -> None:
    scales = np.array([[0.5]], np.float16)
    nibbles = np.array([[[0x8F] + [0x08] * 15]], np.uint8)  # weight 0: 15 - 8, weight 16: 8 - 8
    row = multilingual.q4_to_float(scales, nibbles)[0]
    assert row[0] == 3.5 and row[16] == 0.0 and row[1] == 0.0 and row[17] == -4.0


def test_unigram_matches_the_tokenizers_library(vocab: dict, reference: Tokenizer) -> None:
    tokenizer = multilingual.UnigramTokenizer(vocab, max_length=10**6)  # no truncation: whole texts compared
    rows = unigram_fixture.texts() + [r.text for r in realistic.load()]
    mismatches = [t for t in rows if tokenizer.encode(t) != reference.encode(multilingual.PREFIX + t).ids]
    assert mismatches == []


def test_normalization_is_per_grapheme_as_precompiled(vocab: dict, reference: Tokenizer) -> None:
    tokenizer = multilingual.UnigramTokenizer(vocab)
    for text in unigram_fixture.GRAPHEME_CASES:
        expected = reference.normalizer.normalize_str(text).replace(" ", multilingual.META)  # type: ignore[union-attr]
        assert tokenizer.normalize(text).lstrip(multilingual.META) == expected.lstrip(multilingual.META), text
    assert tokenizer.normalize("\uff45\u0301") == multilingual.META + "e"  # the mark goes with the fold


def test_truncation_keeps_the_first_pieces(vocab: dict) -> None:
    tokenizer = multilingual.UnigramTokenizer(vocab)
    ids = tokenizer.encode("Wo ist meine Bestellung? " * 100)
    assert len(ids) == multilingual.MAX_LENGTH and ids[0] == 0 and ids[-1] == 2
    assert ids[:-1] == [0, *tokenizer.pieces(multilingual.PREFIX + "Wo ist meine Bestellung? " * 100)][:127]


def test_node_fixture_is_current(vocab: dict) -> None:
    expected = unigram_fixture.build(
        multilingual.UnigramTokenizer(vocab), hashlib.sha256(multilingual.vocab_bytes(vocab)).hexdigest()
    )
    stored = json.loads(unigram_fixture.FIXTURE.read_text(encoding="utf-8"))
    assert stored == expected, "run python -m training.tests.unigram_fixture"


def test_graph_matches_a_numpy_forward_pass_and_ignores_padding(model: multilingual.Q4Model, vocab: dict) -> None:
    tokenizer = multilingual.UnigramTokenizer(vocab)
    texts = ["Wo ist meine Bestellung?", "Je voudrais un remboursement pour la commande 4521", "ok"]
    ids = [tokenizer.encode(t) for t in texts]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(multilingual.embedding_graph(model).SerializeToString(), options)
    input_ids, mask = pad_batch(ids, tokenizer.pad)
    batch = session.run(["embedding"], {"input_ids": input_ids, "attention_mask": mask})[0]
    expected = np.stack([multilingual.reference_embed(model, row) for row in ids])
    assert np.abs(batch - expected).max() < 2e-5
    alone = session.run(["embedding"], dict(zip(("input_ids", "attention_mask"), pad_batch(ids[2:], 1))))[0]
    assert np.abs(alone[0] - batch[2]).max() < 2e-6
    assert np.allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-5)
    # Cross-lingual: the same request in German is nearer to it in English than another request.
    en, de, other = (session.run(["embedding"], dict(zip(("input_ids", "attention_mask"), pad_batch([tokenizer.encode(t)], 1))))[0][0]
                     for t in ("where is my order", "wo ist meine Bestellung", "I want to reset my password"))
    assert en @ de > en @ other
