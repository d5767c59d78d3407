"""The linear family's sparse graph (per row: only the active n-grams' idf and coefficient rows,
summed by ScatterND) against the sklearn pipeline it exports, on the inputs where a sparse
formulation could go wrong: nothing active, a batch with nothing active, rows of very different
sizes in one batch, long texts, and vocabulary widths with and without the padding n-gram."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from scipy.special import softmax

from training.calibration import calibrated
from training.datasets import airline
from training.models.head import class_rows
from training.models.linear import BLOCK_COLUMNS, NEVER_TOKEN, LinearModel, LinearParams
from training.pipeline import export

TEMPERATURE = 1.4
UNKNOWN = "ᚠᚢᚦ ᚨᚱᚲ ᚷᚹ"  # runes: no word or character n-gram of airline tweets
EDGE = [
    "",
    UNKNOWN,
    "中文客服请帮我查一下航班",
    "😡😡😡 🙏",
    NEVER_TOKEN * 3 + " " + NEVER_TOKEN,  # the padding n-gram's token, typed: still counts nothing
    "@united my flight was delayed 3 hours and nobody told me why!!! " * 80,  # ~5,000 characters
    "x" * 5000,
    "thanks",
    "Meine Rechnung ist falsch, bitte prüfen Sie das.",
]

# Default caps (widths almost never a multiple of 64, so a padding column), and caps that the
# 300 rows fill exactly: 64 and 128 columns, no padding.
PARAMS = {
    "default": LinearParams(),
    "multiple-of-64": LinearParams(max_word_features=BLOCK_COLUMNS, max_char_features=2 * BLOCK_COLUMNS),
}


@pytest.fixture(scope="module", params=list(PARAMS))
def linear(request: pytest.FixtureRequest) -> tuple[LinearModel, ort.InferenceSession]:
    split = airline.load(seed=0, limit=300)
    labels = {label: i for i, label in enumerate(split.labels)}
    model = LinearModel(PARAMS[request.param])
    model.fit(
        [r.text for r in split.train],
        np.array([labels[r.label] for r in split.train]),
        [r.text for r in split.validation],
        np.array([labels[r.label] for r in split.validation]),
    )
    widths = (len(model._words.vocabulary_), len(model._chars.vocabulary_))
    if request.param == "multiple-of-64":
        assert widths == (64, 128)
    else:
        assert all(w % BLOCK_COLUMNS for w in widths), widths  # both blocks get the padding n-gram
    session = ort.InferenceSession(export(model, TEMPERATURE, 3).SerializeToString())
    return model, session


def run(session: ort.InferenceSession, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    feed = {"text": np.array(texts, dtype=object)}
    probabilities, active = session.run(["probabilities", "active_features"], feed)
    return probabilities, active


def expected(model: LinearModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    active = np.diff(model.features(texts).indptr).astype(np.float32)
    return calibrated(model.logits(texts), TEMPERATURE), active


def intercept_only(model: LinearModel) -> np.ndarray:
    assert model.classifier is not None
    return softmax(class_rows(model.classifier)[1] / TEMPERATURE)


def test_each_edge_case_alone(linear: tuple[LinearModel, ort.InferenceSession]) -> None:
    model, session = linear
    for text in EDGE:
        probabilities, active = run(session, [text])
        want_p, want_active = expected(model, [text])
        np.testing.assert_allclose(probabilities, want_p, atol=1e-5, rtol=0, err_msg=repr(text[:40]))
        np.testing.assert_array_equal(active, want_active, err_msg=repr(text[:40]))


def test_nothing_known_gives_the_intercepts(linear: tuple[LinearModel, ort.InferenceSession]) -> None:
    model, session = linear
    texts = ["", UNKNOWN, NEVER_TOKEN]
    assert model.features(texts).nnz == 0
    probabilities, active = run(session, texts)
    np.testing.assert_array_equal(active, [0, 0, 0])
    np.testing.assert_allclose(probabilities, np.tile(intercept_only(model), (3, 1)), atol=1e-6, rtol=0)
    # A batch where no row has an active n-gram: NonZero finds nothing anywhere.
    probabilities, active = run(session, ["", "", ""])
    np.testing.assert_array_equal(active, [0, 0, 0])
    np.testing.assert_allclose(probabilities, np.tile(intercept_only(model), (3, 1)), atol=1e-6, rtol=0)


def test_a_batch_gives_every_row_its_own_result(linear: tuple[LinearModel, ort.InferenceSession]) -> None:
    model, session = linear
    split = airline.load(seed=0, limit=300)
    texts = [EDGE[0], *[r.text for r in split.test[:20]], *EDGE, EDGE[0], UNKNOWN, split.test[0].text]
    probabilities, active = run(session, texts)
    want_p, want_active = expected(model, texts)
    np.testing.assert_allclose(probabilities, want_p, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(active, want_active)
    assert want_active.min() == 0 and want_active.max() > 40  # empty and long rows side by side
    alone = np.vstack([run(session, [t])[0] for t in texts])
    np.testing.assert_array_equal(probabilities, alone)


def test_threads_do_not_change_a_batch(linear: tuple[LinearModel, ort.InferenceSession]) -> None:
    """Rows are summed by a MatMul with their indicator, not ScatterND with reduction add, which
    onnxruntime splits over intra-op threads without atomics. (That race showed on the full
    CLINC150 model, 150 classes, 2 threads: up to 0.1 off; it does not on this small model, so
    this only guards that threads change nothing.)"""
    model, session = linear
    split = airline.load(seed=0, limit=300)
    texts = [r.text for r in split.test] * 2
    want, _ = expected(model, texts)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 4
    threaded = ort.InferenceSession(export(model, TEMPERATURE, 3).SerializeToString(), options)
    for _ in range(3):
        np.testing.assert_allclose(run(threaded, texts)[0], want, atol=1e-5, rtol=0)
