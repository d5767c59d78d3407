"""`python -m training <command>`: migrate, train, defaults, multilingual-defaults, export-embedder, export-toxicity, urgency-fit,
evaluate, promote, reject, rollback, models. With `--json` (train, promote, reject, rollback) stdout carries one JSON
object per line and nothing else; logs and progress go to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from threadpoolctl import threadpool_limits

from training import config, feedback, limits
from training.artifacts import ArtifactError, latest_versions
from training.augment import DEFAULT_RATE, AugmentParams
from training.datasets import Split, team
from training.datasets.base import Source
from training.defaults import HEAD_MARGIN, MULTILINGUAL_MODELS, Outcome, ensure_defaults, ensure_multilingual_defaults
from training.embedder import DEFAULT_KIND, EMBEDDER_MODEL, KINDS, export_embedder, register_embedder
from training.toxicity import TOXICITY_MODEL, export_toxicity, register_toxicity
from training.evaluation import (
    HeldOutMismatch,
    evaluate_on,
    held_out_split,
    majority_baseline,
)
from training.models.finetune import INSTALL_HINT, FineTuneParams
from training.models.finetune import available as finetune_available
from training.pipeline import FAMILIES, Trainer
from training.predictor import Predictor
from training.gate import Decision
from training.promotion import run_gate
from training.registry import Registry, RegistryError, flat_numbers, trained_numbers
from training.tasks import TARGETS, TASKS, Target, targets_for

log = logging.getLogger("training")
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _model_name(value: str) -> str:
    if not MODEL_NAME.match(value):
        raise argparse.ArgumentTypeError(f"{value!r}: a model name is lower-case letters, digits, '-' and '_'")
    return value


def _augment_rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from error
    if not 0 < rate <= 1:
        raise argparse.ArgumentTypeError(f"the augmentation rate is a share in (0, 1], got {value}")
    return rate


def _json_object(what: str, strings: bool = False) -> Any:
    def parse(value: str) -> dict[str, Any]:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"{what} is not JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise argparse.ArgumentTypeError(f"{what} must be a JSON object")
        if strings and not all(isinstance(v, str) for v in parsed.values()):
            raise argparse.ArgumentTypeError(f"{what}'s values must be strings")
        return parsed

    return parse


def _emit(args: argparse.Namespace, event: dict[str, Any], human: str) -> None:
    """One result: a JSON line with --json, else the human line."""
    print(json.dumps(event, ensure_ascii=False, default=str) if getattr(args, "json", False) else human, flush=True)


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
    """Registry models a command acts on: --model by name (a team's own model too), else the task's."""
    if getattr(args, "model", None):
        return [args.model]
    return [t.model for t in _targets(args)]


def cmd_migrate(_: argparse.Namespace) -> int:
    applied = Registry.open().migrate()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def _team_target(
    args: argparse.Namespace, registry: Registry | None
) -> tuple[Target, Split, dict[str, Any], dict[str, str]]:
    """The team's file as a target of model --model (task: the known model's, else its name)."""
    spec = team.DataSpec(
        str(Path(args.data).resolve()), tuple(args.text_column), args.label_column, args.language_column
    )
    log.info("reading %s", spec.path)
    data = team.read(spec)
    split = team.split(data, args.seed, args.limit)
    known = TARGETS.get(args.model)
    target = Target(
        args.model,
        known.task if known else args.model,
        Source(local=spec.path, local_sha256=data.sha256, url=""),
        lambda seed, limit: team.split(data, seed, limit),
    )
    production = registry.production(args.model) if registry else None
    if production is not None and set(production.manifest["labels"]) != set(split.labels) and not args.new_taxonomy:
        old = set(production.manifest["labels"])
        raise ValueError(
            f"the labels of {spec.path} differ from production {args.model}@{production.version}'s "
            f"(new: {sorted(set(split.labels) - old)}, gone: {sorted(old - set(split.labels))}); the gate "
            "cannot compare the two: pass --new-taxonomy to train a new label set (judged against the majority "
            "class and the routing rules instead)"
        )
    dataset = {"data": data.provenance(), "new_taxonomy": bool(args.new_taxonomy)}
    lineage = {
        "data_path": spec.path,
        "data_sha256": data.sha256,
        "data_rows": str(data.rows),
        "data_columns": ",".join([*spec.text_columns, spec.label_column]),
    }
    return target, split, dataset, lineage


def _training_sets(
    args: argparse.Namespace, registry: Registry | None
) -> Iterator[tuple[Target, Split | None, dict[str, Any], dict[str, str]]]:
    """Per target: the split to train on (None: the target's own), manifest `dataset` extras, lineage."""
    trigger: dict[str, str] = {"trigger": "manual", **(args.trigger or {})}
    if args.data:
        sets = [_team_target(args, registry)]
    else:
        sets = [(t, None, {}, {}) for t in _targets(args)]
    for target, split, dataset, lineage in sets:
        lineage = {**trigger, **lineage}
        if args.with_feedback:
            split = split or target.load(args.seed, args.limit)
            split, dataset, lineage = _with_feedback(target, split, registry, dataset, lineage)
        yield target, split, dataset, lineage


def _with_feedback(
    target: Target, split: Split, registry: Registry | None, dataset: dict[str, Any], lineage: dict[str, str]
) -> tuple[Split, dict[str, Any], dict[str, str]]:
    if registry is not None:
        rows = feedback.load(registry.conn, target.model, split)
    else:
        url = config.database_url()
        if not url:
            raise ValueError("--with-feedback reads the labels from PostgreSQL: DATABASE_URL is not set")
        with psycopg.connect(url, row_factory=dict_row) as conn:
            rows = feedback.load(conn, target.model, split)
    log.info(
        "%s feedback: %d rows for training, %d held out as the feedback split; skipped: %s",
        target.model,
        len(rows.train),
        len(rows.evaluation),
        ", ".join(f"{reason} {n}" for reason, n in rows.skipped.items()) or "none",
    )
    if not rows.rows:
        log.warning("%s: no usable feedback rows; training on the base data alone", target.model)
    trained = replace(split, train=split.train + [r.example() for r in rows.train])
    return trained, {**dataset, "feedback": rows.manifest()}, {**lineage, **rows.lineage()}


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
    fine_tuning = FineTuneParams() if args.fine_tune else None
    trainer = Trainer(config.models_dir(), seed=args.seed, limit=args.limit, registry=lookup, fine_tune=fine_tuning)
    for target, split, dataset, lineage in _training_sets(args, registry or lookup):
        for trained in trainer.train(target, families, split, dataset, lineage, _augment(args, target)):
            relative = str(trained.directory.relative_to(config.models_dir()))
            _emit(
                args,
                {
                    "event": "trained",
                    "model": trained.model,
                    "task": trained.manifest["task"],
                    "version": trained.version,
                    "family": trained.family,
                    "artifact_path": relative,
                    "metrics": trained_numbers(trained.manifest),
                    "lineage": trained.manifest["lineage"],
                },
                f"trained {trained.model}@{trained.version} -> {trained.directory}",
            )
            if registry is None:
                continue
            registry.register(trained.manifest, relative)
            decision = run_gate(
                registry, trained.model, trained.version, config.GatePolicy(), config.models_dir(), shadow=args.shadow
            )
            _emit_decision(args, trained.model, trained.version, decision)
    return 0


def _augment(args: argparse.Namespace, target: Target) -> AugmentParams | None:
    """--augment's rate, none with --no-augment, else the target's default (Bitext's: on)."""
    if args.no_augment:
        return None
    return AugmentParams(rate=args.augment) if args.augment is not None else target.default_augment()


HUMAN_ACTIONS = {"promoted": "PROMOTED", "shadow_started": "SHADOW", "rejected": "rejected"}


def _emit_decision(args: argparse.Namespace, model: str, version: str, decision: Decision) -> None:
    _emit(
        args,
        {
            "event": "evaluated",
            "model": model,
            "version": version,
            "decision": decision.action,
            "reason": decision.reason,
            "numbers": flat_numbers(decision.numbers),
        },
        f"  {HUMAN_ACTIONS[decision.action]}: {decision.reason}",
    )


def _give_production_versions(args: argparse.Namespace, ensure: Callable[..., list[Outcome]]) -> int:
    """`defaults` and `multilingual-defaults`: one line per model's outcome, exit 1 if any failed."""
    registry = _registry()
    trainer = Trainer(config.models_dir(), seed=args.seed, registry=registry)

    def report(outcome: Outcome) -> None:
        print(f"{outcome.model}: {outcome.message}", flush=True)

    outcomes = ensure(registry, trainer, config.models_dir(), config.GatePolicy(), report)
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_defaults(args: argparse.Namespace) -> int:
    return _give_production_versions(args, ensure_defaults)


def cmd_multilingual_defaults(args: argparse.Namespace) -> int:
    return _give_production_versions(args, ensure_multilingual_defaults)


def cmd_export_embedder(args: argparse.Namespace) -> int:
    registry = None if args.no_register else _registry()
    exported = export_embedder(config.models_dir(), args.kind)
    status = "exported" if exported.created else "unchanged"
    print(f"{status} {EMBEDDER_MODEL}@{exported.version} -> {exported.directory}")
    if registry is not None:
        row = register_embedder(registry, exported, config.models_dir())
        print(f"  registered {EMBEDDER_MODEL}@{row.version}: {row.stage}")
    return 0


def cmd_urgency_fit(args: argparse.Namespace) -> int:
    from training import urgency

    out = Path(args.out) if args.out else urgency.COMBINATION_FILE
    result = urgency.write_combination(Path(args.features), out)
    fitted = result["fitted_on"]
    weights = ", ".join(f"{f} {w:+.2f}" for f, w in zip(result["features"], result["weights"], strict=True))
    print(
        f"wrote {out}: {fitted['rows']} rows, L2 {fitted['l2']}; out of fold ({result['folds']['k']} folds): "
        f"accuracy {fitted['out_of_fold']['accuracy']:.4f}, macro-F1 {fitted['out_of_fold']['macro_f1']:.4f}\n"
        f"  weights: {weights}\n  thresholds: {', '.join(f'{t:.2f}' for t in result['thresholds'])}"
    )
    return 0


def cmd_export_toxicity(args: argparse.Namespace) -> int:
    registry = None if args.no_register else _registry()
    exported = export_toxicity(config.models_dir())
    status = "exported" if exported.created else "unchanged"
    point = exported.manifest["operating_point"]
    covered = exported.manifest["metrics"]["test_covered_languages"]
    print(
        f"{status} {TOXICITY_MODEL}@{exported.version} -> {exported.directory}\n"
        f"  threshold {point['threshold']:.4f}; English test precision {covered['precision']:.3f} "
        f"recall {covered['recall']:.3f} F1 {covered['f1']:.3f} (n {covered['n']})"
    )
    if registry is not None:
        row = register_toxicity(registry, exported, config.models_dir())
        print(f"  registered {TOXICITY_MODEL}@{row.version}: {row.stage}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    registry = _registry()
    if args.after_shadow:
        before = registry.promote_shadow(args.model, args.version, args.reason, args.numbers or {})
        _emit(
            args,
            {
                "event": "promoted",
                "model": args.model,
                "version": args.version,
                "production_before": before,
                "reason": args.reason,
                "numbers": flat_numbers(args.numbers or {}),
            },
            f"{args.model}@{args.version}: PROMOTED from shadow (production before: {before or 'none'}): "
            + args.reason,
        )
        return 0
    if args.version:
        pending = [(args.model, args.version)]
    else:
        pending = [
            (str(v["model"]), str(v["version"]))
            for model in _models(args)
            for v in registry.versions(model)
            if v["stage"] == "candidate"
        ]
    for model, version in pending:
        decision = run_gate(
            registry, model, version, config.GatePolicy(), config.models_dir(), shadow=args.shadow
        )
        if args.json:
            _emit_decision(args, model, version, decision)
        else:
            print(f"{model}@{version}: {HUMAN_ACTIONS[decision.action]}: {decision.reason}")
    if not pending and not args.json:
        print("no candidates")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    registry = _registry()
    stage = registry.reject(args.model, args.version, args.reason, args.numbers or {})
    _emit(
        args,
        {
            "event": "rejected",
            "model": args.model,
            "version": args.version,
            "stage_before": stage,
            "reason": args.reason,
            "numbers": flat_numbers(args.numbers or {}),
        },
        f"{args.model}@{args.version}: rejected ({stage} -> archived): {args.reason}",
    )
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    registry = _registry()
    failed = False
    for model in _models(args):
        try:
            current, previous = registry.rollback(model)
            _emit(
                args,
                {"event": "rolled_back", "model": model, "from": current, "to": previous},
                f"{model}: {current} -> {previous}",
            )
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
    what = train.add_mutually_exclusive_group()
    what.add_argument("--task", choices=TASKS)
    what.add_argument("--defaults", action="store_true", help="the same as the `defaults` command")
    train.add_argument(
        "--model",
        type=_model_name,
        help=f"only this model ({', '.join(sorted(TARGETS))}); with --data any name, a new one included",
    )
    train.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    train.add_argument("--limit", type=int, help="train on a class-balanced slice of N rows")
    train.add_argument(
        "--fine-tune",
        action="store_true",
        help="the encoder family fine-tunes MiniLM contrastively on the target's training rows first "
        "(minutes; needs pip install -r training/requirements-finetune.txt)",
    )
    augmentation = train.add_mutually_exclusive_group()
    augmentation.add_argument(
        "--augment",
        type=_augment_rate,
        nargs="?",
        const=DEFAULT_RATE,
        metavar="RATE",
        help=f"add a customer-style copy (typos, chat style, greetings, order numbers, ...) of this share of "
        f"the training rows, never of validation or test (default share {DEFAULT_RATE}; training/augment.py); "
        "intent and category do so unless --no-augment",
    )
    augmentation.add_argument(
        "--no-augment", action="store_true", help="train on the training rows as loaded (no customer-style copies)"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-register", action="store_true", help="write the version directory only")
    train.add_argument(
        "--with-feedback",
        action="store_true",
        help="add the human-labelled feedback from PostgreSQL to the training rows (deduplicated, labels "
        "resolved, never a held-out text; 20%% held out as the gate's feedback split from 30 rows on)",
    )
    train.add_argument(
        "--shadow",
        action="store_true",
        help="a candidate that passes the gate becomes the shadow version, not production",
    )
    train.add_argument(
        "--data", help="a team's own labelled file, .csv (header row) or .jsonl, instead of the built-in data set"
    )
    train.add_argument(
        "--text-column",
        action="append",
        default=[],
        help="--data's text column; repeat for several (joined with a blank line, e.g. subject then body)",
    )
    train.add_argument("--label-column", help="--data's label column")
    train.add_argument("--language-column", help="--data's ISO 639-1 language column (default: every row en)")
    train.add_argument(
        "--new-taxonomy",
        action="store_true",
        help="--data's labels may differ from production's: judged against the majority class and the routing rules",
    )
    train.add_argument(
        "--trigger",
        type=_json_object("--trigger", strings=True),
        help='JSON object of strings recorded in the lineage, e.g. {"trigger":"drift","drift":"..."}',
    )
    train.add_argument("--max-seconds", type=float, help="stop with an error after this much wall time")
    train.add_argument("--max-memory-mb", type=int, help="cap the address space (RLIMIT_AS) at this many MB")
    train.add_argument("--json", action="store_true", help="JSON lines on stdout (trained, evaluated), logs on stderr")
    train.set_defaults(run=cmd_train)

    defaults = commands.add_parser(
        "defaults",
        help="give every model the pipeline serves (intent, category, sentiment, urgency, embedder, toxicity) a "
        "production version: export the embedder, then train the linear and head families where there "
        f"is none and promote the head if its validation macro-F1 is within {HEAD_MARGIN} of linear's",
    )
    defaults.add_argument("--seed", type=int, default=0)
    defaults.set_defaults(run=cmd_defaults)

    multilingual_defaults = commands.add_parser(
        "multilingual-defaults",
        help=f"give classify's models for inquiries not in English ({', '.join(MULTILINGUAL_MODELS)}) a production "
        "version where they have none: export the multilingual embedder, train the head family, run the gate "
        "(minutes: `up` runs it in the background)",
    )
    multilingual_defaults.add_argument("--seed", type=int, default=0)
    multilingual_defaults.set_defaults(run=cmd_multilingual_defaults)

    embedder = commands.add_parser(
        "export-embedder",
        help="write the knowledge base's sentence embedder (default: the static table distilled from "
        "all-MiniLM-L6-v2) as model `embedder` and put it in production; identical bytes reuse the "
        "existing version",
    )
    embedder.add_argument("--kind", choices=KINDS, default=DEFAULT_KIND, help=f"which embedder (default {DEFAULT_KIND})")
    embedder.add_argument("--no-register", action="store_true", help="write the version directory only")
    embedder.set_defaults(run=cmd_export_embedder)

    toxicity = commands.add_parser(
        "export-toxicity",
        help="convert the reply guardrail's pre-trained toxicity classifier (alt-profanity-check) to "
        "ONNX as model `toxicity`, its threshold chosen on the held-out set's validation rows, and put "
        "it in production; identical bytes reuse the existing version",
    )
    toxicity.add_argument("--no-register", action="store_true", help="write the version directory only")
    toxicity.set_defaults(run=cmd_export_toxicity)

    urgency_fit = commands.add_parser(
        "urgency-fit",
        help="fit urgency's combination (processors/urgency/combination.json) on the realistic set's urgency "
        "labels, cross-validated, from the inputs `npm run eval -- --urgency-features <file>` wrote",
    )
    urgency_fit.add_argument("--features", required=True, help="the feature file npm run eval wrote")
    urgency_fit.add_argument("--out", default=None, help="where to write the weights (default: the served file)")
    urgency_fit.set_defaults(run=cmd_urgency_fit)

    evaluate = commands.add_parser(
        "evaluate", help="held-out metrics of the newest versions, via onnxruntime"
    )
    evaluate.add_argument("--task", choices=TASKS)
    evaluate.add_argument("--model", choices=sorted(TARGETS))
    evaluate.set_defaults(run=cmd_evaluate)

    promote = commands.add_parser(
        "promote",
        help="run the gate for a version, or for all candidates; --after-shadow: the shadow version to production",
    )
    promote.add_argument("--task", choices=TASKS)
    promote.add_argument("--model", type=_model_name)
    promote.add_argument("--version")
    promote.add_argument("--shadow", action="store_true", help="a passing candidate becomes the shadow version")
    promote.add_argument(
        "--after-shadow", action="store_true", help="promote the shadow --version (the shadow evaluation passed)"
    )
    promote.add_argument(
        "--numbers", type=_json_object("--numbers"), help="JSON object: the shadow evaluation's numbers"
    )
    promote.add_argument("--reason", help="why (required with --after-shadow)")
    promote.add_argument("--json", action="store_true", help="JSON lines on stdout")
    promote.set_defaults(run=cmd_promote)

    reject = commands.add_parser("reject", help="archive a shadow or candidate version, recording why")
    reject.add_argument("--model", type=_model_name, required=True)
    reject.add_argument("--version", required=True)
    reject.add_argument("--reason", required=True)
    reject.add_argument("--numbers", type=_json_object("--numbers"), help="JSON object of the numbers behind it")
    reject.add_argument("--json", action="store_true", help="a JSON line on stdout")
    reject.set_defaults(run=cmd_reject)

    rollback = commands.add_parser("rollback", help="restore the previous production version")
    rollback.add_argument("--task", choices=TASKS)
    rollback.add_argument("--model", type=_model_name)
    rollback.add_argument("--json", action="store_true", help="a JSON line on stdout")
    rollback.set_defaults(run=cmd_rollback)

    models = commands.add_parser("models", help="list registered versions, or a model's gate decisions")
    models.add_argument("--model", type=_model_name)
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


def _check(args: argparse.Namespace) -> str | None:
    """What is wrong with a combination of options, if anything."""
    if args.command == "promote":
        if args.version and not args.model:
            return "--version needs --model"
        if args.after_shadow and not (args.version and args.reason):
            return "--after-shadow needs --model, --version and --reason"
        if (args.numbers or args.reason) and not args.after_shadow:
            return "--numbers and --reason go with --after-shadow"
    if args.command != "train":
        return None
    if args.defaults:
        new = (
            args.with_feedback,
            args.shadow,
            args.data,
            args.trigger,
            args.new_taxonomy,
            args.json,
            args.fine_tune,
            args.augment is not None,
            args.no_augment,
        )
        if args.model or args.limit or args.no_register or args.family != "all" or any(new):
            return "--defaults takes no other option than --seed"
        return None
    if args.data:
        if not args.model or args.task:
            return "--data needs --model NAME (and no --task)"
        if not args.text_column or not args.label_column:
            return "--data needs --text-column (one or more) and --label-column"
    elif args.text_column or args.label_column or args.language_column or args.new_taxonomy:
        return "--text-column, --label-column, --language-column and --new-taxonomy go with --data"
    elif not (args.task or args.model):
        return "train needs --task, --model or --defaults"
    elif args.model and args.model not in TARGETS:
        return f"unknown model {args.model!r} ({', '.join(sorted(TARGETS))}); a new one needs --data"
    if args.fine_tune and args.family not in ("encoder", "ensemble"):
        return "--fine-tune goes with --family encoder or ensemble"
    if args.fine_tune and not finetune_available():
        return INSTALL_HINT
    if args.with_feedback and args.no_register and not config.database_url():
        return "--with-feedback reads the labels from PostgreSQL: DATABASE_URL is not set"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    problem = _check(args)
    if problem:
        parser().error(problem)
    if args.command == "rollback" and not (args.task or args.model):
        parser().error("rollback needs --task or --model")
    if args.command == "models" and args.decisions and not args.model:
        parser().error("--decisions needs --model")
    logging.basicConfig(
        level=python_log_level(os.environ.get("LOG_LEVEL", "info")),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    limits.end_with_parent()
    try:
        # BLAS thread count changes float summation order; one thread makes training reproducible.
        with (
            threadpool_limits(limits=1),
            limits.bounded(getattr(args, "max_seconds", None), getattr(args, "max_memory_mb", None)),
        ):
            return int(args.run(args))
    except limits.LimitExceeded as error:
        return _failed(args, str(error), error.exit_code, error.kind)
    except (
        RegistryError,
        ArtifactError,
        HeldOutMismatch,
        FileNotFoundError,
        ModuleNotFoundError,
        ValueError,
        psycopg.Error,
    ) as error:
        return _failed(args, str(error), 1)


def _failed(args: argparse.Namespace, message: str, code: int, limit: str | None = None) -> int:
    """Logs the failure; with --json also a last stdout line `{"event":"failed",...}`."""
    log.error("%s", message)
    if getattr(args, "json", False):
        print(json.dumps({"event": "failed", "error": message, "limit": limit, "exit_code": code}), flush=True)
    return code
