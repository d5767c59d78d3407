"""Model version directories: `model.onnx` + `manifest.json` (+ `vocab.txt` for the encoder).

A version is written to a temporary sibling and renamed into place, so a reader never sees a
half-written one; its manifest is validated against models/manifest.schema.json first. Reading verifies checksums, labels and ONNX inputs/outputs against the
manifest and refuses anything that does not match. A version that pins an embedder (family
`head`) is loaded with that embedder version, found beside it in the same models directory and
refused unless its model.onnx has exactly the pinned sha256."""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import onnxruntime as ort

from training.datasets.base import sha256_file

MANIFEST_SCHEMA = 1
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
# The task of a version that outputs only `embedding` (no labels, no `probabilities`).
EMBEDDING_TASK = "embedding"
# A classifier over another version's embedding; its manifest pins that version under `embedder`.
HEAD_FAMILY = "head"
EMBEDDER_PIN = "embedder"
_ORT_TYPES = {"tensor(string)": "string", "tensor(float)": "float32", "tensor(int64)": "int64"}
# The one description of manifest.json, shared with serving (models/manifest.ts validates with it too).
MANIFEST_SCHEMA_FILE = Path(__file__).resolve().parent.parent / "models" / "manifest.schema.json"


class ArtifactError(Exception):
    """A model version directory that must not be served."""


@functools.cache
def _manifest_validator() -> jsonschema_rs.Validator:
    return jsonschema_rs.Draft202012Validator(json.loads(MANIFEST_SCHEMA_FILE.read_text()))


def manifest_problems(manifest: Any) -> list[tuple[list[str | int], str]]:
    """Every way `manifest` departs from manifest.schema.json: (path, message), sorted by path.
    A missing field's path ends with the field, so each problem names where it is."""
    problems = []
    for error in _manifest_validator().iter_errors(manifest):
        path: list[str | int] = list(error.instance_path)
        if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
            path.append(error.kind.property)
        problems.append((path, error.message))
    return sorted(problems, key=lambda problem: [str(part) for part in problem[0]])


def validate_manifest(manifest: Any) -> None:
    """Raises ArtifactError naming every problem's path (dotted) when the manifest is invalid."""
    problems = manifest_problems(manifest)
    if problems:
        described = "; ".join(f"{'.'.join(map(str, path)) or '(root)'}: {message}" for path, message in problems)
        raise ArtifactError(f"{MANIFEST_FILE} is invalid ({MANIFEST_SCHEMA_FILE.name}): {described}")


def write_version(
    root: Path,
    model: str,
    version: str,
    onnx_bytes: bytes,
    manifest: dict[str, Any],
    extra_files: dict[str, Path],
) -> tuple[Path, dict[str, Any]]:
    """Writes the version directory; returns it and the manifest as written (with checksums)."""
    target = root / model / version
    if target.exists():
        raise ArtifactError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
    try:
        (staging / MODEL_FILE).write_bytes(onnx_bytes)
        files = {MODEL_FILE: sha256_file(staging / MODEL_FILE)}
        for name, source in extra_files.items():
            shutil.copyfile(source, staging / name)
            files[name] = sha256_file(staging / name)
        manifest = {**manifest, "files": files}
        validate_manifest(manifest)  # before writing: an invalid manifest never reaches serving
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        staging.chmod(0o755)  # mkdtemp creates it private; serving processes run as other users
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, json.loads((target / MANIFEST_FILE).read_text())


def latest_versions(root: Path, model: str) -> dict[str, Path]:
    """The newest version directory of each family of a model (version ids sort by time)."""
    latest: dict[str, Path] = {}
    for directory in sorted((root / model).glob("[!.]*")):
        manifest = directory / MANIFEST_FILE
        if manifest.exists():
            latest[json.loads(manifest.read_text())["family"]] = directory
    return latest


@dataclass(frozen=True)
class LoadedVersion:
    directory: Path
    manifest: dict[str, Any]
    session: ort.InferenceSession
    embedder: LoadedVersion | None = None  # the pinned embedder of a head version


def load_version(directory: Path, threads: int = 2) -> LoadedVersion:
    """The verified version; for a head, with its pinned embedder, which is
    `<models root>/<embedder.model>/<embedder.version>` (the models root being the directory two
    levels up, as for every version)."""
    manifest_path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError as error:
        raise ArtifactError(f"{directory}: no {MANIFEST_FILE}") from error
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({error})") from error
    if manifest.get("schema_version") != MANIFEST_SCHEMA:
        raise ArtifactError(
            f"{manifest_path}: schema_version {manifest.get('schema_version')!r}, expected {MANIFEST_SCHEMA}"
        )
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.exists():
            raise ArtifactError(f"{path}: missing")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{path}: sha256 does not match the manifest (corrupt or replaced)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(directory / MODEL_FILE), options)
    except Exception as error:  # onnxruntime raises its own exception types
        raise ArtifactError(f"{directory / MODEL_FILE}: onnxruntime cannot load it ({error})") from error
    _check_signature(directory, manifest, session)
    pinned = _load_pinned_embedder(directory, manifest, threads)
    return LoadedVersion(directory, manifest, session, pinned)


def pinned_embedder_directory(directory: Path, pin: dict[str, Any]) -> Path:
    return directory.parent.parent / str(pin["model"]) / str(pin["version"])


def _load_pinned_embedder(directory: Path, manifest: dict[str, Any], threads: int) -> LoadedVersion | None:
    pin = manifest.get(EMBEDDER_PIN)
    if pin is None:
        if manifest["family"] == HEAD_FAMILY:
            raise ArtifactError(f"{directory}: a head version must pin its embedder (`{EMBEDDER_PIN}`)")
        return None
    name = f"{pin['model']}@{pin['version']}"
    path = pinned_embedder_directory(directory, pin)
    if not path.is_dir():
        raise ArtifactError(
            f"{directory}: its embedder {name} is missing ({path}); the head is only valid with exactly "
            "that version: restore it or train the head again on the current embedder"
        )
    try:
        embedder = load_version(path, threads)
    except ArtifactError as error:
        raise ArtifactError(f"{directory}: its embedder {name} cannot be served: {error}") from error
    actual = embedder.manifest["files"][MODEL_FILE]
    if actual != pin["sha256"]:
        raise ArtifactError(
            f"{directory}: its embedder {name} has model.onnx sha256 {actual}, the head was trained on "
            f"{pin['sha256']}: a head is only valid with the exact embedder it pins"
        )
    if embedder.manifest["task"] != EMBEDDING_TASK or embedder.manifest["family"] != pin["family"]:
        raise ArtifactError(
            f"{directory}: {name} is not the {pin['family']} embedding model the head pins "
            f"(task {embedder.manifest['task']}, family {embedder.manifest['family']})"
        )
    width = embedder.manifest["onnx"]["outputs"]["embedding"]["shape"][-1]
    expected = manifest["onnx"]["inputs"].get("embedding", {}).get("shape", [None, None])[-1]
    if not width == pin["dimensions"] == expected:
        raise ArtifactError(
            f"{directory}: {name} embeds in {width} dimensions, the pin says {pin['dimensions']} and the "
            f"head's `embedding` input {expected}"
        )
    return embedder


def _check_signature(directory: Path, manifest: dict[str, Any], session: ort.InferenceSession) -> None:
    onnx_spec = manifest["onnx"]
    actual_inputs = {i.name: _ORT_TYPES.get(i.type, i.type) for i in session.get_inputs()}
    declared_inputs = {name: spec["type"] for name, spec in onnx_spec["inputs"].items()}
    if actual_inputs != declared_inputs:
        raise ArtifactError(
            f"{directory}: inputs {actual_inputs} do not match the manifest {declared_inputs}"
        )
    for tensor in session.get_inputs():
        declared, actual = onnx_spec["inputs"][tensor.name]["shape"][-1], tensor.shape[-1]
        if isinstance(declared, int) and isinstance(actual, int) and declared != actual:
            raise ArtifactError(
                f"{directory}: input {tensor.name!r} has width {actual}, the manifest says {declared}"
            )
    outputs = {o.name: o for o in session.get_outputs()}
    for name, spec in onnx_spec["outputs"].items():
        if name not in outputs or _ORT_TYPES.get(outputs[name].type) != spec["type"]:
            raise ArtifactError(f"{directory}: output {name!r} missing or of another type")
        declared, actual = spec["shape"][-1], outputs[name].shape[-1]
        if isinstance(declared, int) and isinstance(actual, int) and declared != actual:
            raise ArtifactError(
                f"{directory}: output {name!r} has width {actual}, the manifest says {declared}"
            )
    if manifest["task"] == EMBEDDING_TASK:
        if manifest["labels"] or "embedding" not in onnx_spec["outputs"]:
            raise ArtifactError(f"{directory}: an embedding model has no labels and outputs `embedding`")
        return
    if "probabilities" not in onnx_spec["outputs"]:
        raise ArtifactError(f"{directory}: a {manifest['task']} model must output `probabilities`")
    width = outputs["probabilities"].shape[-1]
    if width != len(manifest["labels"]):
        raise ArtifactError(
            f"{directory}: the model has {width} outputs but the manifest lists {len(manifest['labels'])} labels"
        )
