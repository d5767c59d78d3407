"""Text normalization and tokenization for the linear family, defined by ONNX ops.

The exported graph lowercases with StringNormalizer and splits with the Tokenizer op (RE2
regular expressions). Python's `re` and `str.lower` differ from those in corner cases (Unicode
word classes, one-to-many case mappings), so training runs the very same ONNX ops through
onnxruntime to get its tokens: Python and Node then tokenize identically by construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from training.onnx_graph import CONTRIB_DOMAIN, STRING, GraphBuilder

# C.UTF-8 is built into glibc (Debian 12, Node's official images); en_US.UTF-8, the op's
# default, is often not installed and then onnxruntime refuses to load the model.
LOCALE = "C.UTF-8"
WORD_PATTERN = r"[\p{L}\p{N}_]+"
CHAR_PATTERN = r"(?s)[^\x00]"  # every code point, newlines included; NUL is the padding value
PAD = "\x00"


@dataclass(frozen=True)
class TokenStreams:
    words: str
    chars: str


def add_tokenization(graph: GraphBuilder, text: str) -> TokenStreams:
    """text: string [N] -> lowercased word and character token matrices [N, T] padded with PAD."""
    lowered = graph.op("StringNormalizer", [text], "lowered", case_change_action="LOWER", locale=LOCALE)

    def tokenize(pattern: str, hint: str) -> str:
        return graph.op(
            "Tokenizer",
            [lowered],
            hint,
            domain=CONTRIB_DOMAIN,
            tokenexp=pattern,
            mark=0,
            mincharnum=1,
            pad_value=PAD,
        )

    return TokenStreams(tokenize(WORD_PATTERN, "words"), tokenize(CHAR_PATTERN, "chars"))


class Tokenizer:
    """Runs the tokenization subgraph in onnxruntime and returns Python token lists."""

    def __init__(self, batch_size: int = 256) -> None:
        graph = GraphBuilder("tokenize")
        text = graph.input("text", STRING, ["N"])
        streams = add_tokenization(graph, text)
        graph.output(streams.words, "words", STRING, ["N", "W"])
        graph.output(streams.chars, "chars", STRING, ["N", "C"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(graph.build().SerializeToString(), options)
        self._batch_size = batch_size

    def __call__(self, texts: list[str]) -> tuple[list[list[str]], list[list[str]]]:
        words: list[list[str]] = []
        chars: list[list[str]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = np.array(texts[start : start + self._batch_size], dtype=object)
            w, c = self._session.run(None, {"text": batch})
            words.extend([t for t in row if t != PAD] for row in w.tolist())
            chars.extend([t for t in row if t != PAD] for row in c.tolist())
        return words, chars
