from __future__ import annotations

from pathlib import Path

import pytest

from training.cli import main
from training.pipeline import TrainedVersion


def test_evaluate_prints_a_row_per_family_and_the_baseline(
    trained: dict[str, TrainedVersion],
    models_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SWITCHBOARD_MODELS_DIR", str(models_root))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["evaluate", "--task", "sentiment"]) == 0
    out = capsys.readouterr().out
    assert "macro-F1" in out.splitlines()[0]
    for family in ("majority", "linear", "encoder", "ensemble", "head"):
        assert any(line.split()[2:3] == [family] for line in out.splitlines()), family
    assert "error" not in out


def test_train_without_database_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["train", "--task", "sentiment", "--limit", "30"]) == 1


def test_training_a_head_without_an_embedder_says_to_export_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SWITCHBOARD_MODELS_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["train", "--task", "sentiment", "--family", "head", "--limit", "60", "--no-register"]) == 1
    assert "export the embedder first: python -m training export-embedder" in caplog.text
