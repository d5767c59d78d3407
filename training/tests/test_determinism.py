from __future__ import annotations

from pathlib import Path

from training.pipeline import FAMILIES, TrainedVersion, Trainer
from training.tasks import TARGETS
from training.tests.conftest import SLICE, install_embedder


def test_same_seed_gives_same_bytes_and_metrics(
    trained: dict[str, TrainedVersion], tmp_path: Path, embedder_version: Path
) -> None:
    install_embedder(tmp_path, embedder_version)
    again = {
        v.family: v
        for v in Trainer(tmp_path, seed=0, limit=SLICE).train(TARGETS["sentiment"], list(FAMILIES))
    }
    for family, first in trained.items():
        second = again[family]
        assert (first.directory / "model.onnx").read_bytes() == (
            second.directory / "model.onnx"
        ).read_bytes(), family
        assert first.manifest["metrics"] == second.manifest["metrics"]
        assert first.manifest["training_data_digest"] == second.manifest["training_data_digest"]
        assert first.version.split("-", 1)[1] == second.version.split("-", 1)[1]  # same family and digest
