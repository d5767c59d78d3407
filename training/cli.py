"""`python -m training <command>`: migrate, train, defaults, export-embedder, evaluate, promote,
rollback, models."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from threadpoolctl import threadpool_limits

from training import config
from training.artifacts import ArtifactError, latest_versions
from training.datasets import Split
from training.defaults import HEAD_MARGIN, Outcome, ensure_defaults
from training.embedder import DEFAULT_KIND, EMBEDDER_MODEL, KINDS, export_embedder, register_embedder
from training.evaluation import (
    HeldOutMismatch,
    evaluate_on,
    held_out_split,
    majority_baseline,
)
from training.pipeline import FAMILIES, Trainer
from training.predictor import Predictor
from training.promotion import run_gate
from training.registry import Registry, RegistryError
from training.tasks import TARGETS, TASKS, Target, targets_for

log = logging.getLogger("training")


def _registry() -> Registry:
    registry = Registry.open()
    applied = registry.migrate()
    if applied:
        log.info("registry migrations applied: %s", ", ".join(applied))
    return registry


def _targets(args: argparse.Namespace) -> list[Target]:
    if getattr(args, "model", None):
        return [TARGETS[args.model]]
    return targets_for(args.task) if getattr(args, "task", None) else list(TARGETS.values())


def _models(args: argparse.Namespace) -> list[str]:
    """Registry models a command acts on: the trained targets, and the embedder by name."""
    if getattr(args, "model", None) == EMBEDDER_MODEL:
        return [EMBEDDER_MODEL]
    return [t.model for t in _targets(args)]


def cmd_migrate(_: argparse.Namespace) -> int:
    applied = Registry.open().migrate()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.defaults:
        return cmd_defaults(args)
    registry = None if args.no_register else _registry()  # fail before hours of training, not after
    families = list(FAMILIES) if args.family == "all" else [args.family]
    # Heads pin the registry's production embedder whenever there is a registry, so that a head
    # written with --no-register is one serving can use too (read only: no migrations).
    lookup = registry
    if lookup is None and "head" in families and config.database_url():
        lookup = Registry.open()
    trainer = Trainer(config.models_dir(), seed=args.seed, limit=args.limit, registry=lookup)
    for target in _targets(args):
        for trained in trainer.train(target, families):
            print(f"trained {trained.model}@{trained.version} -> {trained.directory}")
            if registry is None:
                continue
            registry.register(trained.manifest, str(trained.directory.relative_to(config.models_dir())))
            decision = run_gate(
                registry, trained.model, trained.version, config.GatePolicy(), config.models_dir()
            )
            print(f"  {'PROMOTED' if decision.promote else 'rejected'}: {decision.reason}")
    return 0


def cmd_defaults(args: argparse.Namespace) -> int:
    registry = _registry()
    trainer = Trainer(config.models_dir(), seed=args.seed, registry=registry)

    def report(outcome: Outcome) -> None:
        print(f"{outcome.model}: {outcome.message}", flush=True)

    outcomes = ensure_defaults(registry, trainer, config.models_dir(), config.GatePolicy(), report)
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_export_embedder(args: argparse.Namespace) -> int:
    registry = None if args.no_register else _registry()
    exported = export_embedder(config.models_dir(), args.kind)
    status = "exported" if exported.created else "unchanged"
    print(f"{status} {EMBEDDER_MODEL}@{exported.version} -> {exported.directory}")
    if registry is not None:
        row = register_embedder(registry, exported, config.models_dir())
        print(f"  registered {EMBEDDER_MODEL}@{row.version}: {row.stage}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    registry = _registry()
    if args.version:
        pending = [(args.model, args.version)]
    else:
        pending = [
            (str(v["model"]), str(v["version"]))
            for t in _targets(args)
            for v in registry.versions(t.model)
            if v["stage"] == "candidate"
        ]
    for model, version in pending:
        decision = run_gate(registry, model, version, config.GatePolicy(), config.models_dir())
        print(f"{model}@{version}: {'PROMOTED' if decision.promote else 'rejected'}: {decision.reason}")
    if not pending:
        print("no candidates")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    registry = _registry()
    failed = False
    for model in _models(args):
        try:
            current, previous = registry.rollback(model)
            print(f"{model}: {current} -> {previous}")
        except RegistryError as error:
            print(f"{model}: {error}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def cmd_models(args: argparse.Namespace) -> int:
    registry = _registry()
    if args.decisions:
        rows = [
            [
                str(d["decided_at"])[:19],
                d["action"],
                str(d["candidate_version"] or "-"),
                str(d["production_version"] or "-"),
                d["reason"],
            ]
            for d in registry.decisions(args.model)
        ]
        print(_table(["decided at", "action", "candidate", "production before", "reason"], rows))
        return 0
    table = [
        [
            str(r["model"]),
            str(r["version"]),
            str(r["family"]),
            str(r["stage"]),
            _fmt(r["accuracy"]),
            _fmt(r["macro_f1"]),
            _fmt(r["ece"]),
        ]
        for r in registry.versions(args.model)
    ]
    print(_table(["model", "version", "family", "stage", "accuracy", "macro-F1", "ECE"], table))
    return 0


EVALUATION_HEADER = [
    "task",
    "model",
    "family",
    "version (* production)",
    "n",
    "accuracy",
    "macro-F1",
    "ECE uncal -> cal",
    "oos recall",
    "in-scope acc @thr",
]


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Held-out metrics through onnxruntime: per model, the majority-class baseline and, per
    family, the production version if it is of that family, else the newest version."""
    production: dict[str, str] = {}
    if config.database_url():
        registry = _registry()
        production = {t.model: p.version for t in TARGETS.values() if (p := registry.production(t.model))}
    rows: list[list[str]] = []
    for target in _targets(args):
        versions = latest_versions(config.models_dir(), target.model)
        if target.model in production:
            current = config.models_dir() / target.model / production[target.model]
            versions[current.name.split("-")[1]] = current
        rows += _evaluation_rows(target, versions, production.get(target.model))
    print(_table(EVALUATION_HEADER, rows))
    return 0


def _evaluation_rows(target: Target, versions: dict[str, Path], production: str | None) -> list[list[str]]:
    rows: list[list[str]] = []
    splits: dict[tuple[object, ...], Split] = {}
    for family, directory in sorted(versions.items()):
        prefix = [target.task, target.model]
        try:
            predictor = Predictor(directory)
            dataset = predictor.manifest["dataset"]
            key = (dataset["seed"], dataset["limit"])
            split = splits[key] = splits.get(key) or held_out_split(predictor.manifest)
            result = evaluate_on(predictor, split)
        except (ArtifactError, HeldOutMismatch) as error:
            rows.append([*prefix, family, directory.name, "error", str(error)[:80], "", "", "", ""])
            continue
        if not any(row[2] == "majority" for row in rows):
            base = majority_baseline(split)
            rows.append(
                [
                    *prefix,
                    "majority",
                    "-",
                    str(base["n"]),
                    _fmt(base["accuracy"]),
                    _fmt(base["macro_f1"]),
                    "-",
                    "-",
                    "-",
                ]
            )
        ece_before = predictor.manifest["calibration"]["test_ece"]["before"]
        rows.append(
            [
                *prefix,
                family,
                directory.name + (" *" if directory.name == production else ""),
                str(result["n"]),
                _fmt(result["accuracy"]),
                _fmt(result["macro_f1"]),
                f"{_fmt(ece_before)} -> {_fmt(result['ece'])}",
                _fmt(result.get("oos_recall")),
                _fmt(result.get("in_scope_accuracy_at_threshold")),
            ]
        )
    return rows


def _fmt(value: object) -> str:
    return "-" if value is None else f"{float(value):.4f}"  # type: ignore[arg-type]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = (
        [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
        if rows
        else [len(h) for h in header]
    )
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def parser() -> argparse.ArgumentParser:
    # `switchboard train ...` runs this CLI and names itself in the usage lines.
    prog = os.environ.get("SWITCHBOARD_TRAINING_PROG", "python -m training")
    root = argparse.ArgumentParser(prog=prog, description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    commands.add_parser("migrate", help="create or upgrade the registry tables").set_defaults(run=cmd_migrate)

    train = commands.add_parser("train", help="train, register as candidate, run the promotion gate")
    what = train.add_mutually_exclusive_group(required=True)
    what.add_argument("--task", choices=TASKS)
    what.add_argument("--defaults", action="store_true", help="the same as the `defaults` command")
    train.add_argument("--model", choices=sorted(TARGETS), help="only this model of the task")
    train.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    train.add_argument("--limit", type=int, help="train on a class-balanced slice of N rows")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-register", action="store_true", help="write the version directory only")
    train.set_defaults(run=cmd_train)

    defaults = commands.add_parser(
        "defaults",
        help="give every model the pipeline serves (intent, category, sentiment, urgency, embedder) a "
        "production version: export the embedder, then train the linear and head families where there "
        f"is none and promote the head if its validation macro-F1 is within {HEAD_MARGIN} of linear's",
    )
    defaults.add_argument("--seed", type=int, default=0)
    defaults.set_defaults(run=cmd_defaults)

    embedder = commands.add_parser(
        "export-embedder",
        help="write the knowledge base's sentence embedder (default: the static table distilled from "
        "all-MiniLM-L6-v2) as model `embedder` and put it in production; identical bytes reuse the "
        "existing version",
    )
    embedder.add_argument("--kind", choices=KINDS, default=DEFAULT_KIND, help=f"which embedder (default {DEFAULT_KIND})")
    embedder.add_argument("--no-register", action="store_true", help="write the version directory only")
    embedder.set_defaults(run=cmd_export_embedder)

    evaluate = commands.add_parser(
        "evaluate", help="held-out metrics of the newest versions, via onnxruntime"
    )
    evaluate.add_argument("--task", choices=TASKS)
    evaluate.add_argument("--model", choices=sorted(TARGETS))
    evaluate.set_defaults(run=cmd_evaluate)

    promote = commands.add_parser("promote", help="run the gate for a version, or for all candidates")
    promote.add_argument("--task", choices=TASKS)
    promote.add_argument("--model", choices=sorted(TARGETS))
    promote.add_argument("--version")
    promote.set_defaults(run=cmd_promote)

    rollback = commands.add_parser("rollback", help="restore the previous production version")
    rollback.add_argument("--task", choices=TASKS)
    rollback.add_argument("--model", choices=sorted([*TARGETS, EMBEDDER_MODEL]))
    rollback.set_defaults(run=cmd_rollback)

    models = commands.add_parser("models", help="list registered versions, or a model's gate decisions")
    models.add_argument("--model", choices=sorted([*TARGETS, EMBEDDER_MODEL]))
    models.add_argument("--decisions", action="store_true", help="the decision history of --model")
    models.set_defaults(run=cmd_models)
    return root


# LOG_LEVEL is shared with the Node processes, which use pino's level names.
_PINO_LEVELS = {
    "trace": "DEBUG",
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "error": "ERROR",
    "fatal": "CRITICAL",
    "silent": "CRITICAL",
}


def python_log_level(name: str) -> str:
    return _PINO_LEVELS.get(name.lower(), name.upper())


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "promote" and args.version and not args.model:
        parser().error("--version needs --model")
    if args.command == "train" and args.defaults and (
        args.model or args.limit or args.no_register or args.family != "all"
    ):
        parser().error("--defaults takes no other option than --seed")
    if args.command == "rollback" and not (args.task or args.model):
        parser().error("rollback needs --task or --model")
    if args.command == "models" and args.decisions and not args.model:
        parser().error("--decisions needs --model")
    logging.basicConfig(
        level=python_log_level(os.environ.get("LOG_LEVEL", "info")),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        # BLAS thread count changes float summation order; one thread makes training reproducible.
        with threadpool_limits(limits=1):
            return int(args.run(args))
    except (
        RegistryError,
        ArtifactError,
        HeldOutMismatch,
        FileNotFoundError,
        ModuleNotFoundError,
        ValueError,
    ) as error:
        log.error("%s", error)
        return 1
