"""The learning loop's training side against a real PostgreSQL: feedback rows from the feedback
sink's tables (a throwaway copy of the application schema), a team's own files, the shadow
stage and the decision rows the lifecycle relay reads, bounded runs, and the CLI's JSON lines."""

from __future__ import annotations

import csv
import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from training import config, feedback
from training.cli import main
from training.datasets.base import dedupe_key
from training.gate import feedback_check
from training.models.linear import LinearParams
from training.pipeline import Trainer
from training.promotion import run_gate
from training.registry import Registry
from training.tasks import TARGETS
from training.tests.conftest import SLICE

STORAGE = config.REPO_ROOT / "storage" / "migrations"
WORDS = {
    "positive": ["great", "lovely", "friendly", "wonderful", "smooth", "excellent", "kind", "perfect"],
    "negative": ["awful", "delayed", "rude", "terrible", "lost", "broken", "dirty", "cancelled"],
    "neutral": ["scheduled", "booked", "listed", "printed", "noted", "routed", "posted", "filed"],
}


@pytest.fixture
def app(database_url: str, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway application schema with the archive's and the feedback sink's tables; the CLI
    is pointed at it and at the registry fixture's schema."""
    schema = f"app_test_{uuid.uuid4().hex[:12]}"
    conn = registry.conn
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    for name in ("001_archive.sql", "005_feedback.sql"):
        conn.execute((STORAGE / name).read_text())
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(registry.schema)))
    monkeypatch.setenv("SWITCHBOARD_APP_SCHEMA", schema)
    monkeypatch.setenv("SWITCHBOARD_REGISTRY_SCHEMA", registry.schema)
    monkeypatch.setenv("DATABASE_URL", database_url)
    try:
        yield schema
    finally:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "models"
    monkeypatch.setenv("SWITCHBOARD_MODELS_DIR", str(root))
    return root


def add_label(
    registry: Registry,
    schema: str,
    task: str,
    text: str,
    label: str,
    *,
    subject: str | None = None,
    at: datetime | None = None,
    digest: str | None = None,
) -> str:
    """An archived inquiry, its prediction and an agent's label, as the sinks write them."""
    inquiry = f"inq-{uuid.uuid4().hex[:10]}"
    prediction = hashlib.sha256(f"{inquiry}\0{task}".encode()).hexdigest()[:32]
    at = at or datetime(2026, 11, 1, tzinfo=UTC)
    model_input = feedback.model_input(subject, text)
    conn = registry.conn
    conn.execute(
        sql.SQL(
            """INSERT INTO {}.inquiries (inquiry_id, channel, source_id, subject, text, language,
                 language_confidence, redaction_count, received_at, cleaned_at)
               VALUES (%s, 'email', %s, %s, %s, 'en', 0.99, 0, %s, %s)"""
        ).format(sql.Identifier(schema)),
        (inquiry, inquiry, subject, text, at, at),
    )
    conn.execute(
        sql.SQL(
            """INSERT INTO {}.feedback_predictions (prediction_id, inquiry_id, task, model, predicted_label,
                 confidence, input_digest, features, predicted_at)
               VALUES (%s, %s, %s, %s, 'neutral', 0.5, %s, '{{}}', %s)"""
        ).format(sql.Identifier(schema)),
        (prediction, inquiry, task, f"{task}@v1", digest or feedback.digest(model_input), at),
    )
    conn.execute(
        sql.SQL(
            """INSERT INTO {}.labels (label_id, prediction_id, inquiry_id, task, label, label_source,
                 labeled_at, judged_model, judged_label)
               VALUES (%s, %s, %s, %s, %s, 'agent', %s, %s, 'neutral')"""
        ).format(sql.Identifier(schema)),
        (uuid.uuid4().hex, prediction, inquiry, task, label, at, f"{task}@v1"),
    )
    return prediction


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(list(argv))
    return code, json_lines(capsys.readouterr().out)


def test_feedback_rows_enter_training_and_lineage_and_held_out_texts_do_not(
    registry: Registry, app: str, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = TARGETS["sentiment"].load(0, SLICE)
    ids = []
    for i in range(36):
        label = list(WORDS)[i % 3]
        text = f"flight {i}: the crew was {WORDS[label][i % 8]} and the seat {WORDS[label][(i + 3) % 8]}"
        ids.append(add_label(registry, app, "sentiment", text, label, subject=f"trip {i}" if i % 2 else None))
    leaked_text = base.test[0].text
    leaked = add_label(registry, app, "sentiment", "  " + leaked_text.upper() + " ", base.test[0].label)
    invalid = add_label(registry, app, "sentiment", "a text with a label the model lacks", "furious")
    mismatch = add_label(registry, app, "sentiment", "the text changed after", "positive", digest="0" * 64)
    later = datetime(2026, 11, 2, tzinfo=UTC)
    duplicate = add_label(registry, app, "sentiment", "flight 0: the crew was great and the seat wonderful", "positive", at=later)
    code, lines = run(
        capsys,
        *("train", "--model", "sentiment", "--family", "linear", "--limit", str(SLICE), "--with-feedback"),
        *("--trigger", '{"trigger":"labels","requested_by":"test"}', "--json"),
    )
    assert code == 0, lines
    trained, evaluated = lines
    assert trained["event"] == "trained" and trained["family"] == "linear"
    assert evaluated == {**evaluated, "event": "evaluated", "decision": "promoted", "version": trained["version"]}
    manifest = registry.version("sentiment", trained["version"]).manifest
    recorded = manifest["dataset"]["feedback"]
    used = set(recorded["train_ids"]) | set(recorded["evaluation_ids"])
    assert leaked not in used and invalid not in used and mismatch not in used
    assert recorded["skipped"] == {"duplicate_input": 1, "held_out": 1, "input_mismatch": 1, "invalid_label": 1}
    assert len(used) == 36 and duplicate in used and ids[0] not in used  # the latest label of one input wins
    assert recorded["evaluation_ids"] and set(recorded["evaluation_ids"]).isdisjoint(recorded["train_ids"])
    # The base held-out set is unchanged, training grew by the feedback rows.
    assert manifest["dataset"]["digests"]["test"] == base.digest("test")
    assert manifest["dataset"]["sizes"]["train"] == len(base.train) + len(recorded["train_ids"])
    assert trained["lineage"] == {
        **trained["lineage"],
        "trigger": "labels",
        "requested_by": "test",
        "feedback_rows": "36",
        "feedback_train_rows": str(len(recorded["train_ids"])),
        "feedback_digest": hashlib.sha256("\n".join(sorted(used)).encode()).hexdigest(),
        "feedback_max_labeled_at": later.isoformat(),
    }
    assert trained["metrics"]["feedback_train_rows"] == len(recorded["train_ids"])
    assert evaluated["numbers"]["feedback.n"] == len(recorded["evaluation_ids"])
    rows = registry.decisions("sentiment")
    assert [r["action"] for r in rows] == ["trained", "evaluated", "promoted"]
    assert all(r["lineage"] == trained["lineage"] for r in rows)
    assert all(isinstance(v, float) for r in rows for v in r["numbers"].values())
    # No held-out text reaches training even when it is given in another case and spacing.
    held_out = {dedupe_key(r.text) for r in base.validation + base.test}
    assert not held_out & {dedupe_key(t) for t in _train_texts(registry, app, recorded["train_ids"])}


def _train_texts(registry: Registry, schema: str, ids: list[str]) -> list[str]:
    rows = registry.conn.execute(
        sql.SQL(
            "SELECT i.subject, i.text FROM {s}.feedback_predictions p JOIN {s}.inquiries i USING (inquiry_id) "
            "WHERE p.prediction_id = ANY(%s)"
        ).format(s=sql.Identifier(schema)),
        (ids,),
    ).fetchall()
    return [feedback.model_input(r["subject"], r["text"]) for r in rows]


def test_the_gate_refuses_a_candidate_clearly_worse_on_the_feedback_split() -> None:
    policy = config.GatePolicy()
    truth = ["a"] * 40
    numbers, failure = feedback_check(truth, ["a"] * 28 + ["b"] * 12, ["a"] * 40, policy)
    assert failure and "accuracy drops by 0.3000" in failure and numbers["lost"] == 12
    numbers, failure = feedback_check(truth, ["a"] * 39 + ["b"], ["a"] * 40, policy)
    assert failure is None and numbers["accuracy_drop"] == pytest.approx(0.025)  # one row is noise


def write_team_csv(path: Path, labels: dict[str, list[str]], per_class: int = 30) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "body", "team_label", "agent"])
        for label, words in labels.items():
            for i in range(per_class):
                writer.writerow(
                    [f"about {words[i % len(words)]}", f"case {i}: my {words[(i + 1) % len(words)]} needs help", label, "x"]
                )


TEAM_LABELS = {
    "billing": ["invoice", "charge", "refund", "payment"],
    "shipping": ["parcel", "courier", "delivery", "tracking"],
    "login": ["password", "account", "username", "signin"],
}


def test_own_csv_and_jsonl_train_register_and_a_new_taxonomy_needs_its_flag(
    registry: Registry, app: str, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "tickets.csv"
    write_team_csv(data, TEAM_LABELS)
    code, lines = run(
        capsys,
        *("train", "--model", "team-topic", "--family", "linear", "--data", str(data)),
        *("--text-column", "subject", "--text-column", "body", "--label-column", "team_label", "--json"),
    )
    assert code == 0, lines
    trained, evaluated = lines
    assert trained["task"] == "team-topic" and trained["lineage"]["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert evaluated["decision"] == "promoted"
    assert evaluated["reason"].startswith("first version of the model, trained on a team's file: accuracy")
    row = registry.version("team-topic", trained["version"])
    provenance = row.manifest["dataset"]["data"]
    assert provenance == {
        **provenance,
        "path": str(data.resolve()),
        "rows": 90,
        "columns": ["subject", "body", "team_label", "agent"],
        "text_columns": ["subject", "body"],
        "label_column": "team_label",
        "format": "csv",
    }
    assert row.manifest["labels"] == sorted(TEAM_LABELS)
    assert row.manifest["dataset"]["sizes"] == {"train": 72, "validation": 9, "test": 9}

    # The same file as JSON Lines with a fourth class: a new taxonomy, refused without the flag.
    more = {**TEAM_LABELS, "returns": ["return", "exchange", "swap", "sendback"]}
    jsonl = tmp_path / "tickets.jsonl"
    write_team_csv(tmp_path / "more.csv", more)
    with (tmp_path / "more.csv").open() as handle, jsonl.open("w") as out:
        for record in csv.DictReader(handle):
            out.write(json.dumps(record) + "\n")
    argv = ["train", "--model", "team-topic", "--family", "linear", "--data", str(jsonl), "--text-column", "subject"]
    argv += ["--text-column", "body", "--label-column", "team_label", "--json"]
    code, lines = run(capsys, *argv)
    assert code == 1 and lines[-1]["event"] == "failed"
    assert "differ from production" in lines[-1]["error"] and "--new-taxonomy" in lines[-1]["error"]
    code, lines = run(capsys, *argv, "--new-taxonomy")
    assert code == 0, lines
    assert lines[1]["decision"] == "promoted" and lines[1]["reason"].startswith("new taxonomy: accuracy")
    assert registry.production("team-topic").manifest["labels"] == sorted(more)  # type: ignore[union-attr]
    assert registry.production("team-topic").manifest["dataset"]["data"]["format"] == "jsonl"  # type: ignore[union-attr]


def test_a_routed_model_s_new_labels_must_be_mapped_by_the_routing_rules(
    registry: Registry, app: str, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "categories.csv"
    write_team_csv(data, {"ORDER": TEAM_LABELS["billing"], "REFUND": TEAM_LABELS["shipping"], "WARRANTY": TEAM_LABELS["login"]})
    code, lines = run(
        capsys,
        *("train", "--model", "category", "--family", "linear", "--data", str(data)),
        *("--text-column", "body", "--label-column", "team_label", "--json"),
    )
    assert code == 0
    assert lines[1]["decision"] == "rejected"
    assert "the routing rules map no department for 'WARRANTY'" in lines[1]["reason"]
    assert registry.production("category") is None


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        ("subject,body\nhello,world\n", ["--text-column", "body", "--label-column", "team_label"], "no column 'team_label'"),
        (
            "body,team_label\nhello,a\nhi,\n",
            ["--text-column", "body", "--label-column", "team_label"],
            "1 of 2 rows have an empty 'team_label' (rows 2",
        ),
        (
            "body,team_label\n" + "".join(f"text {i},{'a' if i < 20 else 'b'}\n" for i in range(23)),
            ["--text-column", "body", "--label-column", "team_label"],
            "classes with fewer than 10 distinct texts cannot be split into train, validation and test: 'b' (3)",
        ),
    ],
)
def test_a_bad_data_file_gives_a_clear_error(
    tmp_path: Path,
    models_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    content: str,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = tmp_path / "data.csv"
    data.write_text(content)
    assert main(["train", "--model", "team", "--family", "linear", "--no-register", "--data", str(data), *argv]) == 1
    assert message in caplog.text


def test_an_unreadable_file_gives_a_clear_error(
    tmp_path: Path, models_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    data = tmp_path / "data.jsonl"
    data.write_bytes(b'{"body": "ok", "l": "a"}\n\xff\xfe not text\n')
    argv = ["train", "--model", "team", "--no-register", "--data", str(data), "--text-column", "body", "--label-column", "l"]
    assert main(argv) == 1
    assert "is not UTF-8 text" in caplog.text
    assert main([*argv[:5], str(tmp_path / "missing.csv"), *argv[6:]]) == 1
    assert "cannot read the data file" in caplog.text


def test_shadow_stage_promotion_after_shadow_reject_and_rollback(
    registry: Registry, app: str, models_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Production: a deliberately weak linear model on the same split, which predicts one class
    # nearly always: no class-recall check, this test is about stages.
    monkeypatch.setenv("SWITCHBOARD_GATE_MAX_RECALL_DROP", "1.0")
    (weak,) = Trainer(
        models_dir, seed=0, limit=SLICE, linear_params=LinearParams(max_word_features=5, max_char_features=5, c_grid=(1e-4,))
    ).train(TARGETS["sentiment"], ["linear"])
    registry.register(weak.manifest, str(weak.directory.relative_to(models_dir)))
    assert run_gate(registry, "sentiment", weak.version, config.GatePolicy(), models_dir).action == "promoted"

    train = ["train", "--model", "sentiment", "--family", "linear", "--limit", str(SLICE), "--shadow", "--json"]
    code, (first, evaluated) = run(capsys, *train)
    assert code == 0 and evaluated["decision"] == "shadow_started", evaluated["reason"]
    assert first["artifact_path"] == f"sentiment/{first['version']}"
    assert registry.shadow("sentiment").version == first["version"]  # type: ignore[union-attr]
    assert registry.production("sentiment").version == weak.version  # type: ignore[union-attr]
    # The database holds at most one shadow version per model.
    with pytest.raises(Exception, match="versions_one_shadow"):
        registry.conn.execute("UPDATE versions SET stage = 'shadow' WHERE version = %s", (weak.version,))

    # The shadow evaluation refuses the first shadow...
    code, (rejected,) = run(
        capsys,
        *("reject", "--model", "sentiment", "--version", first["version"]),
        *("--reason", "live latency p95 above bound", "--numbers", '{"latency_p95_ms": 9.5}', "--json"),
    )
    assert code == 0 and rejected == {
        "event": "rejected",
        "model": "sentiment",
        "version": first["version"],
        "stage_before": "shadow",
        "reason": "live latency p95 above bound",
        "numbers": {"latency_p95_ms": 9.5},
    }
    assert registry.version("sentiment", first["version"]).stage == "archived" and registry.shadow("sentiment") is None
    assert main(["reject", "--model", "sentiment", "--version", first["version"], "--reason", "again"]) == 1

    # ...and passes the second, which is promoted.
    code, (second, evaluated) = run(capsys, *train, "--seed", "1")
    assert code == 0 and evaluated["decision"] == "shadow_started", evaluated["reason"]
    code, (promoted,) = run(
        capsys,
        *("promote", "--model", "sentiment", "--version", second["version"], "--after-shadow"),
        *("--numbers", '{"shadow_accuracy": 0.91, "production_accuracy": 0.84, "labelled": 120}'),
        *("--reason", "shadow at least as good on 120 labelled inquiries", "--json"),
    )
    assert code == 0
    assert promoted == {
        "event": "promoted",
        "model": "sentiment",
        "version": second["version"],
        "production_before": weak.version,
        "reason": "shadow at least as good on 120 labelled inquiries",
        "numbers": {"shadow_accuracy": 0.91, "production_accuracy": 0.84, "labelled": 120.0},
    }
    assert registry.production("sentiment").version == second["version"]  # type: ignore[union-attr]
    assert registry.shadow("sentiment") is None

    code, (rolled,) = run(capsys, "rollback", "--model", "sentiment", "--json")
    assert code == 0 and rolled == {"event": "rolled_back", "model": "sentiment", "from": second["version"], "to": weak.version}

    decisions = registry.decisions("sentiment")
    assert [(r["action"], r["candidate_version"], r["production_version"]) for r in decisions] == [
        ("trained", weak.version, None),
        ("evaluated", weak.version, None),
        ("promoted", weak.version, None),
        ("trained", first["version"], weak.version),
        ("evaluated", first["version"], weak.version),
        ("shadow_started", first["version"], weak.version),
        ("rejected", first["version"], weak.version),
        ("trained", second["version"], weak.version),
        ("evaluated", second["version"], weak.version),
        ("shadow_started", second["version"], weak.version),
        ("promoted", second["version"], weak.version),
        ("rolled_back", weak.version, second["version"]),
    ]
    assert decisions[10]["numbers"] == {"shadow_accuracy": 0.91, "production_accuracy": 0.84, "labelled": 120.0}
    assert decisions[10]["lineage"] == second["lineage"] and second["lineage"]["trigger"] == "manual"
    assert decisions[4]["numbers"]["macro_f1_gain"] > 0


def test_time_and_memory_limits_stop_a_run_with_a_clear_error(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    argv = ["train", "--model", "sentiment", "--family", "linear", "--limit", str(SLICE), "--no-register", "--json"]
    started = datetime.now(UTC)
    code, lines = run(capsys, *argv, "--max-seconds", "0.3")
    assert code == 124 and datetime.now(UTC) - started < timedelta(seconds=20)
    assert lines == [
        {
            "event": "failed",
            "error": "time limit exceeded: the run took longer than --max-seconds 0.3",
            "limit": "time",
            "exit_code": 124,
        }
    ]
    code, lines = run(capsys, *argv, "--max-memory-mb", "16")
    assert code == 125 and lines[0]["limit"] == "memory"
    assert "--max-memory-mb 16 is below what the process maps already" in caplog.text


def test_feedback_joins_a_team_file_too(
    registry: Registry, app: str, models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "tickets.csv"
    write_team_csv(data, TEAM_LABELS)
    kept = add_label(registry, app, "team-topic", "my refund for the invoice never came", "billing", subject="refund")
    add_label(registry, app, "team-topic", "where is the parcel", "ORDER")  # not one of the file's labels
    code, (trained, evaluated) = run(
        capsys,
        *("train", "--model", "team-topic", "--family", "linear", "--data", str(data), "--with-feedback"),
        *("--text-column", "subject", "--text-column", "body", "--label-column", "team_label", "--json"),
    )
    assert code == 0 and evaluated["decision"] == "promoted"
    recorded = registry.version("team-topic", trained["version"]).manifest["dataset"]["feedback"]
    assert recorded["train_ids"] == [kept] and recorded["evaluation_ids"] == []
    assert recorded["skipped"] == {"invalid_label": 1}
    assert trained["lineage"]["feedback_rows"] == "1" and trained["lineage"]["data_rows"] == "90"
    assert trained["metrics"]["train_rows"] == 73
