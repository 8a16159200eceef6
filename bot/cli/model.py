"""`camel-bot train | eval | predict`: the CAMEL library on labelled CSV files, without Slack."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

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

    predict_parser = subparsers.add_parser("predict", help="predict labels for texts")
    predict_parser.add_argument("--adapter", required=True, help="adapter folder")
    predict_parser.add_argument("texts", nargs="+", help="texts to classify")
    predict_parser.add_argument("--json", action="store_true", help="print predictions as JSON lines")
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


def run_predict(args: argparse.Namespace) -> int:
    bad = _invalid_utf8(args.texts)
    if bad is not None:
        print(f"camel-bot predict: error: text argument {bad} is not valid UTF-8", file=sys.stderr)
        return 2
    import camel

    predictor = camel.Predictor(camel.load_adapter(args.adapter))
    for text, prediction in zip(args.texts, predictor.predict(args.texts)):
        if args.json:
            print(
                json.dumps(
                    {
                        "text": text,
                        "label": prediction.label,
                        "confidence": prediction.confidence,
                        "top3": prediction.top3,
                        "abstained": prediction.abstained,
                    }
                )
            )
            continue
        alternatives = ", ".join(f"{label} {score:.2f}" for label, score in prediction.top3[1:])
        marker = " (abstains)" if prediction.abstained else ""
        print(f"{prediction.label}\t{prediction.confidence:.3f}{marker}\t{text}\t[{alternatives}]")
    return 0


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
