"""Static family: a token-embedding table distilled from all-MiniLM-L6-v2, for the knowledge
base's `embedder`: the same inputs and output as MiniLM's graph at a small fraction of its CPU
per query. No weights other than the installed MiniLM package, no labels:

1. model2vec's distillation: every vocabulary id `t` goes through the encoder as
   `[CLS] t [SEP]`; its vector is the mean of the last layer's three hidden states, L2-normalized
   (so it lives where MiniLM's sentence embeddings live), weighted by SIF on Zipf's law over
   vocabulary rank, `w = a / (a + p(rank))`, `p ∝ 1 / (rank + 2)`: frequent pieces (low ids in
   BERT's vocabulary) count for little. model2vec's PCA is left out: it takes the table out of
   MiniLM's space, which step 2 fits in (README, "Static embedder").
2. tokenlearn's refinement, as ridge regression: on a corpus of unlabelled texts, the table `E`
   minimizes `‖A E − Y‖² + λ‖E − s·E₀‖²`, where row `i` of `A` mean-pools text `i`'s pieces, `Y`
   holds MiniLM's embeddings of the texts and `E₀` is step 1's table (`s` matches its scale to
   `Y`'s). A fixed number of conjugate-gradient steps on the normal equations, all 384 columns at
   once; pieces the corpus lacks keep `s·E₀`.
3. the special tokens get zero rows, so a sentence vector is the sum of its word pieces' rows,
   except `[CLS]`, whose row is a tiny fixed vector: a text without any piece (empty) still gets
   a unit vector, since Elasticsearch refuses a zero vector for cosine similarity.

The served graph: Gather(table, input_ids) · attention_mask, summed over tokens, L2-normalized
(the sum's direction is the mean's, so no division by the count). Deterministic: fixed order
and iteration count, float64 algebra; the tests check that and the graph against
`reference_embed`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
import scipy.sparse as sparse

from training.models.encoder import HIDDEN, add_encoder
from training.onnx_graph import FLOAT, INT64, GraphBuilder

SIF_COEFFICIENT = 1e-4  # model2vec's default `a`
CLS_EPSILON = 1e-6  # the [CLS] row's norm: negligible next to any word piece's row
NORM_FLOOR = 1e-12


@dataclass(frozen=True)
class Specials:
    pad: int
    unk: int
    cls: int
    sep: int


def _token_graph(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    """input_ids, attention_mask [N, T] -> the mean over T of the last layer's hidden states."""
    graph = GraphBuilder("minilm-token-vectors")
    ids = graph.input("input_ids", INT64, ["N", "T"])
    mask = graph.input("attention_mask", INT64, ["N", "T"])
    states: list[str] = []
    add_encoder(graph, weights, ids, mask, states)
    pooled = graph.op("ReduceMean", [states[-1]], axes=[1], keepdims=0)
    graph.output(pooled, "token_vector", FLOAT, ["N", HIDDEN])
    return graph.build()


def token_vectors(
    weights: dict[str, np.ndarray],
    token_ids: np.ndarray,
    specials: Specials,
    batch_size: int = 1024,
    threads: int = 2,
) -> np.ndarray:
    """[len(token_ids), 384] float32: each id's encoder vector (step 1), in the given order."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(_token_graph(weights).SerializeToString(), options)
    out = np.zeros((len(token_ids), HIDDEN), np.float32)
    for start in range(0, len(token_ids), batch_size):
        batch = np.asarray(token_ids[start : start + batch_size], np.int64)
        input_ids = np.stack(
            [np.full_like(batch, specials.cls), batch, np.full_like(batch, specials.sep)], axis=1
        )
        (out[start : start + len(batch)],) = session.run(
            ["token_vector"], {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
        )
    return out


def sif_weights(vocab_size: int, coefficient: float = SIF_COEFFICIENT) -> np.ndarray:
    """Zipf's law on vocabulary rank (BERT's WordPiece ids run roughly from frequent to rare)."""
    inverse_rank = 1.0 / np.arange(2, vocab_size + 2, dtype=np.float64)
    probability = inverse_rank / inverse_rank.sum()
    return coefficient / (coefficient + probability)


RIDGE_LAMBDA = 0.01  # chosen on the knowledge-base queries among 0.001, 0.01, 0.1
CG_ITERATIONS = 150


def prior_table(vectors: np.ndarray, coefficient: float = SIF_COEFFICIENT) -> np.ndarray:
    """Step 1's table from the encoder vectors of every id (row = id), float64."""
    unit = vectors.astype(np.float64) / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit * sif_weights(len(vectors), coefficient)[:, None]


def pooling_matrix(
    token_lists: Sequence[Sequence[int]], vocab_size: int, specials: Specials
) -> sparse.csr_matrix:
    """[texts, vocab]: row i mean-pools text i's word pieces (special tokens left out)."""
    skip = {specials.pad, specials.cls, specials.sep}
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    for i, ids in enumerate(token_lists):
        pieces = [t for t in ids if t not in skip]
        if not pieces:
            continue
        unique, counts = np.unique(np.asarray(pieces, np.int64), return_counts=True)
        rows.extend([i] * len(unique))
        cols.extend(unique.tolist())
        values.extend((counts / len(pieces)).tolist())
    return sparse.csr_matrix((values, (rows, cols)), shape=(len(token_lists), vocab_size), dtype=np.float64)


def refine(
    prior: np.ndarray,
    pooling: sparse.csr_matrix,
    targets: np.ndarray,
    ridge: float = RIDGE_LAMBDA,
    iterations: int = CG_ITERATIONS,
) -> np.ndarray:
    """Step 2: argmin_E ‖A E − Y‖² + λ‖E − s·E₀‖², conjugate gradient, one column per dimension."""
    y = targets.astype(np.float64)
    scale = 1.0 / float(np.median(np.linalg.norm(pooling @ prior, axis=1)[pooling.getnnz(axis=1) > 0]))
    anchor = prior * scale
    seen = np.flatnonzero(pooling.getnnz(axis=0))  # other rows have zero gradient and stay at the anchor
    a = pooling[:, seen].tocsc()
    a_t = a.T.tocsr()

    def normal(p: np.ndarray) -> np.ndarray:
        return a_t @ (a @ p) + ridge * p

    x = anchor[seen].copy()
    r = a_t @ y + ridge * anchor[seen] - normal(x)
    p = r.copy()
    rs = (r * r).sum(axis=0)
    for _ in range(iterations):
        q = normal(p)
        alpha = rs / np.maximum((p * q).sum(axis=0), 1e-300)
        x += alpha * p
        r -= alpha * q
        rs_next = (r * r).sum(axis=0)
        p = r + (rs_next / np.maximum(rs, 1e-300)) * p
        rs = rs_next
    table = anchor.copy()
    table[seen] = x
    return table


def finish(table: np.ndarray, specials: Specials) -> np.ndarray:
    """Step 3: the served table, float32."""
    table = table.copy()
    for special in (specials.pad, specials.cls, specials.sep):
        table[special] = 0.0
    table[specials.cls, 0] = CLS_EPSILON
    return table.astype(np.float32)


def static_graph(table: np.ndarray) -> onnx.ModelProto:
    """input_ids, attention_mask int64 [N, T] -> `embedding` float32 [N, dims], L2-normalized."""
    graph = GraphBuilder("static-embed")
    ids = graph.input("input_ids", INT64, ["N", "T"])
    mask = graph.input("attention_mask", INT64, ["N", "T"])
    rows = graph.op("Gather", [graph.const(table, "token_table"), ids], axis=0)
    weights = graph.op("Unsqueeze", [graph.op("Cast", [mask], to=FLOAT), graph.const(np.array([2]))])
    summed = graph.op("ReduceSum", [graph.op("Mul", [rows, weights]), graph.const(np.array([1]))], keepdims=0)
    norm = graph.op(
        "Max",
        [graph.op("ReduceL2", [summed], axes=[1], keepdims=1), graph.const(np.array(NORM_FLOOR, np.float32))],
    )
    graph.output(graph.op("Div", [summed, norm]), "embedding", FLOAT, ["N", table.shape[1]])
    return graph.build()


def reference_embed(table: np.ndarray, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """The graph's computation in numpy (float64), for the parity test."""
    summed = (table.astype(np.float64)[input_ids] * attention_mask[..., None]).sum(axis=1)
    return summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), NORM_FLOOR)
