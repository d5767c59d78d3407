"""The model registry in PostgreSQL; artifacts stay on disk and the registry stores their path
relative to the models directory. Tables live in one schema (default `model_registry`, env
SWITCHBOARD_REGISTRY_SCHEMA), selected through the connection's search_path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from training import config
from training.gate import Decision

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class RegistryError(Exception):
    pass


def flat_numbers(numbers: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """A decision's numbers as the lifecycle records carry them (a map of doubles): nested
    objects and lists become dotted keys (`worst_recall_drop.drop`, `blocking_classes.0.lost`);
    strings and booleans are left out (the reason says what they said)."""
    flat: dict[str, float] = {}
    items = numbers.items() if isinstance(numbers, dict) else enumerate(numbers)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, (int, float)):
            flat[name] = float(value)
        elif isinstance(value, (dict, list, tuple)):
            flat.update(flat_numbers(value, f"{name}."))  # type: ignore[arg-type]
    return flat


def trained_numbers(manifest: dict[str, Any]) -> dict[str, float]:
    """The `trained` decision's numbers: held-out metrics and row counts of the new version."""
    metrics: dict[str, Any] = manifest.get("metrics") or {}
    dataset: dict[str, Any] = manifest.get("dataset") or {}
    numbers: dict[str, Any] = {
        f"{split}_{name}": metrics.get(split, {}).get(name)
        for split in ("test", "validation")
        for name in ("accuracy", "macro_f1", "ece")
    }
    numbers.update({f"{part}_rows": n for part, n in (dataset.get("sizes") or {}).items()})
    feedback = dataset.get("feedback") or {}
    numbers["feedback_train_rows"] = len(feedback.get("train_ids", []))
    numbers["feedback_evaluation_rows"] = len(feedback.get("evaluation_ids", []))
    numbers["training_seconds"] = manifest.get("training_seconds")
    return flat_numbers({k: v for k, v in numbers.items() if v is not None})


@dataclass(frozen=True)
class VersionRow:
    model: str
    version: str
    family: str
    stage: str
    artifact_path: str
    test_digest: str | None  # None: built from pre-trained weights, no held-out set
    manifest: dict[str, Any]

    def directory(self, models_root: Path | None = None) -> Path:
        return (models_root or config.models_dir()) / self.artifact_path


def _metric_rows(model: str, version: str, metrics: dict[str, Any]) -> Iterator[tuple[object, ...]]:
    for split in ("test", "validation"):
        for name, value in dict(metrics.get(split) or {}).items():
            if name == "per_class_recall":
                for label, recall in value.items():
                    yield model, version, split, "recall", label, recall
            elif isinstance(value, (int, float)):
                yield model, version, split, name, "", value
    if metrics.get("oos"):
        for name in ("oos_recall", "in_scope_accuracy", "threshold"):
            yield model, version, "test", name, "", metrics["oos"][name]


class Registry:
    def __init__(self, conn: psycopg.Connection[DictRow], schema: str) -> None:
        self.conn = conn
        self.schema = schema

    @classmethod
    def open(cls, url: str | None = None, schema: str | None = None) -> Registry:
        """An autocommit connection (each unit of work opens its own transaction) whose
        search_path is the registry schema."""
        url = url or config.database_url()
        if not url:
            raise RegistryError("DATABASE_URL is not set")
        schema = schema or config.registry_schema()
        conn = psycopg.connect(url, row_factory=dict_row, autocommit=True)
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return cls(conn, schema)

    def migrate(self) -> list[str]:
        """Applies the SQL files in migrations/ not applied yet, in name order; safe to run
        again and from several processes at once (they serialize on an advisory lock)."""
        applied: list[str] = []
        with self.conn.transaction():
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"switchboard.registry.{self.schema}",)
            )
            self.conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["name"] for row in self.conn.execute("SELECT name FROM schema_migrations")}
            for path in sorted(MIGRATIONS.glob("*.sql")):
                if path.name not in done:
                    self.conn.execute(path.read_text())
                    self.conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                    applied.append(path.name)
        return applied

    @contextmanager
    def locked(self, model: str) -> Iterator[None]:
        """A transaction holding the model's row lock: stage changes of one model serialize."""
        with self.conn.transaction():
            if (
                self.conn.execute("SELECT 1 FROM models WHERE name = %s FOR UPDATE", (model,)).fetchone()
                is None
            ):
                raise RegistryError(f"unknown model {model!r}")
            yield

    def register(self, manifest: dict[str, Any], artifact_path: str) -> VersionRow:
        """Adds a version as candidate with its metrics and lineage, and its `trained` decision.
        A version built from pre-trained weights alone (no `dataset` in its manifest) has no
        data lineage."""
        model, version = str(manifest["model"]), str(manifest["version"])
        dataset: dict[str, Any] = manifest.get("dataset") or {}
        digests: dict[str, str] = dataset.get("digests") or {}
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO models (name, task) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (model, manifest["task"]),
            )
            parent = self.production(model)
            self.conn.execute(
                """INSERT INTO versions (model, version, family, stage, artifact_path, model_sha256,
                    training_data_digest, test_digest, manifest) VALUES (%s, %s, %s, 'candidate', %s, %s, %s, %s, %s)""",
                (
                    model,
                    version,
                    manifest["family"],
                    artifact_path,
                    manifest["files"]["model.onnx"],
                    manifest.get("training_data_digest"),
                    digests.get("test"),
                    Jsonb(manifest),
                ),
            )
            with self.conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO metrics (model, version, split, metric, class_label, value) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    list(_metric_rows(model, version, manifest["metrics"])),  # type: ignore[arg-type]
                )
            self.conn.execute(
                """INSERT INTO lineage (model, version, dataset, source_sha256, seed, row_limit,
                    train_digest, validation_digest, test_digest, parent_version, weights_sha256)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    model,
                    version,
                    dataset.get("name"),
                    (dataset.get("source") or {}).get("sha256"),
                    dataset.get("seed"),
                    dataset.get("limit"),
                    digests.get("train"),
                    digests.get("validation"),
                    digests.get("test"),
                    parent.version if parent else None,
                    (manifest.get("parameters") or {}).get("weights_sha256"),
                ),
            )
            self._decision(
                model,
                "trained",
                version,
                parent.version if parent else None,
                f"trained {manifest['family']} on {dataset.get('name') or 'pre-trained weights'}",
                trained_numbers(manifest),
                manifest.get("lineage") or {},
            )
        return self.version(model, version)

    def find_by_checksum(self, model: str, model_sha256: str) -> VersionRow | None:
        """The version of `model` whose model.onnx has this sha256, if one is registered."""
        return self._row("model = %s AND model_sha256 = %s", (model, model_sha256))

    def _row(self, where: str, params: tuple[object, ...]) -> VersionRow | None:
        row = self.conn.execute(
            f"SELECT model, version, family, stage, artifact_path, test_digest, manifest FROM versions WHERE {where}",
            params,
        ).fetchone()
        return VersionRow(**row) if row else None

    def version(self, model: str, version: str) -> VersionRow:
        row = self._row("model = %s AND version = %s", (model, version))
        if row is None:
            raise RegistryError(f"unknown version {model}@{version}")
        return row

    def production(self, model: str) -> VersionRow | None:
        return self._row("model = %s AND stage = 'production'", (model,))

    def _set_production(self, model: str, version: str, ended_by: str) -> None:
        self.conn.execute(
            "UPDATE versions SET stage = 'archived', stage_changed_at = now() WHERE model = %s AND stage = 'production'",
            (model,),
        )
        self.conn.execute(
            "UPDATE production_history SET ended_at = now(), ended_by = %s WHERE model = %s AND ended_at IS NULL",
            (ended_by, model),
        )
        self.conn.execute(
            "UPDATE versions SET stage = 'production', stage_changed_at = now() WHERE model = %s AND version = %s",
            (model, version),
        )
        self.conn.execute("INSERT INTO production_history (model, version) VALUES (%s, %s)", (model, version))

    def shadow(self, model: str) -> VersionRow | None:
        return self._row("model = %s AND stage = 'shadow'", (model,))

    def _set_stage(self, model: str, version: str, stage: str) -> None:
        self.conn.execute(
            "UPDATE versions SET stage = %s, stage_changed_at = now() WHERE model = %s AND version = %s",
            (stage, model, version),
        )

    def evaluated(self, model: str, candidate: str, decision: Decision) -> None:
        """The gate's verdict and numbers, before the stage change it leads to (call inside `locked`)."""
        production = self.production(model)
        self._decision(
            model,
            "evaluated",
            candidate,
            production.version if production else None,
            decision.reason,
            decision.numbers,
        )

    def record(self, model: str, candidate: str, decision: Decision, shadow: bool = False) -> str:
        """Applies a gate decision (call inside `locked`): promotes the candidate, or with
        `shadow` makes it the model's shadow version (a previous shadow is archived with a
        `rejected` decision saying it was superseded), or archives it. Returns the action."""
        production = self.production(model)
        before = production.version if production else None
        if decision.promote and shadow:
            previous = self.shadow(model)
            if previous is not None and previous.version != candidate:
                self._set_stage(model, previous.version, "archived")
                self._decision(
                    model, "rejected", previous.version, before, f"superseded by the shadow version {candidate}", {}
                )
            self._set_stage(model, candidate, "shadow")
            action = "shadow_started"
        elif decision.promote:
            self._set_production(model, candidate, "promotion")
            action = "promoted"
        else:
            self.conn.execute(
                "UPDATE versions SET stage = 'archived', stage_changed_at = now() "
                "WHERE model = %s AND version = %s AND stage = 'candidate'",
                (model, candidate),
            )
            action = "rejected"
        self._decision(model, action, candidate, before, decision.reason, decision.numbers)
        return action

    def promote_shadow(self, model: str, version: str, reason: str, numbers: dict[str, Any]) -> str | None:
        """Shadow -> production after the shadow evaluation; returns the production version before."""
        with self.locked(model):
            row = self.version(model, version)
            if row.stage != "shadow":
                raise RegistryError(
                    f"{model}@{version} is {row.stage}, not shadow: only a shadow version is promoted after shadow"
                )
            production = self.production(model)
            self._set_production(model, version, "promotion")
            before = production.version if production else None
            self._decision(model, "promoted", version, before, reason, numbers)
        return before

    def reject(self, model: str, version: str, reason: str, numbers: dict[str, Any]) -> str:
        """Shadow or candidate -> archived; returns the stage the version had."""
        with self.locked(model):
            row = self.version(model, version)
            if row.stage not in ("shadow", "candidate"):
                raise RegistryError(
                    f"{model}@{version} is {row.stage}: only a shadow or candidate version is rejected"
                )
            self._set_stage(model, version, "archived")
            production = self.production(model)
            self._decision(model, "rejected", version, production.version if production else None, reason, numbers)
        return row.stage

    def _decision(
        self,
        model: str,
        action: str,
        candidate: str | None,
        production: str | None,
        reason: str,
        numbers: dict[str, Any],
        lineage: dict[str, str] | None = None,
    ) -> None:
        """One outbox row. numbers are stored flat (numbers only, as models.lifecycle carries
        them); lineage defaults to the candidate version's own (its manifest's)."""
        if lineage is None:
            row = self._row("model = %s AND version = %s", (model, candidate)) if candidate else None
            lineage = (row.manifest.get("lineage") if row else None) or {}
        self.conn.execute(
            """INSERT INTO decisions (model, action, candidate_version, production_version, reason, numbers, lineage)
                VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (model, action, candidate, production, reason, Jsonb(flat_numbers(numbers)), Jsonb(lineage)),
        )

    def rollback(self, model: str) -> tuple[str, str]:
        """Restores the version that served before the current one. Versions that were
        themselves rolled back are skipped, so repeated rollbacks keep walking back."""
        with self.locked(model):
            history = self.conn.execute(
                "SELECT version, ended_by FROM production_history WHERE model = %s ORDER BY id DESC", (model,)
            ).fetchall()
            if not history or history[0]["ended_by"] is not None:
                raise RegistryError(f"{model} has no production version")
            current = history[0]["version"]
            rolled_back = {h["version"] for h in history if h["ended_by"] == "rollback"} | {current}
            previous = next((h["version"] for h in history[1:] if h["version"] not in rolled_back), None)
            if previous is None:
                raise RegistryError(f"{model}: no earlier production version to roll back to")
            self._set_production(model, previous, "rollback")
            self._decision(
                model, "rolled_back", previous, current, f"rollback from {current} to {previous}", {}
            )
        return current, previous

    def versions(self, model: str | None = None) -> list[dict[str, Any]]:
        return self.conn.execute(
            """SELECT v.model, v.version, v.family, v.stage, v.created_at,
                       max(m.value) FILTER (WHERE m.metric = 'accuracy') AS accuracy,
                       max(m.value) FILTER (WHERE m.metric = 'macro_f1') AS macro_f1,
                       max(m.value) FILTER (WHERE m.metric = 'ece') AS ece
                FROM versions v
                LEFT JOIN metrics m ON m.model = v.model AND m.version = v.version AND m.split = 'test'
                WHERE %(model)s::text IS NULL OR v.model = %(model)s
                GROUP BY v.model, v.version ORDER BY v.model, v.created_at""",
            {"model": model},
        ).fetchall()

    def decisions(self, model: str) -> list[dict[str, Any]]:
        return self.conn.execute("SELECT * FROM decisions WHERE model = %s ORDER BY id", (model,)).fetchall()
