"""Linear family: TF-IDF over word 1-2-grams and character 2-5-grams, multinomial logistic
regression. The exported graph takes raw strings: normalization, tokenization, n-gram counting,
TF-IDF weighting and the classifier all run inside onnxruntime, the weighting and the classifier
over each row's active n-grams only (`_sparse_block`)."""

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
from training.onnx_graph import DOUBLE, FLOAT, STRING, GraphBuilder


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
        coef, intercept = class_rows(self.classifier)
        classes = coef.shape[0]
        split = len(self._words.vocabulary_)  # features() stacks the word columns first
        # The input's row indexes as a column [N, 1]: each active entry is summed into its own row.
        zero, one = graph.const(np.array(0, np.int64)), graph.const(np.array(1, np.int64))
        n = graph.op("Gather", [graph.op("Shape", [text]), zero], axis=0)
        rows = graph.op("Unsqueeze", [graph.op("Range", [zero, n, one]), graph.const(np.array([1]))])
        params = self.params
        blocks = [
            _sparse_block(graph, streams.words, self._words, " ", params.word_ngrams, coef[:, :split], rows),
            _sparse_block(graph, streams.chars, self._chars, "", params.char_ngrams, coef[:, split:], rows),
        ]
        active = graph.op("Add", [b.active for b in blocks])
        graph.output(
            graph.op("Cast", [graph.op("Squeeze", [active, graph.const(np.array([1]))])], to=FLOAT),
            "active_features",
            FLOAT,
            ["N"],
        )
        scores = graph.op("Add", [b.scores for b in blocks])
        logits = graph.op("Add", [scores, graph.const(intercept.astype(np.float64), "intercept")])
        return graph.op("Cast", [logits], "logits", to=FLOAT)


# Width of the first NonZero's blocks: 64 columns, so a row with k active n-grams costs one pass
# of ReduceMax over its V counts, then NonZero over V/64 block maxima and over k' * 64 columns.
BLOCK_COLUMNS = 64
# The padding n-gram that makes a block's width a multiple of BLOCK_COLUMNS: one token of two
# U+0001 code points, which neither tokenizer produces (word tokens are [\p{L}\p{N}_]+, character
# tokens one code point), so its column never counts anything; its idf and coefficients are 0.
NEVER_TOKEN = "\x01\x01"


@dataclass(frozen=True)
class SparseBlock:
    scores: str  # double [N, C]: coefficient rows . TF-IDF row, L2-normalized
    active: str  # double [N, 1]: n-grams of the vocabulary present in the row


def _sparse_block(
    graph: GraphBuilder,
    tokens: str,
    vectorizer: TfidfVectorizer,
    separator: str,
    ngrams: tuple[int, int],
    coef: np.ndarray,
    rows: str,
    sublinear: bool = True,
) -> SparseBlock:
    """This vocabulary's part of the logits, exactly coef @ TfidfVectorizer(sublinear_tf=True,
    norm="l2") row, computed over the row's active n-grams only (`sublinear=False`: raw counts,
    sklearn's default, w = count * idf, as the toxicity model's vectorizer has).

    TfIdfVectorizer counts the n-grams into a dense [N, V] row (the one pass over V that cannot be
    avoided); NonZero over the maxima of 64-column blocks, then inside the non-empty blocks, finds
    the k active entries (row, column, count); per entry w = (1 + log count) * idf[column], and
    a MatMul with the [N, k] indicator of the entries' rows (so a batch's rows stay apart) sums
    [w * coef[:, column], w^2, 1] per row, in float64. The scores are then divided by
    max(sqrt(sum w^2), 1e-12) like sklearn's normalize. Nothing of size V but the counts and one
    ReduceMax over them runs: the dense elementwise TF-IDF and a [1, V] x [V, C] Gemm took ~80 %
    of the former graph's time."""
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    low, high = ngrams
    width = len(vocabulary)
    padded = -(-width // BLOCK_COLUMNS) * BLOCK_COLUMNS
    blocks = padded // BLOCK_COLUMNS
    split = (lambda g: g.split(" ")) if separator == " " else list
    by_length: dict[int, list[tuple[list[str], int]]] = {n: [] for n in range(low, high + 1)}
    for gram, column in sorted(vocabulary.items(), key=lambda kv: kv[1]):
        parts = split(gram)
        by_length[len(parts)].append((parts, column))
    if padded > width:
        by_length[low].append(([NEVER_TOKEN] * low, padded - 1))
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
    )  # [N, padded]
    idf = np.zeros(padded, np.float32)
    idf[:width] = vectorizer.idf_
    classes = coef.shape[0]
    table = np.zeros((padded, classes), np.float32)  # coefficient row of each column
    table[:width] = coef.T

    def scalar(value: int) -> str:
        return graph.const(np.array(value, np.int64))

    by_block = graph.op("Reshape", [raw, graph.const(np.array([-1, BLOCK_COLUMNS]))])  # [N * blocks, 64]
    maxima = graph.op("ReduceMax", [by_block], axes=[1], keepdims=0)
    nonempty = graph.op("Reshape", [graph.op("NonZero", [maxima]), graph.const(np.array([-1]))])  # [k']
    picked = graph.op("Gather", [by_block, nonempty], axis=0)  # [k', 64]
    entries = graph.op("NonZero", [picked])  # [2, k]: picked block, column inside it
    count = graph.op("GatherND", [picked, graph.op("Transpose", [entries], perm=[1, 0])])  # [k]
    block = graph.op("Gather", [nonempty, graph.op("Gather", [entries, scalar(0)], axis=0)], axis=0)
    row = graph.op("Div", [block, scalar(blocks)])  # int64: floor for these non-negative values
    column = graph.op(
        "Add",
        [
            graph.op("Mul", [graph.op("Mod", [block, scalar(blocks)]), scalar(BLOCK_COLUMNS)]),
            graph.op("Gather", [entries, scalar(1)], axis=0),
        ],
    )
    if sublinear:
        one = graph.const(np.array(1, np.float32), "one")
        term = graph.op("Add", [graph.op("Log", [count]), one])
    else:
        term = count
    weight = graph.op("Mul", [term, graph.op("Gather", [graph.const(idf, "idf"), column], axis=0)])
    weight = graph.op("Unsqueeze", [weight, graph.const(np.array([1]))])  # [k, 1]
    rows_of_coef = graph.op("Gather", [graph.const(table, "coef"), column], axis=0)
    # The sums in float64 (k x (C + 2) values, no measurable cost): float32 sums of unnormalized
    # terms were further from sklearn than the dense Gemm (CLINC150 logits 1.2e-5 against 9.6e-6).
    weight = graph.op("Cast", [weight], to=DOUBLE)
    rows_of_coef = graph.op("Cast", [rows_of_coef], to=DOUBLE)
    updates = graph.op(
        "Concat",
        [
            graph.op("Mul", [rows_of_coef, weight]),
            graph.op("Mul", [weight, weight]),
            graph.op("Sign", [weight]),  # 1: idf >= 1, so an active n-gram's weight is > 0
        ],
        axis=1,
    )  # [k, C + 2]
    # Per-row sums as a product with the [N, k] indicator of each entry's row. Not ScatterND with
    # reduction add: onnxruntime runs its updates on several intra-op threads without atomics, so
    # entries of one row race (probabilities off by up to 0.1 with 2 threads, 150 classes).
    member = graph.op("Cast", [graph.op("Equal", [rows, row])], to=DOUBLE)  # [N, k]
    sums = graph.op("MatMul", [member, updates])  # [N, C + 2]

    def columns(start: int, stop: int) -> str:
        bounds = [graph.const(np.array([start])), graph.const(np.array([stop])), graph.const(np.array([1]))]
        return graph.op("Slice", [sums, *bounds])

    scores, squared, active = (columns(c, c + w) for c, w in ((0, classes), (classes, 1), (classes + 1, 1)))
    norm = graph.op("Max", [graph.op("Sqrt", [squared]), graph.const(np.array(1e-12, np.float64))])
    return SparseBlock(graph.op("Div", [scores, norm], "scores"), active)
