"""The static embedder (models/static.py): distillation steps, determinism, the served graph against
its numpy reference, and its export as a version of `embedder`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from safetensors.numpy import load_file

from training import embedder as embedder_module
from training.artifacts import load_version
from training.datasets import bitext
from training.embedder import EMBEDDER_MODEL, STATIC_FAMILY, export_embedder
from training.models import static
from training.models.encoder import HIDDEN, MAX_LENGTH, embedding_graph, pad_batch, weights_dir
from training.models.wordpiece import WordPieceTokenizer
from training.predictor import Predictor

TEXTS = [
    "Where is my order?",
    "I was charged twice for the same subscription, please refund the second payment",
    "Meine Rechnung ist falsch, bitte prüfen Sie das.",
    "how do i reset my password",
    "",
]


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(weights_dir() / "vocab.txt", MAX_LENGTH)


@pytest.fixture(scope="module")
def specials(tokenizer: WordPieceTokenizer) -> static.Specials:
    return static.Specials(tokenizer.pad, tokenizer.unk, tokenizer.cls, tokenizer.sep)


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return load_file(str(weights_dir() / "model.safetensors"))


def random_table(vocab: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(vocab, 16)).astype(np.float32)


def test_token_vectors_are_minilm_on_the_token_alone_and_deterministic(
    weights: dict[str, np.ndarray], specials: static.Specials, tokenizer: WordPieceTokenizer
) -> None:
    ids = np.array([1012, 2023, 5310, 9999, 2339, 29000, tokenizer.unk])
    first = static.token_vectors(weights, ids, specials, batch_size=3)
    again = static.token_vectors(weights, ids[::-1], specials, batch_size=4)[::-1]
    np.testing.assert_array_equal(first, static.token_vectors(weights, ids, specials, batch_size=3))
    np.testing.assert_allclose(first, again, atol=1e-6)  # batching does not change a row
    # Normalized, a token's vector is MiniLM's sentence embedding of "[CLS] t [SEP]".
    session = ort.InferenceSession(embedding_graph(weights).SerializeToString())
    input_ids = np.stack([np.full_like(ids, specials.cls), ids, np.full_like(ids, specials.sep)], axis=1)
    feed = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
    (expected,) = session.run(["embedding"], feed)
    unweighted = static.prior_table(first) / static.sif_weights(len(first))[:, None]
    np.testing.assert_allclose(unweighted, expected, atol=1e-5)


def test_sif_weights_fall_with_frequency() -> None:
    w = static.sif_weights(30522)
    assert np.all(np.diff(w) > 0) and 0 < w[0] < 0.01 and w[-1] > 0.95


def test_refinement_fits_the_targets_and_is_deterministic(specials: static.Specials) -> None:
    rng = np.random.default_rng(1)
    vocab, texts = 300, 2000
    truth = rng.normal(size=(vocab, 8))
    token_lists = [list(rng.integers(103, vocab, size=rng.integers(2, 12))) for _ in range(texts)]
    pooling = static.pooling_matrix(token_lists, vocab, specials)
    targets = pooling @ truth
    prior = truth + rng.normal(scale=1.0, size=truth.shape)  # a noisy start, as the distilled table is
    refined = static.refine(prior, pooling, targets, ridge=1e-4, iterations=100)
    np.testing.assert_array_equal(refined, static.refine(prior, pooling, targets, ridge=1e-4, iterations=100))
    fitted = np.linalg.norm(pooling @ refined - targets) / np.linalg.norm(targets)
    start = np.linalg.norm(pooling @ prior - targets) / np.linalg.norm(targets)
    assert fitted < 0.05 < start
    unseen = np.flatnonzero(pooling.getnnz(axis=0) == 0)
    assert set(unseen) >= {0, specials.cls, specials.sep}  # specials never pool
    scale = refined[unseen[0]] / prior[unseen[0]]
    np.testing.assert_allclose(refined[unseen], prior[unseen] * scale[0])  # unseen rows keep the prior


def test_pooling_matrix_rows_are_means_without_specials(specials: static.Specials) -> None:
    token_lists = [[specials.cls, 200, 200, 300, specials.sep], [specials.cls, specials.sep]]
    pooling = static.pooling_matrix(token_lists, 400, specials)
    assert pooling[0, 200] == pytest.approx(2 / 3) and pooling[0, 300] == pytest.approx(1 / 3)
    assert pooling[0, specials.cls] == 0 and pooling[1].nnz == 0


def test_graph_matches_the_numpy_reference_with_unit_norms(
    tokenizer: WordPieceTokenizer, specials: static.Specials
) -> None:
    table = static.finish(random_table(len(tokenizer.vocab)), specials)
    session = ort.InferenceSession(static.static_graph(table).SerializeToString())
    input_ids, mask = pad_batch([tokenizer.encode(t) for t in TEXTS], tokenizer.pad)
    (served,) = session.run(["embedding"], {"input_ids": input_ids, "attention_mask": mask})
    np.testing.assert_allclose(served, static.reference_embed(table, input_ids, mask), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-5)  # the empty text too
    alone = []
    for text in TEXTS:
        ids, row_mask = pad_batch([tokenizer.encode(text)], tokenizer.pad)
        alone.append(session.run(["embedding"], {"input_ids": ids, "attention_mask": row_mask})[0][0])
    np.testing.assert_allclose(np.stack(alone), served, atol=1e-6)  # padding does not change a row
    assert np.all(table[[specials.pad, specials.sep]] == 0)
    assert np.linalg.norm(table[specials.cls]) == pytest.approx(static.CLS_EPSILON)


def test_static_export_is_a_servable_embedder_reused_by_recipe(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tokenizer: WordPieceTokenizer,
    specials: static.Specials,
) -> None:
    """The export plumbing, with the minutes-long table computation replaced by a fixed table."""
    calls: list[bool] = []

    def table(corpus: dict[str, list[str]] | None, threads: int = 2) -> np.ndarray:
        calls.append(corpus is not None)
        assert corpus is not None and all(len(texts) > 1000 for texts in corpus.values())
        # The Bitext rows the retrieval test and the benchmark query are not fitted on.
        with bitext.SOURCE.resolve().open(newline="", encoding="utf-8") as handle:
            rows = [r["instruction"] for r in csv.DictReader(handle)]
        queried = [rows[3 + i * (len(rows) // 200)] for i in range(200)]
        assert not {embedder_module._without_placeholders(t) for t in queried} & set(corpus["bitext"])
        rows = np.random.default_rng(2).normal(size=(len(tokenizer.vocab), HIDDEN))
        return static.finish(rows.astype(np.float32), specials)

    monkeypatch.setattr(embedder_module, "static_table", table)
    exported = export_embedder(tmp_path)
    assert exported.created and calls == [True]
    manifest = load_version(exported.directory).manifest
    identity = (manifest["model"], manifest["task"], manifest["family"])
    assert identity == (EMBEDDER_MODEL, "embedding", STATIC_FAMILY)
    assert manifest["onnx"]["outputs"] == {"embedding": {"type": "float32", "shape": ["N", HIDDEN]}}
    corpus = manifest["parameters"]["refinement"]["corpus"]
    assert corpus.keys() == {"clinc150", "airline-sentiment", "bitext"}
    embeddings = Predictor(exported.directory).embeddings(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)

    again = export_embedder(tmp_path)
    assert (again.created, again.version, calls) == (False, exported.version, [True])
