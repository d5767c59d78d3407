"""Linear family: TF-IDF over word 1-2-grams and character 2-5-grams, multinomial logistic
regression. The exported graph takes raw strings: normalization, tokenization, n-gram counting,
TF-IDF weighting and the classifier all run inside onnxruntime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from training import reference
from training.models.head import class_rows, fit_logistic_regression
from training.models.ngram_tokens import (
    CHAR_PATTERN,
    LOCALE,
    WORD_PATTERN,
    Tokenizer,
    add_tokenization,
)
from training.onnx_graph import FLOAT, STRING, GraphBuilder


@dataclass(frozen=True)
class LinearParams:
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 2
    max_word_features: int = 40_000
    max_char_features: int = 60_000
    c_grid: tuple[float, ...] = (3.0, 10.0, 30.0)
    class_weights: tuple[str | None, ...] = (None, "balanced")


def _ngrams(separator: str, low: int, high: int) -> Callable[[list[str]], list[str]]:
    """An analyzer turning a token list into its n-grams (tokens joined by `separator`)."""

    def analyze(tokens: list[str]) -> list[str]:
        return [
            separator.join(tokens[i : i + n])
            for n in range(low, high + 1)
            for i in range(len(tokens) - n + 1)
        ]

    return analyze


class LinearModel:
    family = "linear"
    inputs: dict[str, dict[str, Any]] = {"text": {"type": "string", "shape": ["N"]}}
    outputs: dict[str, dict[str, Any]] = {
        "active_features": {"type": "float32", "shape": ["N"]},
    }

    def __init__(self, params: LinearParams | None = None, seed: int = 0) -> None:
        params = params or LinearParams()
        self.params = params
        self.seed = seed
        self._tokenize = Tokenizer()
        self._words = TfidfVectorizer(
            analyzer=_ngrams(" ", *params.word_ngrams),
            sublinear_tf=True,
            min_df=params.min_df,
            max_features=params.max_word_features,
            dtype=np.float32,
        )
        self._chars = TfidfVectorizer(
            analyzer=_ngrams("", *params.char_ngrams),
            sublinear_tf=True,
            min_df=params.min_df,
            max_features=params.max_char_features,
            dtype=np.float32,
        )
        self.classifier: LogisticRegression | None = None

    def features(self, texts: list[str]) -> sp.csr_matrix:
        words, chars = self._tokenize(texts)
        return sp.hstack([self._words.transform(words), self._chars.transform(chars)], format="csr")

    def fit(self, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray) -> None:
        words, chars = self._tokenize(texts)
        x = sp.hstack([self._words.fit_transform(words), self._chars.fit_transform(chars)], format="csr")
        _, self.classifier = fit_logistic_regression(
            x,
            labels,
            self.features(val_texts),
            val_labels,
            self.params.c_grid,
            self.seed,
            self.params.class_weights,
        )

    def logits(self, texts: list[str]) -> np.ndarray:
        assert self.classifier is not None
        coef, intercept = class_rows(self.classifier)
        return np.asarray(self.features(texts) @ coef.T, dtype=np.float64) + intercept

    def describe(self) -> dict[str, Any]:
        assert self.classifier is not None
        return {
            **asdict(self.params),
            "C": float(self.classifier.C),
            "class_weight": self.classifier.class_weight,
            "word_vocabulary": len(self._words.vocabulary_),
            "char_vocabulary": len(self._chars.vocabulary_),
        }

    def tokenizer_spec(self) -> dict[str, Any]:
        return {
            "kind": "in-graph",
            "input": "raw text, one string per inquiry",
            "lowercase": f"StringNormalizer LOWER, locale {LOCALE}",
            "word_pattern": WORD_PATTERN,
            "char_pattern": CHAR_PATTERN,
        }

    def extra_files(self) -> dict[str, Path]:
        return {}

    def manifest_fields(self) -> dict[str, Any]:
        return {}

    def feature_summaries(self, texts: list[str]) -> list[dict[str, Any]]:
        active = np.diff(self.features(texts).indptr).astype(np.float64)
        return [reference.scalar_summary("active_features", active)]

    def add_logits(self, graph: GraphBuilder) -> str:
        assert self.classifier is not None
        text = graph.input("text", STRING, ["N"])
        streams = add_tokenization(graph, text)
        blocks = [
            _tfidf_block(graph, streams.words, self._words, " ", self.params.word_ngrams),
            _tfidf_block(graph, streams.chars, self._chars, "", self.params.char_ngrams),
        ]
        features = graph.op("Concat", blocks, "features", axis=1)
        active = graph.op(
            "Cast", [graph.op("Greater", [features, graph.const(np.array(0, np.float32))])], to=FLOAT
        )
        graph.output(
            graph.op("ReduceSum", [active, graph.const(np.array([1]))], keepdims=0),
            "active_features",
            FLOAT,
            ["N"],
        )
        return graph.linear_logits(features, *class_rows(self.classifier))


def _tfidf_block(
    graph: GraphBuilder, tokens: str, vectorizer: TfidfVectorizer, separator: str, ngrams: tuple[int, int]
) -> str:
    """Counts of the vocabulary's n-grams -> sublinear tf * idf -> L2 row normalization,
    exactly TfidfVectorizer(sublinear_tf=True, norm="l2")."""
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    low, high = ngrams
    split = (lambda g: g.split(" ")) if separator == " " else list
    by_length: dict[int, list[tuple[list[str], int]]] = {n: [] for n in range(low, high + 1)}
    for gram, column in sorted(vocabulary.items(), key=lambda kv: kv[1]):
        parts = split(gram)
        by_length[len(parts)].append((parts, column))
    # pool_strings holds the n-grams grouped by length; ngram_counts are the offsets where each
    # length from 1 to max starts and ngram_indexes the output column of each n-gram.
    pool: list[str] = []
    counts: list[int] = []
    indexes: list[int] = []
    for n in range(1, high + 1):
        counts.append(len(pool))
        for parts, column in by_length.get(n, []):
            pool.extend(parts)
            indexes.append(column)
    raw = graph.op(
        "TfIdfVectorizer",
        [tokens],
        "counts",
        mode="TF",
        min_gram_length=low,
        max_gram_length=high,
        max_skip_count=0,
        ngram_counts=counts,
        ngram_indexes=indexes,
        pool_strings=pool,
    )
    one = graph.const(np.array(1, np.float32), "one")
    present = graph.op("Cast", [graph.op("Greater", [raw, graph.const(np.array(0, np.float32))])], to=FLOAT)
    sublinear = graph.op("Add", [graph.op("Log", [graph.op("Max", [raw, one])]), present])
    weighted = graph.op("Mul", [sublinear, graph.const(vectorizer.idf_.astype(np.float32), "idf")])
    norm = graph.op("ReduceL2", [weighted], axes=[1], keepdims=1)
    safe = graph.op("Max", [norm, graph.const(np.array(1e-12, np.float32))])
    return graph.op("Div", [weighted, safe], "tfidf")
