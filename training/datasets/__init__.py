"""Dataset adapters. Each returns a deduplicated, stratified Split for a fixed seed."""

from training.datasets.base import OOS_LABEL, Example, Split

__all__ = ["OOS_LABEL", "Example", "Split"]
