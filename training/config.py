"""Locations and defaults, all overridable from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def datasets_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


def models_dir() -> Path:
    return Path(os.environ.get("SWITCHBOARD_MODELS_DIR", REPO_ROOT / ".stack" / "models"))


def cache_dir() -> Path:
    """Downloads of canonical dataset copies; never part of the repository."""
    return Path(os.environ.get("SWITCHBOARD_CACHE_DIR", REPO_ROOT / ".stack" / "cache"))


def database_url() -> str | None:
    return os.environ.get("DATABASE_URL")


def registry_schema() -> str:
    return os.environ.get("SWITCHBOARD_REGISTRY_SCHEMA", "model_registry")


@dataclass(frozen=True)
class GatePolicy:
    """Promotion thresholds: a candidate must gain at least `min_macro_f1_gain` macro-F1 over
    production on the same held-out set and lose at most `max_recall_drop` recall on any class
    (a larger drop blocks when significant at `recall_drop_alpha`; 1.0 makes every drop count)."""

    min_macro_f1_gain: float = float(os.environ.get("SWITCHBOARD_GATE_MIN_GAIN", "0.005"))
    max_recall_drop: float = float(os.environ.get("SWITCHBOARD_GATE_MAX_RECALL_DROP", "0.05"))
    recall_drop_alpha: float = float(os.environ.get("SWITCHBOARD_GATE_RECALL_ALPHA", "0.05"))


@dataclass(frozen=True)
class OosPolicy:
    """Out-of-scope operating point: the threshold with the highest out-of-scope recall whose
    validation in-scope accuracy stays at or above this floor (the product requirement)."""

    min_in_scope_accuracy: float = float(os.environ.get("SWITCHBOARD_OOS_MIN_IN_SCOPE_ACCURACY", "0.93"))
