"""Customer-style augmentation (augment.py): reproducible, labels kept, training rows only, no
held-out text trained on, and recorded in the version it trains."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from training import cli, defaults
from training import embedder as embedder_module
from training.augment import AugmentParams, augmented, customer_style, fill_placeholders, held_out_copies
from training.datasets.base import Example, Split, dedupe_key
from training.config import GatePolicy
from training.pipeline import Trainer
from training.registry import Registry
from training.tasks import TARGETS
from training.tests.conftest import SLICE, token_embedding_table

TEMPLATES = (
    ("I want to cancel order {{Order Number}}, it is too expensive.", "cancel_order"),
    ("Can you tell me where my refund of {{Currency Symbol}}{{Refund Amount}} is?", "track_refund"),
    ("how do I open a {{Account Type}} account for {{Person Name}}?", "create_account"),
    ("I'd like to change the shipping address to {{Delivery City}}, please.", "change_shipping_address"),
    ("Please help me, I don't know how to reset my password.", "recover_password"),
)


def _split(n: int = 200) -> Split:
    rows = [Example(f"{text} ({i})", label) for i in range(n) for text, label in TEMPLATES]
    validation = [Example(f"validation: {t}", label) for t, label in TEMPLATES]
    test = [Example(f"test: {t}", label) for t, label in TEMPLATES]
    return Split("templates", rows, validation, test, sorted({label for _, label in TEMPLATES}))


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    split, params = _split(), AugmentParams(rate=0.5)
    first, again = augmented(split, params, seed=0), augmented(split, params, seed=0)
    assert first.train == again.train
    assert augmented(split, params, seed=1).train != first.train


def test_labels_languages_and_originals_untouched() -> None:
    split = _split()
    result = augmented(split, AugmentParams(rate=1.0), seed=0)
    assert result.train[: len(split.train)] == split.train
    copies = result.train[len(split.train) :]
    # Every row gets a copy unless it collides with a text already there; collisions are rare.
    assert len(copies) > 0.95 * len(split.train)
    source = {dedupe_key(f"{t} ({i})"): label for i in range(200) for t, label in TEMPLATES}
    by_label = {label: [c for c in copies if c.label == label] for _, label in TEMPLATES}
    assert all(len(rows) > 150 for rows in by_label.values())
    assert all(c.language == "en" for c in copies)
    # A copy keeps its row's label: the row number in the text says which row it came from.
    for copy in copies:
        number = copy.text.rsplit("(", 1)[-1].split(")")[0].strip()
        template = next(t for t, label in TEMPLATES if label == copy.label)
        assert source[dedupe_key(f"{template} ({number})")] == copy.label


def test_only_training_rows_are_augmented_and_no_held_out_text_is_trained_on() -> None:
    split = _split()
    # A training row whose copy could equal a held-out text must not bring it into training.
    held_out = {dedupe_key(r.text) for r in split.validation + split.test}
    result = augmented(split, AugmentParams(rate=1.0), seed=0)
    assert result.validation == split.validation and result.test == split.test
    assert result.labels == split.labels
    assert not held_out & {dedupe_key(r.text) for r in result.train}
    keys = [dedupe_key(r.text) for r in result.train]
    assert len(keys) == len(set(keys))


def test_copy_equal_to_a_held_out_text_is_left_out() -> None:
    split = _split(n=1)
    rng_copies = augmented(split, AugmentParams(rate=1.0), seed=0).train[len(split.train) :]
    leaked = replace(split, test=split.test + [Example(rng_copies[0].text, rng_copies[0].label)])
    assert rng_copies[0].text not in {r.text for r in augmented(leaked, AugmentParams(rate=1.0), seed=0).train}


def test_held_out_copies_are_one_per_held_out_row_and_no_row_of_the_split() -> None:
    split = _split()
    every_text = {dedupe_key(r.text) for r in split.train + split.validation + split.test}
    for part in ("validation", "test"):
        copies = held_out_copies(split, part, seed=0)
        originals = getattr(split, part)
        assert 0 < len(copies) <= len(originals)
        assert {r.label for r in copies} <= {r.label for r in originals}
        assert not every_text & {dedupe_key(r.text) for r in copies}
        assert held_out_copies(split, part, seed=0) == copies
    # Not the copies the training rows would get: validation's and test's draw their own.
    assert {r.text for r in held_out_copies(split, "validation", 0)} != {r.text for r in held_out_copies(split, "test", 0)}


def test_rate_is_the_share_of_rows_copied() -> None:
    split = _split(n=400)
    for rate in (0.2, 0.5):
        copies = len(augmented(split, AugmentParams(rate=rate), seed=0).train) - len(split.train)
        assert abs(copies / len(split.train) - rate) < 0.04
    with pytest.raises(ValueError):
        AugmentParams(rate=0.0)
    with pytest.raises(ValueError):
        AugmentParams(rate=1.5)


def test_copies_look_like_what_classify_receives() -> None:
    rng = random.Random(0)
    filled = fill_placeholders("order {{Order Number}} for {{Person Name}} in {{Delivery City}}", rng)
    assert "{{" not in filled and "}}" not in filled
    texts = [customer_style(t, random.Random(i), AugmentParams()) for i in range(300) for t, _ in TEMPLATES]
    assert not any("{{" in t for t in texts)
    # clean cuts quoted history and signature blocks, so the copies never carry them.
    assert not any("wrote:" in t or "\n>" in t or "regards" in t.lower() for t in texts)
    assert sum(t == t.lower() for t in texts) > 0.3 * len(texts)  # chat style is common
    assert sum("\n\n" in t for t in texts) > 0.1 * len(texts)  # a subject or greeting line
    assert any(" u " in f" {t} " or " pls " in f" {t} " or " ur " in f" {t} " for t in texts)
    assert any(t.startswith(("Hi,", "Hello,", "Dear", "Good morning", "Hey,")) or "\n\nHi" in t for t in texts)


def test_the_version_records_the_augmentation(models_root: Path) -> None:
    params = AugmentParams(rate=0.5)
    base = TARGETS["sentiment"].load(0, SLICE)
    trainer = Trainer(models_root, seed=0, limit=SLICE)
    (version,) = trainer.train(TARGETS["sentiment"], ["linear"], augment=params)
    manifest = version.manifest
    copies = len(augmented(base, params, 0).train) - len(base.train)
    assert manifest["parameters"]["augmentation"] == params.describe()
    assert manifest["dataset"]["augmentation"] == {**params.describe(), "rows": len(base.train), "copies": copies}
    assert manifest["dataset"]["sizes"]["train"] == len(base.train) + copies
    assert manifest["dataset"]["digests"]["validation"] == base.digest("validation")
    assert manifest["dataset"]["digests"]["test"] == base.digest("test")
    assert manifest["lineage"]["augmentation"] == params.lineage()
    (plain,) = trainer.train(TARGETS["sentiment"], ["linear"])
    assert plain.manifest["parameters"]["augmentation"] is None
    assert "augmentation" not in plain.manifest["lineage"]
    assert plain.manifest["dataset"]["digests"]["train"] == base.digest("train")


def test_cli_rate_and_the_targets_default() -> None:
    parser = cli.parser()

    def chosen(*options: str, model: str = "intent") -> AugmentParams | None:
        return cli._augment(parser.parse_args(["train", "--model", model, *options]), TARGETS[model])

    # Bitext's targets are augmented unless asked otherwise; the others only when asked.
    assert chosen() == AugmentParams() and chosen(model="category") == AugmentParams()
    assert chosen(model="sentiment") is None and chosen(model="intent-clinc150") is None
    assert chosen("--no-augment") is None
    assert chosen("--augment") == AugmentParams()
    assert chosen("--augment", "0.3", model="sentiment") == AugmentParams(rate=0.3)
    for wrong in (["--augment", "2"], ["--augment", "0"], ["--augment", "--no-augment"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--model", "intent", *wrong])


def test_defaults_augment_bitext_targets_only(registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`defaults` trains intent and category (Bitext's templates) with copies, sentiment without."""
    monkeypatch.setattr(embedder_module, "static_table", lambda corpus, threads=2: token_embedding_table())
    monkeypatch.setattr(defaults, "PIPELINE_MODELS", ("category", "sentiment"))
    assert [m for m, t in TARGETS.items() if t.augment_by_default] == ["intent", "category"]
    trainer = Trainer(tmp_path, limit=SLICE, registry=registry)
    outcomes = defaults.ensure_defaults(registry, trainer, tmp_path, GatePolicy(), lambda _: None)
    assert all(o.ok for o in outcomes), outcomes
    for model, expected in (("category", AugmentParams().describe()), ("sentiment", None)):
        for row in registry.versions(model):
            manifest = registry.version(model, str(row["version"])).manifest
            assert manifest["parameters"]["augmentation"] == expected, (model, row["family"])
            assert ("augmentation" in manifest["lineage"]) == (expected is not None)
