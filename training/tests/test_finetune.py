"""Contrastive fine-tuning (training/models/finetune.py). Runs where the optional PyTorch and
sentence-transformers are installed (training/requirements-finetune.txt), not in CI."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from training.cli import main
from training.datasets.base import OOS_LABEL
from training.models.encoder import Encoder, weights_dir
from training.models.finetune import FineTuneParams, balanced_sample, fine_tune, pair_batches

TEXTS = {
    "track_order": [
        "where is my parcel",
        "my package has not arrived yet",
        "when will my order be delivered",
        "tracking shows nothing for my shipment",
        "has my order shipped",
        "the delivery is late, where is it",
    ],
    "get_refund": [
        "I want my money back",
        "please refund the broken kettle",
        "how long does a refund take",
        "refund my last payment please",
        "can I get a refund for this order",
        "I returned it, where is my refund",
    ],
    "change_password": [
        "I forgot my password",
        "how do I reset my password",
        "the password reset email never came",
        "change the password of my account",
        "I cannot log in, password wrong",
        "need a new password",
    ],
}


def _rows() -> tuple[list[str], list[str]]:
    rows = [(t, label) for label, texts in TEXTS.items() for t in texts]
    rows.append(("what is the weather tomorrow", OOS_LABEL))
    return [t for t, _ in rows], [label for _, label in rows]


def test_sample_is_balanced_without_out_of_scope() -> None:
    texts, labels = _rows()
    sample = balanced_sample(texts, labels, 7, seed=0)
    counts = {label: sum(1 for _, l in sample if l == label) for label in TEXTS}
    assert len(sample) == 7 and sorted(counts.values()) == [2, 2, 3]
    assert all(label != OOS_LABEL for _, label in sample)


def test_batches_pair_distinct_texts_of_one_label_and_never_repeat_a_label() -> None:
    texts, labels = _rows()
    sample = balanced_sample(texts, labels, 100, seed=0)
    batches = pair_batches(sample, 2, random.Random(0))
    label_of = dict(sample)
    assert sum(len(b) for b in batches) == len(sample)
    for batch in batches:
        assert len({label_of[a] for a, _ in batch}) == len(batch) <= 2
        assert all(a != p and label_of[a] == label_of[p] for a, p in batch)


def test_fine_tuned_weights_keep_the_layout_and_the_onnx_graph_serves_them(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer

    texts, labels = _rows()
    params = FineTuneParams(rows=18, epochs=2, batch_size=3, learning_rate=1e-4)
    tuned = fine_tune(texts, labels, params, seed=0, cache_root=tmp_path)
    base = load_file(str(weights_dir() / "model.safetensors"))
    assert {k: (v.shape, v.dtype) for k, v in tuned.weights.items()} == {k: (v.shape, v.dtype) for k, v in base.items()}
    changed = [k for k in base if not np.array_equal(base[k], tuned.weights[k])]
    assert "encoder.layer.5.output.dense.weight" in changed
    assert tuned.description["steps"] == 12 and tuned.description["sampled_rows"] == 18

    # The numpy-built ONNX graph with the new weights embeds as the fine-tuned PyTorch model does.
    cached = next((tmp_path / "finetuned-minilm").iterdir())
    reference = SentenceTransformer(str(weights_dir()), device="cpu", local_files_only=True)
    reference[0].auto_model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in load_file(str(cached / "model.safetensors")).items()},
        strict=False,
    )
    probe = ["my order never came", "reset my password please", "refund me"]
    onnx_embeddings = Encoder(weights=tuned.weights)(probe)
    torch_embeddings = reference.encode(probe, convert_to_numpy=True)
    assert np.abs(onnx_embeddings - torch_embeddings).max() < 1e-4
    assert np.abs(onnx_embeddings - Encoder()(probe)).max() > 1e-3

    # Same recipe: the cached weights, not a second training.
    again = fine_tune(texts, labels, params, seed=0, cache_root=tmp_path)
    assert again.sha256 == tuned.sha256 and again.description == tuned.description


@pytest.mark.parametrize("family", ["linear", "head", "all"])
def test_fine_tune_is_refused_for_a_family_without_the_encoder(family: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--model", "intent", "--family", family, "--fine-tune", "--no-register"])
    assert exit_info.value.code == 2
    assert "--fine-tune goes with --family encoder or ensemble" in capsys.readouterr().err


def test_fine_tune_is_not_an_option_of_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--defaults", "--fine-tune"])
    assert "--defaults takes no other option than --seed" in capsys.readouterr().err
