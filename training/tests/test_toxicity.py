"""The reply guardrail's toxicity model: alt-profanity-check's trained model converted to the
linear family's ONNX graph (same probabilities as the package's predict_proba), its held-out set
and threshold, and its registration (defaults: test_head.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training import toxicity
from training.artifacts import load_version
from training.datasets import bitext
from training.predictor import Predictor
from training.registry import Registry
from training.toxicity import (
    HELD_OUT,
    LABELS,
    TOXICITY_MODEL,
    ExportedToxicity,
    choose_threshold,
    export_toxicity,
    held_out,
    load_package,
    register_toxicity,
)

EDGE_CASES = [
    "",
    "ok",
    "a b c",
    "FUCK!!! this",
    "Straße, Ärger, naïve café, déjà vu",
    "ｆｕｌｌ ｗｉｄｔｈ idiot",
    "line one\nline two\tstupid\r\n",
    "under_score snake_case shit_storm",
    "12345 67890 2024",
    "idiot " * 50,
    "a" * 5000,
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> ExportedToxicity:
    return export_toxicity(tmp_path_factory.mktemp("toxicity-models"))


def test_version_has_the_linear_signature_and_the_package_pinned(exported: ExportedToxicity) -> None:
    manifest = load_version(exported.directory).manifest
    assert (manifest["model"], manifest["task"], manifest["family"]) == (TOXICITY_MODEL, "toxicity", "linear")
    assert manifest["labels"] == LABELS == ["clean", "offensive"]
    assert manifest["onnx"]["inputs"] == {"text": {"type": "string", "shape": ["N"]}}
    assert set(manifest["onnx"]["outputs"]) == {"probabilities", "active_features"}
    assert manifest["parameters"]["package"] == "alt-profanity-check"
    assert manifest["parameters"]["weights_sha256"] == toxicity.FILES_SHA256["model.joblib"]
    assert manifest["parameters"]["languages"] == ["en"]
    assert manifest["files"] == {"model.onnx": manifest["files"]["model.onnx"]}


def test_onnx_gives_the_packages_predict_proba(exported: ExportedToxicity) -> None:
    inquiries = [r.text for r in bitext.load("intent", seed=0, limit=2000).test][:300]
    texts = [r.text for r in held_out()] + inquiries + EDGE_CASES
    onnx = Predictor(exported.directory).probabilities(texts)
    reference = load_package().probabilities(texts)
    np.testing.assert_allclose(onnx[:, 1], reference, atol=1e-6)
    np.testing.assert_allclose(onnx.sum(axis=1), 1.0, atol=1e-6)


def test_graph_bytes_are_deterministic() -> None:
    package = load_package()
    assert toxicity.toxicity_graph(package) == toxicity.toxicity_graph(package)


def test_package_files_of_other_bytes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "data"
    shutil.copytree(toxicity.data_dir(), copy)
    with (copy / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    monkeypatch.setattr(toxicity, "data_dir", lambda: copy)
    with pytest.raises(ValueError, match="unexpected alt-profanity-check file model.joblib"):
        load_package()


def test_held_out_set_is_labelled_split_and_multilingual() -> None:
    rows = held_out()
    texts = [r.text for r in rows]
    assert len(texts) == len(set(texts)), "duplicate held-out texts"
    assert {r.label for r in rows} == set(LABELS)
    assert {r.split for r in rows} == {"validation", "test"}
    for language in ("en", "de", "es", "fr", "pt"):
        for label in LABELS:
            for split in ("validation", "test"):
                assert any(r.language == language and r.label == label and r.split == split for r in rows), (
                    language,
                    label,
                    split,
                )


def test_threshold_is_chosen_on_english_validation_rows(exported: ExportedToxicity) -> None:
    rows = held_out()
    scores = Predictor(exported.directory).probabilities([r.text for r in rows])[:, 1]
    validation = [(s, r) for s, r in zip(scores, rows) if r.split == "validation" and r.language == "en"]
    threshold, figures = choose_threshold(
        np.array([s for s, _ in validation]), np.array([r.label == "offensive" for _, r in validation])
    )
    point = exported.manifest["operating_point"]
    assert point["threshold"] == pytest.approx(threshold, abs=1e-6)
    assert point["validation_rows"] == len(validation)
    assert point["held_out_sha256"] == toxicity.sha256_file(HELD_OUT)
    assert exported.manifest["metrics"]["validation"]["f1"] == pytest.approx(figures["f1"])
    english = exported.manifest["metrics"]["test_covered_languages"]
    # What the guardrail promises on English replies it never chose a threshold on.
    assert english["precision"] >= 0.9 and english["recall"] >= 0.7, english


def test_choose_threshold_takes_the_best_f1_between_scores() -> None:
    scores = np.array([0.05, 0.2, 0.3, 0.8, 0.9])
    truth = np.array([False, False, True, True, True])
    threshold, figures = choose_threshold(scores, truth)
    assert 0.2 < threshold <= 0.3 and figures["f1"] == 1.0


def test_exporting_again_reuses_the_version(exported: ExportedToxicity) -> None:
    root = exported.directory.parent.parent
    again = export_toxicity(root)
    assert not again.created and again.version == exported.version
    assert [p.name for p in (root / TOXICITY_MODEL).iterdir()] == [exported.version]


def test_registering_puts_it_in_production_once(registry: Registry, exported: ExportedToxicity) -> None:
    root = exported.directory.parent.parent
    row = register_toxicity(registry, exported, root)
    assert row.stage == "production" and row.version == exported.version
    decisions = registry.decisions(TOXICITY_MODEL)
    assert [d["action"] for d in decisions] == ["trained", "promoted"]
    assert decisions[1]["reason"].startswith("no gate: converted from the pinned pre-trained package alt-profanity-check")
    assert decisions[1]["numbers"]["threshold"] == pytest.approx(exported.manifest["operating_point"]["threshold"])
    assert register_toxicity(registry, exported, root).version == row.version
    assert len(registry.versions(TOXICITY_MODEL)) == 1
    assert json.loads(json.dumps(row.manifest))["operating_point"]["threshold"] > 0


def test_a_changed_held_out_set_makes_a_new_version_with_its_threshold(
    registry: Registry, exported: ExportedToxicity, tmp_path: Path
) -> None:
    root = exported.directory.parent.parent
    first = register_toxicity(registry, exported, root)
    changed = tmp_path / "held_out.jsonl"
    lines = HELD_OUT.read_text(encoding="utf-8").splitlines(keepends=True)
    changed.write_text("".join(lines[1:]), encoding="utf-8")  # one English validation row fewer
    again = export_toxicity(root, changed)
    assert again.created and again.version != exported.version
    assert again.manifest["files"] == exported.manifest["files"]  # the same graph
    assert again.manifest["operating_point"]["validation_rows"] == exported.manifest["operating_point"]["validation_rows"] - 1
    second = register_toxicity(registry, again, root)
    assert second.stage == "production"
    assert registry.version(TOXICITY_MODEL, first.version).stage != "production"
