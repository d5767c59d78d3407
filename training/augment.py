"""Customer-style copies of training rows: the same label, the text as customers write it.

Bitext's requests are clean templates with `{{Order Number}}`-style placeholders; customers type
in lower case with typos, abbreviations and no punctuation, put a greeting and a subject around
the request, quote order numbers, names and dates, and add sentences that say nothing about what
they want. `augmented` adds one such copy for a share (`rate`) of the training rows and keeps the
originals. Only the training rows: validation and test stay as loaded, so held-out figures and
the choices made on validation measure the data set, not the noise.

The copies look like what `classify` receives, not like the raw message: `clean`
(processors/clean.ts, text/quotes.ts) cuts an "On … wrote:" quoted history, a signature block
under "Best regards," or "Thanks,\\nName", "Sent from my phone" and disclaimers, and replaces
addresses and phone numbers with `[EMAIL]` / `[PHONE]`; the model input is the subject, a blank
line and that text (processors/feedback.ts `modelInput`). So a copy may carry a greeting line,
a subject, a lone "Thanks!" or an inline "thanks, Maria" (all kept by `clean`) and placeholders,
never a quoted message or a signature block, which classify never sees.

Deterministic: each row's copy comes from its own generator seeded by (seed, index, text), so
the same rows and seed give the same copies in any process."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from training.datasets.base import Example, Split, dedupe_key

# Bump when the generator changes: the version's recorded parameters then name a new recipe.
AUGMENTATION_VERSION = 1
# Share of the training rows given a copy when `defaults` trains (training/README.md, "Augmentation").
DEFAULT_RATE = 0.5


@dataclass(frozen=True)
class AugmentParams:
    rate: float = DEFAULT_RATE  # share of the training rows that get one customer-style copy
    typo_rate: float = 0.04  # per word of four letters or more, in a copy that has typos

    def __post_init__(self) -> None:
        if not 0 < self.rate <= 1:
            raise ValueError(f"augmentation rate must be in (0, 1], got {self.rate}")

    def describe(self) -> dict[str, Any]:
        return {"version": AUGMENTATION_VERSION, "rate": self.rate, "typo_rate": self.typo_rate}

    def lineage(self) -> str:
        return f"customer-style v{AUGMENTATION_VERSION} rate {self.rate} typos {self.typo_rate}"


FIRST_NAMES = ("Maria", "John", "Aisha", "Tom", "Lena", "Carlos", "Priya", "Mike", "Sophie", "Daniel", "Yuki", "Ana")
LAST_NAMES = ("Lopez", "Smith", "Khan", "Becker", "Nguyen", "Rossi", "Walsh", "Silva", "Martin", "O'Brien")
CITIES = ("Leeds", "Austin", "Lyon", "Porto", "Munich", "Toronto", "Dublin", "Seville", "Denver", "Cardiff")
COUNTRIES = ("Canada", "Germany", "Spain", "Ireland", "the UK", "France", "Portugal", "Australia", "the US")
ACCOUNT_KINDS = ("premium", "business", "standard", "free", "family", "gold", "pro", "basic", "personal")
CURRENCIES = ("$", "€", "£")
MONTHS = ("Jan", "Feb", "March", "April", "May", "June", "July", "Aug", "Sept", "Oct", "Nov", "Dec")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _order_number(rng: random.Random) -> str:
    number = rng.randint(10000, 99999)
    return rng.choice((f"{number}", f"#{number}", f"no. {number}", f"HH-{number}", f"{rng.randint(100, 999)}-{number}"))


def _name(rng: random.Random) -> str:
    first = rng.choice(FIRST_NAMES)
    return first if rng.random() < 0.4 else f"{first} {rng.choice(LAST_NAMES)}"


def _date(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{rng.randint(1, 28)} {rng.choice(MONTHS)}",
            f"{rng.choice(MONTHS)} {rng.randint(1, 28)}",
            f"{rng.randint(1, 28)}/{rng.randint(1, 12)}",
            f"last {rng.choice(WEEKDAYS)}",
            f"on {rng.choice(WEEKDAYS)}",
            "yesterday",
            "a week ago",
        )
    )


PLACEHOLDER = re.compile(r"\{\{([^}]+)\}\}")


def fill_placeholders(text: str, rng: random.Random) -> str:
    """Bitext's `{{Order Number}}`, `{{Person Name}}`, … as values a customer would write."""

    def value(match: re.Match[str]) -> str:
        kind = match.group(1).strip().lower()
        if kind == "order number":
            return _order_number(rng)
        if kind == "invoice number":
            return f"INV-{rng.randint(2024, 2026)}-{rng.randint(1000, 9999)}"
        if kind == "person name":
            return _name(rng)
        if kind in ("account type", "account category"):
            return rng.choice(ACCOUNT_KINDS)
        if kind == "refund amount":
            return f"{rng.randint(5, 400)}" + rng.choice(("", f".{rng.randint(0, 99):02d}"))
        if kind == "currency symbol":
            return rng.choice(CURRENCIES)
        if kind == "delivery city":
            return rng.choice(CITIES)
        if kind == "delivery country":
            return rng.choice(COUNTRIES)
        return "it"

    return PLACEHOLDER.sub(value, text)


# Sentences that say who is writing or why now, and nothing about what is wanted.
def _context(rng: random.Random) -> str:
    return rng.choice(
        (
            f"My name is {_name(rng)}.",
            f"This is {_name(rng)}.",
            "I'm writing from my phone, sorry for any typos.",
            "Sorry if this is the wrong place to ask.",
            "I've been a customer for a few years now.",
            "Hope you're having a good day.",
            "It's the second time I'm writing about this.",
            "I tried the website first but couldn't figure it out.",
            "My account email is [EMAIL].",
            "You can reach me on [PHONE].",
            f"I placed an order {_date(rng)}.",
            f"Order {_order_number(rng)}.",
            "Quick question.",
            "I'm not very good with computers.",
            f"I'm in {rng.choice(CITIES)} if that matters.",
            "My husband usually handles this but he's away.",
            "I need this sorted soon please.",
        )
    )


GREETINGS = ("Hi,", "Hello,", "Hi there,", "Hello team,", "Dear Sir or Madam,", "Good morning,", "Hey,", "Dear support,")
SUBJECTS = ("Question", "Help please", "Urgent", "My order", "Account", "Support request", "Query", "hello", "?")


def _subject(rng: random.Random) -> str:
    return rng.choice((*SUBJECTS, f"Order {_order_number(rng)}", f"About my message from {_date(rng)}"))


def _sign_off(rng: random.Random) -> str:
    return rng.choice(("Thanks!", "Thank you.", "Thanks in advance", "thx", f"thanks, {_name(rng)}", f"- {rng.choice(FIRST_NAMES)}"))


ABBREVIATIONS = (
    (re.compile(r"\bplease\b", re.I), ("pls", "plz", "please")),
    (re.compile(r"\bthanks\b", re.I), ("thx", "thanks")),
    (re.compile(r"\byou\b", re.I), ("u", "you")),
    (re.compile(r"\byour\b", re.I), ("ur", "your")),
    (re.compile(r"\byou're\b", re.I), ("ur", "youre")),
    (re.compile(r"\bbecause\b", re.I), ("bc", "cause", "because")),
    (re.compile(r"\bI don't know\b", re.I), ("idk",)),
)
QWERTY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    near: dict[str, str] = {}
    for r, row in enumerate(QWERTY_ROWS):
        for c, key in enumerate(row):
            keys = [row[i] for i in (c - 1, c + 1) if 0 <= i < len(row)]
            keys += [QWERTY_ROWS[o][c] for o in (r - 1, r + 1) if 0 <= o < len(QWERTY_ROWS) and c < len(QWERTY_ROWS[o])]
            near[key] = "".join(keys)
    return near


NEIGHBOURS = _neighbours()
WORD = re.compile(r"[A-Za-z]{4,}")


def _typo(word: str, rng: random.Random) -> str:
    """A keyboard-neighbour substitution, a dropped, doubled or transposed letter, inside the word."""
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        near = NEIGHBOURS.get(word[i].lower())
        return word[:i] + rng.choice(near) + word[i + 1 :] if near else word
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    return WORD.sub(lambda m: _typo(m.group(0), rng) if rng.random() < rate else m.group(0), text)


def abbreviate(text: str, rng: random.Random) -> str:
    for pattern, forms in ABBREVIATIONS:
        text = pattern.sub(lambda _: rng.choice(forms), text)
    return text


def chat_surface(text: str, rng: random.Random) -> str:
    """Lower case, apostrophes gone, most punctuation dropped."""
    text = text.lower().replace("'", "").replace("’", "")
    if rng.random() < 0.7:
        text = re.sub(r"[.,!;:]+(?=\s|$)", "", text)
    if rng.random() < 0.5:
        text = re.sub(r"\?+$", "", text)
    return text


def customer_style(text: str, rng: random.Random, params: AugmentParams) -> str:
    """One customer-style rendering of a request, as classify would receive it after `clean`."""
    request = fill_placeholders(text, rng)
    channel = rng.choices(("chat", "email", "ticket", "api"), weights=(0.45, 0.35, 0.12, 0.08))[0]
    if channel == "chat":
        body = request
        if rng.random() < 0.3:
            body = f"{rng.choice(('hi', 'hello', 'hey', 'hi there'))} {body}"
        if rng.random() < 0.2:
            body = f"{body} {_context(rng)}"
        body = chat_surface(abbreviate(body, rng), rng)
        return add_typos(body, params.typo_rate * 1.5, rng)
    if channel == "ticket":
        fields = [f"Order: {_order_number(rng)}"] if rng.random() < 0.6 else []
        fields.append(f"Issue: {add_typos(request, params.typo_rate, rng)}")
        return "\n".join(fields)
    if channel == "api":
        return add_typos(chat_surface(request, rng), params.typo_rate, rng)
    sentences = [request[0].upper() + request[1:] if request else request]
    for _ in range(rng.choice((0, 1, 1, 2))):
        sentences.insert(rng.randrange(len(sentences) + 1), _context(rng))
    if rng.random() < 0.4:
        sentences = [abbreviate(s, rng) for s in sentences]
    if rng.random() < 0.3:
        sentences = [s.replace("'", "") for s in sentences]
    lines = [rng.choice(GREETINGS), "", " ".join(sentences)] if rng.random() < 0.7 else [" ".join(sentences)]
    if rng.random() < 0.5:
        lines += ["", _sign_off(rng)]
    body = add_typos("\n".join(lines), params.typo_rate, rng)
    return f"{_subject(rng)}\n\n{body}" if rng.random() < 0.5 else body


def _copies(rows: list[Example], params: AugmentParams, seed: int, taken: set[str]) -> list[Example]:
    """A customer-style copy of a `rate` share of `rows`, none whose text is in `taken` (which
    gains each copy's)."""
    copies: list[Example] = []
    for index, row in enumerate(rows):
        rng = random.Random(f"{seed}\x00{index}\x00{row.text}")
        if rng.random() >= params.rate:
            continue
        text = customer_style(row.text, rng, params)
        key = dedupe_key(text)
        if text.strip() and key not in taken:
            taken.add(key)
            copies.append(replace(row, text=text))
    return copies


def augmented(split: Split, params: AugmentParams, seed: int) -> Split:
    """The split with customer-style copies added to its training rows (labels and language kept).
    A copy equal to a training, validation or test text (case and spacing aside) is left out, so
    no held-out text is trained on."""
    taken = {dedupe_key(r.text) for part in (split.train, split.validation, split.test) for r in part}
    return replace(split, train=split.train + _copies(split.train, params, seed, taken))


def held_out_copies(split: Split, part: Literal["validation", "test"], seed: int) -> list[Example]:
    """One customer-style copy of each of the split's validation or test rows (none equal to any
    row of the split): held-out rows as customers would write them, which the out-of-scope
    operating point of a head is chosen and reported on (training/pipeline.py)."""
    taken = {dedupe_key(r.text) for rows in (split.train, split.validation, split.test) for r in rows}
    # Their own seeds: a validation row's copy is not the one `augmented` would train on.
    offset = {"validation": 1, "test": 2}[part]
    return _copies(getattr(split, part), AugmentParams(rate=1.0), seed + offset, taken)
