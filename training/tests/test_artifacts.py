"""A model version that does not match its manifest is refused with a clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from training.artifacts import ArtifactError, load_version
from training.datasets.base import sha256_file
from training.pipeline import TrainedVersion


@pytest.fixture
def copy(trained: dict[str, TrainedVersion], tmp_path: Path) -> Path:
    target = tmp_path / "version"
    shutil.copytree(trained["linear"].directory, target)
    return target


def _edit_manifest(directory: Path, edit) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((directory / "manifest.json").read_text())
    edit(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_intact_version_loads(copy: Path) -> None:
    manifest = load_version(copy).manifest
    assert manifest["family"] == "linear"
    assert manifest["onnx"]["outputs"]["probabilities"]["shape"] == ["N", len(manifest["labels"])]


def test_flipped_byte_is_refused(copy: Path) -> None:
    data = bytearray((copy / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        load_version(copy)


def test_unloadable_model_is_refused_even_with_matching_checksum(copy: Path) -> None:
    (copy / "model.onnx").write_bytes(b"not an onnx model")
    _edit_manifest(copy, lambda m: m["files"].update({"model.onnx": sha256_file(copy / "model.onnx")}))
    with pytest.raises(ArtifactError, match="onnxruntime cannot load it"):
        load_version(copy)


def test_label_count_mismatch_is_refused(copy: Path) -> None:
    _edit_manifest(copy, lambda m: m["labels"].pop())
    with pytest.raises(ArtifactError, match="outputs but the manifest lists 2 labels"):
        load_version(copy)


def test_input_mismatch_is_refused(copy: Path) -> None:
    _edit_manifest(
        copy, lambda m: m["onnx"].update({"inputs": {"input_ids": {"type": "int64", "shape": ["N", "T"]}}})
    )
    with pytest.raises(ArtifactError, match="inputs .* do not match the manifest"):
        load_version(copy)


def test_missing_files_are_refused(copy: Path) -> None:
    (copy / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_version(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_version(copy)
