"""`camel-bot train | eval | predict`: the CAMEL library on labelled CSV files, without Slack.

`predict` answers with `bot.serving.answer_texts`, the call the bot answers Slack messages with:
given `--task` and the bot's database, with the team's memory of that task (the label people gave
the same text) and otherwise the adapter with the task's floor and out-of-scope label (and its
text length limit), so the command line says what the bot would say.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.cli.data import _add_config, _add_db

import sqlite_utils

import storage

if TYPE_CHECKING:
    import camel
    from bot.memory import TeamMemory
    from bot.serving import BotAnswer

NO_DEFAULT = None


def register(subparsers: argparse._SubParsersAction) -> None:
    train_parser = subparsers.add_parser("train", help="train an adapter on a labelled CSV file")
    _data_arguments(train_parser)
    train_parser.add_argument("--out", required=True, help="adapter folder to write")
    train_parser.add_argument("--from", dest="from_adapter", help="continue from this adapter folder")
    train_parser.add_argument("--base-model", default="", help="local encoder folder (default: shipped MiniLM)")
    train_parser.add_argument("--trainable-layers", type=int, default=NO_DEFAULT, help="K: top blocks trained")
    train_parser.add_argument("--seed", type=int, default=NO_DEFAULT, help="random seed")
    train_parser.add_argument("--threads", type=int, default=NO_DEFAULT, help="torch threads for training")
    train_parser.add_argument("--epochs", type=int, default=NO_DEFAULT, help="maximum epochs")
    train_parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    train_parser.set_defaults(func=run_train)

    eval_parser = subparsers.add_parser("eval", help="evaluate an adapter on a labelled CSV file")
    eval_parser.add_argument("--adapter", required=True, help="adapter folder")
    _data_arguments(eval_parser)
    eval_parser.add_argument("--json", action="store_true", help="print the full evaluation as JSON")
    eval_parser.set_defaults(func=run_eval)

    predict_parser = subparsers.add_parser("predict", help="answer texts as the bot would")
    predict_parser.add_argument("--adapter", required=True, help="adapter folder")
    predict_parser.add_argument("texts", nargs="+", help="texts to classify")
    predict_parser.add_argument("--json", action="store_true", help="print answers as JSON lines")
    predict_parser.add_argument(
        "--task", help="answer as the bot answers this task: its floor and out-of-scope label, from the database"
    )
    predict_parser.add_argument(
        "--floor",
        metavar="P",
        help="lowest calibrated confidence, 0 to 1, at which a label is stated (default: the task's "
        "abstain_threshold with --task, else the adapter's own calibration)",
    )
    predict_parser.add_argument(
        "--out-of-scope-label",
        metavar="LABEL",
        help="the adapter's label meaning 'none of these' (default: the task's with --task, else none)",
    )
    _add_db(predict_parser)
    _add_config(predict_parser)
    predict_parser.set_defaults(func=run_predict)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="CSV file with a header row")
    parser.add_argument("--text-col", default="text", help="column holding the texts (default: text)")
    parser.add_argument("--label-col", default="label", help="column holding the labels (default: label)")


def run_train(args: argparse.Namespace) -> int:
    import camel
    from camel.data import read_labelled_csv

    texts, labels = read_labelled_csv(args.data, args.text_col, args.label_col)
    base = camel.load_base(args.base_model) if args.base_model else None
    init = camel.load_adapter(args.from_adapter, base) if args.from_adapter else None
    overrides = _given(base_model=args.base_model or None, trainable_layers=args.trainable_layers)
    # Continuing keeps the adapter's structure; an option that contradicts it is refused by train().
    config = camel.CamelConfig(**{**(init.config.to_dict() if init else {}), **overrides})
    training_args = camel.TrainingArgs(**_given(seed=args.seed, num_threads=args.threads, max_epochs=args.epochs))
    with _ProgressBar(enabled=not args.no_progress) as bar:
        result = camel.train(texts, labels, config=config, args=training_args, init=init, progress=bar.update)
    camel.save_adapter(result.adapter, args.out)
    summary = result.val_metrics.get("accuracy")
    accuracy = f", validation accuracy {summary:.3f}" if summary is not None else ""
    print(f"wrote {args.out}: {len(result.adapter.labels)} labels, {len(texts)} examples{accuracy}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import camel
    from camel.data import read_labelled_csv

    texts, labels = read_labelled_csv(args.data, args.text_col, args.label_col, min_labels=1)
    metrics = camel.evaluate(camel.load_adapter(args.adapter), texts, labels)
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
        return 0
    print(
        f"examples {metrics['n']}  accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
        f"weighted-F1 {metrics['weighted_f1']:.4f}"
    )
    worst = sorted(metrics["per_label"].items(), key=lambda item: item[1]["f1"])[:5]
    print("weakest labels: " + ", ".join(f"{name} (F1 {row['f1']:.2f})" for name, row in worst))
    for pair in metrics["confused_pairs"][:5]:
        print(f"confused: {pair['true']} -> {pair['predicted']} x{pair['count']}")
    return 0


def _invalid_utf8(texts: list[str]) -> int | None:
    """Position (1-based) of the first argument that is not valid UTF-8 (Python keeps such bytes
    as lone surrogates, which neither the tokenizer nor the terminal can take)."""
    for position, text in enumerate(texts, start=1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return position
    return None


class _BadFlag(Exception):
    """A predict option that cannot be used; its message is the one line the user sees."""


def _parse_floor(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        floor = float(value)
    except ValueError:
        floor = math.nan
    if not 0.0 <= floor <= 1.0:  # also refuses nan
        raise _BadFlag(f"--floor must be a number from 0 to 1, got {value!r}")
    return floor


@dataclass
class _Asked:
    """What `predict` answers with: the floor and out-of-scope label (flags winning over the task),
    the text length limit, and with --task the database and the team's memory of that task."""

    floor: float | None
    out_of_scope_label: str | None
    max_chars: int | None = None
    task: storage.Task | None = None
    db: sqlite_utils.Database | None = None
    memory: TeamMemory | None = None


def _task_settings(args: argparse.Namespace) -> _Asked:
    """The stored task's settings and memory, flags winning; without --task only the flags (and
    no length limit, no memory)."""
    floor = _parse_floor(args.floor)
    if not args.task:
        if args.db or args.config:
            raise _BadFlag("--db and --config are only used with --task")
        return _Asked(floor, args.out_of_scope_label)
    from bot.cli.data import _db_path, _existing_store
    from bot.memory import TeamMemory
    from bot.settings import load_settings

    settings = load_settings(args.config)
    db = _existing_store(_db_path(args, settings))
    try:
        task = storage.tasks.require_task(db, args.task)
    except storage.StorageError:
        db.close()
        raise
    task = dataclasses.replace(
        task, out_of_scope_label=task.out_of_scope_label if args.out_of_scope_label is None else args.out_of_scope_label
    )
    memory = TeamMemory(db, admin_weight=settings.admin_weight, near_similarity=settings.memory_near_similarity)
    return _Asked(
        task.abstain_threshold if floor is None else floor,
        task.out_of_scope_label,
        settings.max_predict_chars,
        task,
        db,
        memory,
    )


def run_predict(args: argparse.Namespace) -> int:
    bad = _invalid_utf8(args.texts)
    if bad is not None:
        print(f"camel-bot predict: error: text argument {bad} is not valid UTF-8", file=sys.stderr)
        return 2
    try:
        asked = _task_settings(args)
    except _BadFlag as exc:
        print(f"camel-bot predict: error: {exc}", file=sys.stderr)
        return 2
    try:
        return _predict(args, asked)
    finally:
        if asked.db is not None:
            asked.db.close()


def _predict(args: argparse.Namespace, asked: _Asked) -> int:
    import camel
    from bot.serving import BotAnswer, answer_texts

    adapter = camel.load_adapter(args.adapter)
    if args.out_of_scope_label is not None and args.out_of_scope_label not in adapter.labels:
        # A task's out-of-scope label may be new to its adapter (the bot then has none yet);
        # one given by hand that the adapter does not know is a typo.
        print(
            f"camel-bot predict: error: --out-of-scope-label {args.out_of_scope_label!r} is not one of the "
            f"adapter's labels ({', '.join(adapter.labels)})",
            file=sys.stderr,
        )
        return 2
    predictor = camel.Predictor(adapter)

    def model(texts: list[str]) -> list[camel.Answer]:
        return predictor.answer(texts, floor=asked.floor, out_of_scope_label=asked.out_of_scope_label)

    if asked.task is not None:
        # As the bot answers: the team's label for a text people labelled, else the adapter's.
        found = answer_texts(
            asked.task, list(args.texts), memory=asked.memory, serving=None, model=model, max_chars=asked.max_chars
        )
        answers = [a for a in found if a is not None]
    else:
        answers = [BotAnswer(a, "adapter", None) for a in model(list(args.texts))]
    for text, answer in zip(args.texts, answers):
        print(json.dumps(_answer_json(text, answer)) if args.json else _answer_line(text, answer))
    return 0


def _answer_json(text: str, found: BotAnswer) -> dict[str, Any]:
    answer = found.answer
    return {
        "source": found.source,  # "memory": the team's label for this text; "adapter": the model's
        "text": text,
        "outcome": answer.outcome,
        "label": answer.label,
        "stated": answer.stated,
        "confidence": answer.confidence,
        "threshold": answer.threshold,
        "top3": answer.top3,
        "abstained": answer.abstained,
    }


MARKERS = {"label": "", "abstain": " (abstains)", "out_of_scope": " (out of scope)"}


def _answer_line(text: str, found: BotAnswer) -> str:
    """The best in-scope label and its calibrated confidence, marked when the bot would not state it
    (or when it is the team's label for this text, not the model's)."""
    answer = found.answer
    if found.recall is not None:
        return f"{answer.label}\t{answer.confidence:.3f} (team's label, {found.recall.how})\t{text}\t[]"
    alternatives = ", ".join(f"{label} {score:.2f}" for label, score in answer.top3 if label != answer.label)
    return f"{answer.label}\t{answer.confidence:.3f}{MARKERS[answer.outcome]}\t{text}\t[{alternatives}]"


def _given(**values: Any) -> dict[str, Any]:
    """Only the options the user gave, so the dataclass defaults stay the one source of defaults."""
    return {name: value for name, value in values.items() if value is not None}


class _ProgressBar:
    """tqdm bar on stderr fed by train()'s progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, step: int, total: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", file=sys.stderr, desc="training")
        self.bar.n = step
        shown = {k: f"{v:.3f}" for k, v in metrics.items() if isinstance(v, float)}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.refresh()
