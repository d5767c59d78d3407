"""What each CLI task trains: a task is a group of targets; a target is one registry model,
i.e. one dataset and label column (the processors consume one production model per target)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from training.datasets import airline, bitext, clinc150, tickets
from training.datasets.base import Source, Split


@dataclass(frozen=True)
class Target:
    model: str
    task: str
    source: Source
    load: Callable[[int, int | None], Split]
    oos: bool = False  # validation/test carry out-of-scope rows; an operating threshold is chosen


TARGETS: dict[str, Target] = {
    t.model: t
    for t in (
        Target("intent", "intent", bitext.SOURCE, lambda seed, limit: bitext.load("intent", seed, limit)),
        Target("category", "intent", bitext.SOURCE, lambda seed, limit: bitext.load("category", seed, limit)),
        Target("intent-clinc150", "intent", clinc150.SOURCE, clinc150.load, oos=True),
        Target("sentiment", "sentiment", airline.SOURCE, airline.load),
        Target(
            "urgency", "urgency", tickets.SOURCE, lambda seed, limit: tickets.load("priority", seed, limit)
        ),
        Target(
            "department", "department", tickets.SOURCE, lambda seed, limit: tickets.load("queue", seed, limit)
        ),
    )
}
TASKS: list[str] = sorted({t.task for t in TARGETS.values()})


def targets_for(task: str) -> list[Target]:
    return [t for t in TARGETS.values() if t.task == task]
