"""models/manifest.schema.json is what training writes: every manifest is validated against it
before it is written, and the cases serving's tests use are judged the same way here."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from training import embedder
from training.artifacts import (
    EMBEDDING_TASK,
    MANIFEST_SCHEMA,
    MANIFEST_SCHEMA_FILE,
    ArtifactError,
    manifest_problems,
    write_version,
)
from training.pipeline import FAMILIES, TrainedVersion

SCHEMA = json.loads(MANIFEST_SCHEMA_FILE.read_text())
CASES = json.loads((Path(__file__).resolve().parents[2] / "test" / "fixtures" / "manifest-cases.json").read_text())


def _case_manifest(case: dict[str, Any]) -> dict[str, Any]:
    manifest = copy.deepcopy(CASES["manifest"])
    for path, value in case.get("set", []):
        *parents, last = path
        target = manifest
        for key in parents:
            target = target[key]
        target[last] = value
    for path in case.get("delete", []):
        *parents, last = path
        target = manifest
        for key in parents:
            target = target[key]
        del target[last]
    return manifest


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema_rs.meta.validate(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_constants_match_the_schema() -> None:
    assert SCHEMA["properties"]["schema_version"]["const"] == MANIFEST_SCHEMA
    assert SCHEMA["if"]["properties"]["task"]["const"] == EMBEDDING_TASK
    # Any other family (the embedder's) is refused by write_version if the schema lacks it.
    assert set(FAMILIES) | {embedder.FAMILY} <= set(SCHEMA["properties"]["family"]["enum"])


@pytest.mark.parametrize("case", CASES["cases"], ids=[case["name"] for case in CASES["cases"]])
def test_shared_case(case: dict[str, Any]) -> None:
    paths = [path for path, _ in manifest_problems(_case_manifest(case))]
    if case["valid"]:
        assert paths == []
    else:
        expected = case["path"]
        assert any(path[: len(expected)] == expected for path in paths), paths


def test_manifests_written_by_training_validate(trained: dict[str, TrainedVersion]) -> None:
    for version in trained.values():
        on_disk = json.loads((version.directory / "manifest.json").read_text())
        assert manifest_problems(on_disk) == [], version.family
        assert on_disk == version.manifest


def test_manifest_missing_a_field_is_refused_before_it_is_written(
    trained: dict[str, TrainedVersion], tmp_path: Path
) -> None:
    manifest = {k: v for k, v in trained["linear"].manifest.items() if k not in ("files", "created_at")}
    with pytest.raises(ArtifactError, match=r"manifest\.json is invalid .*created_at: .*required"):
        write_version(tmp_path, "sentiment", "v1", b"onnx bytes", manifest, {})
    # Neither the version nor its staging directory is left behind.
    assert list((tmp_path / "sentiment").iterdir()) == []
