"""Locations and defaults, all overridable from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def app_schema() -> str:
    """The application schema holding the feedback sink's tables and the archived inquiries
    (storage/postgres.ts APP_SCHEMA); tests point it at a throwaway copy."""
    return os.environ.get("SWITCHBOARD_APP_SCHEMA", "switchboard")


def routing_rules_path() -> Path:
    """The routing rules `route` reads (config/settings.ts SWITCHBOARD_ROUTING_RULES)."""
    return Path(os.environ.get("SWITCHBOARD_ROUTING_RULES", REPO_ROOT / "config" / "routing-rules.yaml"))


def _env_float(name: str, default: float) -> Any:
    """A dataclass field read from the environment when the instance is made, not at import."""
    return field(default_factory=lambda: float(os.environ.get(name, default)))


@dataclass(frozen=True)
class GatePolicy:
    """Promotion thresholds: a candidate must gain at least `min_macro_f1_gain` macro-F1 over
    production on the same held-out set and lose at most `max_recall_drop` recall on any class
    (a larger drop blocks when significant at `recall_drop_alpha`; 1.0 makes every drop count).

    On the `feedback` evaluation split (held-out human labels), a candidate whose accuracy is more
    than `max_feedback_drop` below production's is refused when that loss is significant at
    `recall_drop_alpha` as well. A candidate whose labels differ from production's (a new
    taxonomy), or the first version trained on a team's file, cannot be compared with production:
    its test accuracy must beat the majority class's by `new_taxonomy_min_gain` and its macro-F1
    reach `new_taxonomy_min_macro_f1`.

    A retraining on human labels is for the traffic the labels come from, which the base held-out
    set may not have: a candidate that misses the margin there passes it on the feedback split
    instead when its macro-F1 on the base held-out set is at most `max_base_loss_for_live_gain`
    below production's and its accuracy on the held-out feedback rows is at least
    `min_macro_f1_gain` higher, significantly (McNemar at `recall_drop_alpha`). The per-class
    recall rule still holds on the base set."""

    min_macro_f1_gain: float = _env_float("SWITCHBOARD_GATE_MIN_GAIN", 0.005)
    max_recall_drop: float = _env_float("SWITCHBOARD_GATE_MAX_RECALL_DROP", 0.05)
    recall_drop_alpha: float = _env_float("SWITCHBOARD_GATE_RECALL_ALPHA", 0.05)
    max_feedback_drop: float = _env_float("SWITCHBOARD_GATE_MAX_FEEDBACK_DROP", 0.02)
    max_base_loss_for_live_gain: float = _env_float("SWITCHBOARD_GATE_MAX_BASE_LOSS_FOR_LIVE_GAIN", 0.005)
    new_taxonomy_min_gain: float = _env_float("SWITCHBOARD_GATE_NEW_TAXONOMY_MIN_GAIN", 0.10)
    new_taxonomy_min_macro_f1: float = _env_float("SWITCHBOARD_GATE_NEW_TAXONOMY_MIN_MACRO_F1", 0.5)


@dataclass(frozen=True)
class OosPolicy:
    """Out-of-scope operating point: the threshold with the highest out-of-scope recall whose
    validation in-scope accuracy stays at or above this floor (the product requirement)."""

    min_in_scope_accuracy: float = float(os.environ.get("SWITCHBOARD_OOS_MIN_IN_SCOPE_ACCURACY", "0.93"))
    # The served intent model's rule (Target.oos_rule "loss"): the validation in-scope accuracy
    # may fall at most this far below the accuracy without a threshold.
    max_in_scope_loss: float = float(os.environ.get("SWITCHBOARD_OOS_MAX_IN_SCOPE_LOSS", "0.02"))
