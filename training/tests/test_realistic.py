"""The realistic evaluation set: it loads, fits its label spaces, keeps its shares, and is never
trained on (no text of it in any data set, `--data` refuses it, feedback skips it)."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from training import config
from training.datasets import airline, bitext, clinc150, realistic, team, tickets
from training.datasets.base import Example, dedupe_key


@pytest.fixture(scope="module")
def rows() -> list[realistic.Inquiry]:
    return realistic.load()


@pytest.fixture(scope="module")
def space() -> realistic.LabelSpace:
    return realistic.label_space()


def test_loads_with_unique_ids_and_texts(rows: list[realistic.Inquiry], space: realistic.LabelSpace) -> None:
    assert len(rows) >= space.shares["min_rows"]
    assert len({r.id for r in rows}) == len(rows)
    assert len({dedupe_key(r.text) for r in rows}) == len(rows)
    assert len({dedupe_key(r.body) for r in rows}) == len(rows)


def test_shares_hold(rows: list[realistic.Inquiry], space: realistic.LabelSpace) -> None:
    low, high = space.shares["out_of_scope"]
    assert low <= sum(r.intent == space.out_of_scope for r in rows) / len(rows) <= high
    assert sum(r.language != "en" for r in rows) / len(rows) >= space.shares["min_not_english"]
    languages = Counter(r.language for r in rows)
    assert set(languages) == set(space.languages) and min(languages.values()) >= 20
    assert {r.language for r in rows if r.intent == space.out_of_scope} == set(space.languages)
    intents = Counter(r.intent for r in rows)
    assert set(intents) == {*space.intents, space.out_of_scope}
    assert min(intents[i] for i in space.intents) >= 8
    for field, allowed in (
        ("channel", space.channels),
        ("sentiment", space.sentiments),
        ("urgency", space.urgencies),
    ):
        assert {getattr(r, field) for r in rows} == set(allowed), field


def test_every_row_fits_the_label_spaces(tmp_path: Path) -> None:
    good = json.loads(realistic.DATA.read_text(encoding="utf-8").splitlines()[0])
    bad = [
        {**good, "id": "x1", "intent": "where_is_my_parcel"},
        {**good, "id": "x2", "category": "REFUND"},
        {**good, "id": "x3", "intent": "out_of_scope"},  # still has a category
        {**good, "id": "x4", "urgency": "urgent"},
        {**good, "id": "x5", "department": "sales"},
        {**good, "id": "x6", "mood": "fine"},
        {**good, "id": "rs-0001"},  # the id of the first row again
    ]
    data = tmp_path / "inquiries.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [good, *bad]) + "\n", encoding="utf-8")
    with pytest.raises(realistic.RealisticSetError) as error:
        realistic.load(data)
    message = str(error.value)
    for number in range(2, 9):
        assert f"inquiries.jsonl:{number}:" in message
    assert "inquiries.jsonl:1:" not in message


def test_intents_and_categories_are_the_served_models(space: realistic.LabelSpace) -> None:
    """Bitext's intents with its category of each; and the production manifest's, where one exists."""
    path = config.datasets_dir() / bitext.SOURCE.local
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    with path.open(newline="", encoding="utf-8") as handle:
        mapping = {r["intent"]: r["category"] for r in csv.DictReader(handle)}
    assert space.intents == mapping
    for model, labels in (("intent", set(space.intents)), ("category", set(space.intents.values()))):
        for manifest in (config.models_dir() / model).glob("*/manifest.json"):
            assert set(json.loads(manifest.read_text())["labels"]) == labels, manifest


def test_departments_follow_the_routing_rules(rows: list[realistic.Inquiry], space: realistic.LabelSpace) -> None:
    rules = yaml.safe_load(config.routing_rules_path().read_text())
    assert set(space.departments) == set(rules["departments"])
    overridden = 0
    for row in rows:
        if row.intent == space.out_of_scope:
            expected = rules["default_department"]
        else:
            expected = rules["intents"].get(row.intent) or rules["categories"][space.intents[row.intent]]
        if row.department != expected:
            assert row.note, f"{row.id}: department {row.department} is not the rules' {expected} and has no note"
            overridden += 1
        else:
            assert row.note is None, f"{row.id}: a note without an override"
    assert overridden <= len(rows) // 20


def _dataset_texts() -> dict[str, list[Example]]:
    """Every row of every shipped data set (all splits), and CLINC150's official test when present."""
    loaded: dict[str, list[Example]] = {}
    for name, load in (
        ("bitext", lambda: bitext.load("intent", 0)),
        ("tickets", lambda: tickets.load("queue", 0)),
        ("airline", lambda: airline.load(0)),
        ("clinc150", lambda: clinc150.load(0)),
    ):
        try:
            split = load()
        except FileNotFoundError:
            continue
        loaded[name] = split.train + split.validation + split.test
    try:
        loaded["clinc150 official test"] = clinc150.official_test()
    except (OSError, ValueError):
        pass
    return loaded


def test_no_realistic_text_is_in_any_data_set(rows: list[realistic.Inquiry]) -> None:
    """Neither the same text (case and spacing aside) nor most of one: the set is original and
    no training split (nor any other split) holds it."""
    datasets = _dataset_texts()
    if not datasets:
        pytest.skip("no data set on this machine")
    keys = {dedupe_key(r.text) for r in rows} | {dedupe_key(r.body) for r in rows}
    matcher = realistic.Matcher(rows)
    for name, examples in datasets.items():
        assert not [e.text for e in examples if dedupe_key(e.text) in keys], name
        assert not [e.text for e in examples if e.text in matcher], name


def test_training_refuses_the_set_as_a_data_file(tmp_path: Path) -> None:
    spec = team.DataSpec(str(realistic.DATA), ("body",), "intent")
    with pytest.raises(team.DataFileError, match="realistic evaluation set"):
        team.read(spec)
    copy = tmp_path / "my-labels.jsonl"
    shutil.copy(realistic.DATA, copy)
    with pytest.raises(team.DataFileError, match="realistic evaluation set"):
        team.read(team.DataSpec(str(copy), ("body",), "intent"))


def test_matcher_knows_the_rows_after_clean(rows: list[realistic.Inquiry]) -> None:
    """Feedback texts are `clean`'s output: the subject, then the body without quoted history
    and signature; personal data redacted. Unrelated texts are not matched."""
    matcher = realistic.matcher()
    email = next(r for r in rows if r.id == "rs-0006")  # a reply above a quoted message
    own_words = email.body.split("\n\nOn Fri")[0].replace("Ellen", "").strip()
    assert f"{email.subject}\n\n{own_words}" in matcher
    addressed = next(r for r in rows if r.id == "rs-0053")  # an address and a phone number
    assert "07700 900461" in addressed.text
    assert addressed.text.replace("07700 900461", "[PHONE]") in matcher
    assert all(r.text in matcher for r in rows)
    assert "Where is my order? It was due on Monday and tracking has not moved since." not in matcher
    assert "how do I make an account for my mother" not in matcher


def test_clinc150_official_test_split_when_present() -> None:
    """The canonical file's official test split: 4,500 + 1,000 queries less the two that repeat
    a training query; its train and validation parts are the local copy's."""
    try:
        rows = clinc150.official_test()
    except (OSError, ValueError) as error:
        pytest.skip(f"the canonical CLINC150 file is not on this machine: {error}")
    counts = Counter(r.label == clinc150.OOS_LABEL for r in rows)
    assert counts == {False: 4498, True: 1000}
    assert clinc150.OFFICIAL.local_sha256 == clinc150.OFFICIAL.url_sha256 == clinc150.SOURCE.url_sha256
    train = {dedupe_key(r.text) for r in clinc150.load(0).train}
    assert not [r.text for r in rows if dedupe_key(r.text) in train]
    assert len({r.label for r in rows if r.label != clinc150.OOS_LABEL}) == 150
