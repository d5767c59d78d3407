"""Contrastive fine-tuning of all-MiniLM-L6-v2 on a target's own training rows, for the encoder
family (`train --family encoder --fine-tune`).

A class-balanced sample of the training rows is paired with other rows of the same label and
trained with the multiple-negatives-ranking loss (softmax over the scaled cosine similarities of
each anchor to every positive of its batch); every batch holds distinct labels, so no in-batch
negative shares the anchor's label. The result is a weights file with the package's own tensor
names and shapes: `encoder.py`'s numpy ONNX builder exports it unchanged, so the served graph and
its parity checks are the frozen encoder's.

PyTorch and sentence-transformers are optional (training/requirements-finetune.txt) and imported
only here; the base weights are the pinned package's, read offline, nothing comes from a model hub.
The fine-tuned weights are cached under the cache directory by recipe (rows, parameters, seed,
library versions), so training the same target again reuses them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from training.datasets.base import OOS_LABEL, sha256_file
from training.models.encoder import MAX_LENGTH, WEIGHTS_SHA256, weights_dir

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
RECIPE_FILE = "recipe.json"
INSTALL_HINT = "fine-tuning needs PyTorch and sentence-transformers: pip install -r training/requirements-finetune.txt"


@dataclass(frozen=True)
class FineTuneParams:
    """`rows`: class-balanced sample of the training rows, each an anchor once per epoch; about
    5 minutes of two CPU cores per 4,000 rows and epoch."""

    rows: int = 4000
    epochs: int = 1
    batch_size: int = 32  # pairs per batch, at most one per label
    learning_rate: float = 2e-5
    warmup: float = 0.1  # share of the steps with a linearly rising learning rate
    scale: float = 20.0  # cosine similarities times this are the loss's logits
    threads: int = 2


@dataclass(frozen=True)
class FineTuned:
    weights: dict[str, np.ndarray]
    sha256: str  # of the weights file
    description: dict[str, Any]  # the recipe and what training measured, for the manifest


def available() -> bool:
    try:
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def balanced_sample(texts: list[str], labels: list[str], rows: int, seed: int) -> list[tuple[str, str]]:
    """Up to `rows` (text, label) pairs, as many per label as the smallest share allows and then
    round-robin; out-of-scope rows are left out (they share no intent, so no pair of them is a
    positive). Deduplicated, in a seed-determined order."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in sorted(set(zip(texts, labels, strict=True))):
        if label != OOS_LABEL:
            by_label[label].append(text)
    rng = random.Random(seed)
    for label in sorted(by_label):
        rng.shuffle(by_label[label])
    chosen: list[tuple[str, str]] = []
    depth = 0
    while len(chosen) < rows and any(len(v) > depth for v in by_label.values()):
        for label in sorted(by_label):
            if len(by_label[label]) > depth and len(chosen) < rows:
                chosen.append((by_label[label][depth], label))
        depth += 1
    return chosen


def pair_batches(sample: list[tuple[str, str]], batch_size: int, rng: random.Random) -> list[list[tuple[str, str]]]:
    """One epoch: each sampled text as an anchor with a different text of its label as the
    positive, in batches of distinct labels (a label with a single text has no pair)."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in sample:
        by_label[label].append(text)
    queues: dict[str, list[tuple[str, str]]] = {}
    for label, texts in sorted(by_label.items()):
        if len(texts) < 2:
            continue
        positives = texts[1:] + texts[:1]  # a rotation of a shuffled list: never the anchor itself
        pairs = list(zip(texts, positives, strict=True))
        rng.shuffle(pairs)
        queues[label] = pairs
    batches = []
    while queues:
        labels = sorted(queues, key=lambda label: (-len(queues[label]), rng.random()))[:batch_size]
        batches.append([queues[label].pop() for label in labels])
        queues = {label: pairs for label, pairs in queues.items() if pairs}
    rng.shuffle(batches)
    return batches


def _library_versions() -> dict[str, str]:
    import sentence_transformers
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
    }


def fine_tune(
    texts: list[str], labels: list[str], params: FineTuneParams, seed: int, cache_root: Path
) -> FineTuned:
    """Fine-tuned MiniLM weights for these training rows (from the cache when the recipe matches)."""
    if not available():
        raise ModuleNotFoundError(INSTALL_HINT)
    sample = balanced_sample(texts, labels, params.rows, seed)
    recipe = {
        "base": "all-MiniLM-L6-v2",
        "base_weights_sha256": WEIGHTS_SHA256,
        "loss": "multiple negatives ranking, batches of distinct labels",
        **asdict(params),
        "seed": seed,
        "sampled_rows": len(sample),
        "labels": len({label for _, label in sample}),
        "sample_sha256": hashlib.sha256(json.dumps(sample).encode()).hexdigest(),
        **_library_versions(),
    }
    recipe.pop("threads")  # how fast, not what
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    directory = cache_root / "finetuned-minilm" / key[:16]
    weights_path = directory / WEIGHTS_FILE
    if weights_path.exists() and (directory / RECIPE_FILE).exists():
        description = json.loads((directory / RECIPE_FILE).read_text(encoding="utf-8"))
        log.info("fine-tuned MiniLM weights from the cache: %s", directory)
    else:
        started = time.perf_counter()
        weights, measured = _train(sample, params, seed)
        description = {**recipe, **measured, "seconds": round(time.perf_counter() - started, 1)}
        directory.mkdir(parents=True, exist_ok=True)
        scratch = directory / f".{WEIGHTS_FILE}.partial"
        save_file(weights, str(scratch))
        scratch.replace(weights_path)
        recipe_text = json.dumps(description, indent=1, sort_keys=True) + "\n"
        (directory / RECIPE_FILE).write_text(recipe_text, encoding="utf-8")
    sha256 = sha256_file(weights_path)
    return FineTuned(load_file(str(weights_path)), sha256, {**description, "weights_sha256": sha256})


def _train(
    sample: list[tuple[str, str]], params: FineTuneParams, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    os.environ["HF_HUB_OFFLINE"] = "1"  # the base weights are the package's files; never a download
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(seed)
    torch.set_num_threads(params.threads)
    base_dir = weights_dir()
    model = SentenceTransformer(str(base_dir), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_LENGTH  # as served (the package's config says 256)
    rng = random.Random(seed)
    epochs = [pair_batches(sample, params.batch_size, rng) for _ in range(params.epochs)]
    steps = sum(len(batches) for batches in epochs)
    warmup = max(1, int(steps * params.warmup))
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / max(1, steps - warmup)))
    )
    model.train()
    losses: list[float] = []
    step = 0
    for epoch, batches in enumerate(epochs):
        for batch in batches:
            anchors = model(model.preprocess([a for a, _ in batch]))["sentence_embedding"]
            positives = model(model.preprocess([p for _, p in batch]))["sentence_embedding"]
            scores = params.scale * anchors @ positives.T  # both unit-norm: cosine similarities
            loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(batch)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if step % 25 == 0 or step == steps:
                log.info("fine-tuning epoch %d step %d/%d: loss %.4f", epoch + 1, step, steps, np.mean(losses[-25:]))
    base = load_file(str(base_dir / WEIGHTS_FILE))
    state = model[0].auto_model.state_dict()
    weights = {
        name: (state[name].detach().cpu().numpy() if name in state else tensor).astype(tensor.dtype)
        for name, tensor in base.items()
    }
    for name, tensor in weights.items():
        if tensor.shape != base[name].shape:
            raise ValueError(f"fine-tuned tensor {name} has shape {tensor.shape}, the package's {base[name].shape}")
    kept = sorted(name for name in base if name not in state)
    measured = {
        "steps": steps,
        "loss_first_25": round(float(np.mean(losses[:25])), 4),
        "loss_last_25": round(float(np.mean(losses[-25:])), 4),
        "unchanged_tensors": kept,
    }
    return weights, measured
