from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from psycopg import sql

from safetensors.numpy import load_file

from training import embedder
from training.artifacts import write_version
from training.models import static
from training.models.encoder import weights_dir
from training.models.wordpiece import WordPieceTokenizer
from training.pipeline import FAMILIES, TrainedVersion, Trainer
from training.registry import Registry
from training.tasks import TARGETS

SLICE = 300  # rows of the airline data set: a few seconds per family
EMBEDDER_VERSION = "20260101T000000Z-static-test"


def token_embedding_table() -> np.ndarray:
    """MiniLM's input token embeddings as a static table: a real, if weaker, embedder in seconds
    where the distillation of the production one takes minutes."""
    tokenizer = WordPieceTokenizer(weights_dir() / "vocab.txt")
    table = load_file(str(weights_dir() / "model.safetensors"))["embeddings.word_embeddings.weight"]
    specials = static.Specials(tokenizer.pad, tokenizer.unk, tokenizer.cls, tokenizer.sep)
    return static.finish(table, specials)


@pytest.fixture(scope="session")
def embedder_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version of model `embedder` (family static) for the heads to pin."""
    root = tmp_path_factory.mktemp("embedder-root")
    vocab = weights_dir() / "vocab.txt"
    parameters = {"table": "all-MiniLM-L6-v2 input token embeddings, not distilled", "dimensions": 384}
    manifest = {**embedder._manifest(vocab, "static", parameters, 0.0), "version": EMBEDDER_VERSION}
    onnx_bytes = static.static_graph(token_embedding_table()).SerializeToString()
    directory, _ = write_version(
        root, embedder.EMBEDDER_MODEL, EMBEDDER_VERSION, onnx_bytes, manifest, {"vocab.txt": vocab}
    )
    return directory


def install_embedder(models_root: Path, version: Path) -> Path:
    """Makes the embedder version part of `models_root` (a link: it is read only)."""
    target = models_root / embedder.EMBEDDER_MODEL / version.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(version, target_is_directory=True)
    return target


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory, embedder_version: Path) -> Path:
    root = tmp_path_factory.mktemp("models")
    install_embedder(root, embedder_version)
    return root


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
