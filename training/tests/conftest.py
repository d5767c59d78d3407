from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from training.pipeline import FAMILIES, TrainedVersion, Trainer
from training.registry import Registry
from training.tasks import TARGETS

SLICE = 300  # rows of the airline data set: a few seconds per family


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def trained(models_root: Path) -> dict[str, TrainedVersion]:
    """Sentiment versions of every family on a small slice, trained once per session."""
    versions = Trainer(models_root, seed=0, limit=SLICE).train(TARGETS["sentiment"], list(FAMILIES))
    return {v.family: v for v in versions}


@pytest.fixture(scope="session")
def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("DATABASE_URL is not set: CI must run the registry tests against PostgreSQL")
        pytest.skip("DATABASE_URL is not set")
    return url


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    """A registry in a throwaway schema, dropped afterwards."""
    schema = f"registry_test_{uuid.uuid4().hex[:12]}"
    registry = Registry.open(database_url, schema)
    registry.migrate()
    try:
        yield registry
    finally:
        registry.conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        registry.conn.close()
