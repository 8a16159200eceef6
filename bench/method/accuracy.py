"""Accuracy benchmark: CAMEL (K = 0, 1, 2 and the shipped default) against three baselines.

Every method sees the same training texts: 10 per class (seeds 0, 1, 2; mean and spread) and
the full training split. CAMEL's train_s is the micro-training round on cached bottom states
(the bot computes those states when it first predicts a message); the one-time bottom pass
over the training set is measured separately and reported next to it.
"""

from __future__ import annotations

import fcntl
import functools
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from bench.common import (
    DATASETS,
    RESULTS,
    Dataset,
    benchmark_parser,
    folder_mb,
    load_average,
    load_dataset,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    sample_per_class,
    shared_data,
    stopwatch,
    write_results,
)
from camel import CamelConfig, FeatureCache, TrainingArgs, load_base, save_adapter, train
from camel.evaluation import metrics_from_predictions

METHODS = ("camel_k0", "camel_k1", "camel_k2", "camel", "logreg", "tfidf_svm", "full_ft")
SEEDS = (0, 1, 2)
SHOTS = 10
MAX_LENGTH = 64
# Training recipes per K (see the research notes in accuracy.md); `camel` uses the shipped defaults.
CAMEL_RECIPES: dict[int, dict[str, Any]] = {
    # Step budgets bound the wall time on 10k examples and give small sets enough passes.
    0: {
        "config": {"bottleneck": 512, "dropout": 0.3},
        "args": {"max_epochs": 30, "max_steps": 0, "label_smoothing": 0.1, "patience": 5},
    },
    1: {
        "config": {},
        "args": {
            "max_epochs": 30,
            "max_steps": 940,
            "lr_blocks": 5e-5,
            "label_smoothing": 0.1,
            "patience": 5,
        },
    },
    2: {
        "config": {},
        "args": {
            "max_epochs": 30,
            "max_steps": 630,
            "lr_blocks": 5e-5,
            "label_smoothing": 0.1,
            "patience": 5,
        },
    },
}


@dataclass(frozen=True)
class FullFineTune:
    """The full_ft baseline's recipe: every weight of the same MiniLM, mean pooling and a linear head."""

    epochs_full: int = 2
    epochs_shots: int = 10
    batch_size: int = 16
    lr_body: float = 5e-5
    lr_head: float = 2e-3


FULL_FT = FullFineTune()
PUBLISHED = {
    "banking77": [
        ("BERT-large fine-tuned (full)", "", "93.66"),
        ("USE+ConveRT", "85.19", "93.36"),
        ("DNNC (10-shot)", "86.71", ""),
        ("CPFT (10-shot)", "87.20", ""),
        ("frozen all-MiniLM-L6-v2 + logreg, 8 per class (MTEB)", "80.04 (8-shot)", ""),
    ],
    "tweeteval_sentiment": [
        ("RoBERTa-base (45k train, macro-recall)", "", "71.3"),
        ("BERTweet (45k train, macro-recall)", "", "73.4"),
        ("SVM (45k train, macro-recall)", "", "62.9"),
    ],
}


class Bench:
    """One process-wide base encoder and feature cache shared by every CAMEL run."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.base = load_base(CamelConfig().resolved_base_model())
        self.cache = FeatureCache(self.base)
        self.bottom_s: dict[str, float] = {}

    def new_dataset(self) -> None:
        """A fresh cache per data set, so one set's states never push out another's."""
        self.cache = FeatureCache(self.base)

    def fill_cache(self, data: Dataset, split_layer: int) -> None:
        """Bottom pass over train then test once per split layer; the train part is reported."""
        key = f"{data.name}/split{split_layer}"
        if key not in self.bottom_s:
            with stopwatch() as clock:
                self.cache.states(data.train_texts, split_layer, MAX_LENGTH)
            self.bottom_s[key] = round(clock["wall_s"], 2)
            self.cache.states(data.test_texts, split_layer, MAX_LENGTH)

    def embeddings(self, texts: list[str]) -> np.ndarray:
        """Mean-pooled, L2-normalised final-layer states: all-MiniLM-L6-v2's sentence embedding."""
        states = self.cache.states(texts, self.base.num_layers, MAX_LENGTH)
        pooled = torch.stack([state.float().mean(dim=0) for state in states])
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def run_camel(
    bench: Bench, data: Dataset, texts: list[str], labels: list[str], seed: int, k: int | None
) -> dict[str, Any]:
    recipe = CAMEL_RECIPES[k] if k is not None else {"config": {}, "args": {}}
    layers: dict[str, Any] = {} if k is None else {"trainable_layers": k}
    config = CamelConfig(**layers, **recipe["config"], max_length=MAX_LENGTH)
    args = TrainingArgs(**recipe["args"], seed=seed, num_threads=bench.threads)
    bench.fill_cache(data, bench.base.num_layers - config.trainable_layers)
    with stopwatch() as clock:
        result = train(texts, labels, config=config, args=args, cache=bench.cache)
    adapter = result.adapter
    predicted = _camel_predict(bench, adapter, data.test_texts)
    with tempfile.TemporaryDirectory() as folder:
        save_adapter(adapter, f"{folder}/adapter")
        size = folder_mb(f"{folder}/adapter")
    return _row(
        data,
        predicted,
        clock,
        sum(p.numel() for p in adapter.parameters()),
        size,
        epochs=len(result.history),
        steps=adapter.metrics["training"]["steps"],
        config=f"K={config.trainable_layers} {recipe if k is not None else 'shipped defaults'}",
    )


def _camel_predict(bench: Bench, adapter: Any, texts: list[str]) -> list[str]:
    from camel import Predictor

    predictor = Predictor(adapter, bench.cache)
    _, probabilities = predictor.probabilities(texts)
    return [adapter.labels[int(i)] for i in probabilities.argmax(dim=1)]


def run_logreg(bench: Bench, data: Dataset, texts: list[str], labels: list[str], seed: int) -> dict[str, Any]:
    bench.fill_cache(data, bench.base.num_layers)
    features = bench.embeddings(texts)
    with stopwatch() as clock:
        model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed).fit(features, labels)
    predicted = list(model.predict(bench.embeddings(data.test_texts)))
    params = model.coef_.size + model.intercept_.size
    return _row(data, predicted, clock, params, params * 4 / 1e6, config="C=10, L2-normalised mean pooling")


def run_tfidf_svm(bench: Bench, data: Dataset, texts: list[str], labels: list[str], seed: int) -> dict[str, Any]:
    with stopwatch() as clock:
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        model = LinearSVC(C=1.0, random_state=seed).fit(vectorizer.fit_transform(texts), labels)
    predicted = list(model.predict(vectorizer.transform(data.test_texts)))
    params = model.coef_.size + model.intercept_.size
    return _row(data, predicted, clock, params, params * 4 / 1e6, config="word 1-2 grams, sublinear tf, C=1")


class _FullModel(torch.nn.Module):
    def __init__(self, path: str, n_labels: int) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
        self.classifier = torch.nn.Linear(self.encoder.config.hidden_size, n_labels)

    def forward(self, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return self.classifier((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))


def run_full_ft(bench: Bench, data: Dataset, texts: list[str], labels: list[str], seed: int) -> dict[str, Any]:
    """Fine-tune every weight of the same MiniLM (mean pooling + linear), linear warmup and decay."""
    torch.manual_seed(seed)
    names = sorted(set(labels))
    targets = torch.tensor([names.index(label) for label in labels])
    epochs = FULL_FT.epochs_shots if len(texts) < 2000 else FULL_FT.epochs_full
    with stopwatch() as clock:
        model = _FullModel(bench.base.path, len(names))
        _fit_full(model, bench, texts, targets, epochs, seed)
    predicted = [names[i] for i in _predict_full(model, bench, data.test_texts)]
    with tempfile.TemporaryDirectory() as folder:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{folder}/model.safetensors")
        size = folder_mb(folder)
    return _row(
        data,
        predicted,
        clock,
        sum(p.numel() for p in model.parameters()),
        size,
        epochs=epochs,
        config=f"{epochs} epochs, batch {FULL_FT.batch_size}, lr {FULL_FT.lr_body}/{FULL_FT.lr_head}, bf16",
    )


def _fit_full(model: _FullModel, bench: Bench, texts: list[str], targets: torch.Tensor, epochs: int, seed: int) -> None:
    size = FULL_FT.batch_size
    optimizer = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": FULL_FT.lr_body},
            {"params": model.classifier.parameters(), "lr": FULL_FT.lr_head},
        ],
        weight_decay=0.01,
    )
    total = epochs * -(-len(texts) // size)
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, (total - s) / (total - warmup + 1))
    )
    generator = torch.Generator().manual_seed(seed)
    bf16 = TrainingArgs().bf16  # the matmul precision CAMEL trains with on this CPU
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(texts), generator=generator).split(size):
            encoded = bench.base.tokenize([texts[i] for i in batch], MAX_LENGTH)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(encoded)
            loss = torch.nn.functional.cross_entropy(logits.float(), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()


@torch.inference_mode()
def _predict_full(model: _FullModel, bench: Bench, texts: list[str]) -> list[int]:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    result = [0] * len(texts)
    for start in range(0, len(order), 128):
        chunk = order[start : start + 128]
        for i, label in zip(
            chunk, model(bench.base.tokenize([texts[i] for i in chunk], MAX_LENGTH)).argmax(-1).tolist()
        ):
            result[i] = label
    return result


def _row(
    data: Dataset, predicted: list[str], clock: dict[str, float], params: int, size_mb: float, **extra: Any
) -> dict[str, Any]:
    metrics = metrics_from_predictions(data.test_labels, predicted)
    return {
        "accuracy": metrics["accuracy"],
        "macro_recall": metrics["macro_recall"],
        "macro_f1": metrics["macro_f1"],
        "train_s": round(clock["wall_s"], 2),
        "train_cpu_s": round(clock["cpu_s"], 2),
        "trainable_params": int(params),
        "adapter_mb": round(size_mb, 3),
        **extra,
    }


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "camel_k0": lambda b, d, t, lab, s: run_camel(b, d, t, lab, s, 0),
    "camel_k1": lambda b, d, t, lab, s: run_camel(b, d, t, lab, s, 1),
    "camel_k2": lambda b, d, t, lab, s: run_camel(b, d, t, lab, s, 2),
    "camel": lambda b, d, t, lab, s: run_camel(b, d, t, lab, s, None),
    "logreg": run_logreg,
    "tfidf_svm": run_tfidf_svm,
    "full_ft": run_full_ft,
}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of the numbers over seeds, with the spread (population std) of the quality metrics."""
    merged = dict(runs[0])
    for key in ("accuracy", "macro_recall", "macro_f1", "train_s", "train_cpu_s"):
        values = [run[key] for run in runs]
        merged[key] = statistics.fmean(values)
        if key in ("accuracy", "macro_recall", "macro_f1") and len(runs) > 1:
            merged[f"{key}_std"] = statistics.pstdev(values)
            merged[f"{key}_seeds"] = values
    merged["seeds"] = len(runs)
    return merged


def run_dataset(
    bench: Bench, data: Dataset, methods: list[str], seeds: tuple[int, ...], saved: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Every method on one data set; `saved` gets the results after each method (long runs keep them)."""
    results: dict[str, Any] = {
        "shots10": {},
        "full": {},
        "n_train": len(data.train_texts),
        "n_test": len(data.test_texts),
    }
    bench.new_dataset()
    for method in methods:
        runs = []
        for seed in seeds:
            texts, labels = sample_per_class(data.train_texts, data.train_labels, SHOTS, seed)
            runs.append(RUNNERS[method](bench, data, texts, labels, seed))
        results["shots10"][method] = aggregate(runs)
        _log(data.name, "shots10", method, results["shots10"][method])
        results["full"][method] = RUNNERS[method](bench, data, data.train_texts, data.train_labels, seeds[0])
        _log(data.name, "full", method, results["full"][method])
        results["bottom_pass_train_s"] = {
            k.split("/")[1]: v for k, v in bench.bottom_s.items() if k.startswith(data.name)
        }
        saved(results)
    return results


def _log(dataset: str, regime: str, method: str, row: dict[str, Any]) -> None:
    print(
        f"{dataset:20s} {regime:8s} {method:10s} accuracy {row['accuracy']:.4f} macro-recall {row['macro_recall']:.4f} "
        f"train {row['train_s']:.1f}s",
        flush=True,
    )


def render(results: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    lines = [
        "# Accuracy benchmark",
        "",
        "Runs merged into this file (a run updates only the data sets and methods it ran):",
        "",
    ]
    for run in runs:
        lines.append(
            f"- `{run['command']}`: {run['machine']}; {run['total_s']:.0f} s wall; load average at the end "
            f"{run['load_end']:.2f}"
        )
    lines += [
        "",
        "The machine is shared (2 cores, several busy processes), so wall times include waiting for a core.",
        "",
        "10-shot = 10 training examples per class, mean ± spread (population std) over seeds "
        f"{list(SEEDS)}; full = the whole training split, seed {SEEDS[0]}. "
        "CAMEL train_s is the micro-training round on cached bottom states; the one-time bottom pass over "
        "the full training set is listed under each table. Sizes: CAMEL = adapter folder on disk, "
        "full_ft = the whole fine-tuned model in safetensors, sklearn baselines = float32 weights.",
        "",
    ]
    configs: dict[str, str] = {}
    for name, per_regime in results.items():
        metric = DATASETS[name][1]
        lines += [f"## {name} ({per_regime['n_train']} train, {per_regime['n_test']} test; metric: {metric})", ""]
        lines.append(_table(per_regime, metric))
        lines += [
            "",
            f"Bottom pass over the training set (seconds, by split layer): {per_regime['bottom_pass_train_s']}",
            "",
        ]
        lines += [
            "Published reference figures (from ../shared/data/README.md, not run here):",
            "",
            markdown_table(["system", "10-shot", "full"], [list(r) for r in PUBLISHED[name]]),
            "",
        ]
        configs.update({method: row.get("config", "") for method, row in per_regime["full"].items()})
    lines += ["## Configurations", ""] + [f"- `{method}`: {config}" for method, config in configs.items()]
    return "\n".join(lines + ["", RESEARCH_NOTES])


RESEARCH_NOTES = """## How the CAMEL recipes were chosen (research runs, BANKING77, seed 0, torch threads 1)

Plain torch on cached MiniLM hidden states (scripts not in the repo). 10-shot test accuracy: K=0 head
84.6 (30 epochs), bottleneck 512 + dropout 0.3: 85.4, plus the label names as one extra example per
class: 85.9 (seed 1: 84.3 -> 85.6); cosine classifier 84.0; K=2 with lr_blocks 2e-4: 84.8; K=2 after 10
epochs of supervised-contrastive pre-training of the blocks: 85.2 (3x the time); K=2 with a 0.5
contrastive term: 85.0; K=1 lr_blocks 2e-4: 85.0. Full data: K=0 head, 40 epochs: 93.67; K=1, 3
epochs, bf16: 93.80; K=2, 1 epoch: 92.05, 2 epochs bf16: 93.41. Per 10k-example epoch, one thread:
K=1 about 27 s CPU in fp32 and 15 s in bf16, K=2 about 55 s fp32 and 30 s bf16 (AMX), so the 60 s
budget allows about 3 epochs of K=1 or 2 of K=2 on 2 threads. The 88.0 10-shot target was not
reached by any variant tried (best 85.9). Caveats: those research numbers used a head with the
LayerNorm on the skip path too and no validation split, and several were read off the test set
(the K=0 grid was also checked on a 1,000-example dev split of train, which agreed: label smoothing
0.1 and bottleneck 512 / dropout 0.3 help), so the camel_k* rows above, run through camel.train with
its 10% validation split and early stopping, are the numbers to quote. In those rows the frozen
linear probe (logreg) beats every CAMEL variant at 10 shots on BANKING77."""


def _table(per_regime: dict[str, Any], metric: str) -> str:
    headers = ["method", "10-shot accuracy", "full accuracy"]
    if metric == "macro_recall":
        headers += ["10-shot macro-recall", "full macro-recall"]
    headers += ["10-shot train_s", "full train_s", "trainable params", "size MB"]
    rows = []
    for method, full in per_regime["full"].items():
        shots = per_regime["shots10"][method]
        row = [f"`{method}`", _pct(shots, "accuracy"), _pct(full, "accuracy")]
        if metric == "macro_recall":
            row += [_pct(shots, "macro_recall"), _pct(full, "macro_recall")]
        row += [
            f"{shots['train_s']:.1f}",
            f"{full['train_s']:.1f}",
            f"{full['trainable_params']:,}",
            f"{full['adapter_mb']:.2f}",
        ]
        rows.append(row)
    return markdown_table(headers, rows)


def _pct(row: dict[str, Any], key: str) -> str:
    text = f"{100 * row[key]:.2f}"
    return f"{text} ± {100 * row[key + '_std']:.2f}" if f"{key}_std" in row else text


def merge(stem: str, results: dict[str, Any], run: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fold this run into the previous results file, so data sets and methods can be run separately."""
    path = RESULTS / f"{stem}.json"
    merged: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    runs = [r for r in merged.pop("meta", {}).get("runs", []) if r["command"] != run["command"]] + [run]
    for name, per_regime in results.items():
        target = merged.setdefault(name, {"shots10": {}, "full": {}})
        for regime in ("shots10", "full"):
            target.setdefault(regime, {}).update(per_regime[regime])
        target.setdefault("bottom_pass_train_s", {}).update(per_regime["bottom_pass_train_s"])
        target["n_train"], target["n_test"] = per_regime["n_train"], per_regime["n_test"]
    ordered = {name: _ordered(merged[name]) for name in DATASETS if name in merged}
    return ordered, runs


def _ordered(per_regime: dict[str, Any]) -> dict[str, Any]:
    for regime in ("shots10", "full"):
        per_regime[regime] = {m: per_regime[regime][m] for m in METHODS if m in per_regime[regime]}
    return per_regime


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.accuracy",
        __doc__,
        writes="bench/results/accuracy.json and accuracy.md (a run merges into them; --quick: accuracy_quick.*)",
        data=shared_data(*DATASETS),
    )
    parser.add_argument("--quick", action="store_true", help="one seed and 500 test examples (smoke run)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 leaves a core to others)")
    parser.add_argument("--render", action="store_true", help="only rewrite accuracy.md from accuracy.json")
    options = parser.parse_args(argv)
    if options.render:
        data = json.loads((RESULTS / "accuracy.json").read_text(encoding="utf-8"))
        runs = data.pop("meta")["runs"]
        print(f"wrote {write_results('accuracy', {**data, 'meta': {'runs': runs}}, render(data, runs))[1]}")
        return 0
    require_data(options.datasets)
    torch.set_num_threads(options.threads)
    seeds = SEEDS[:1] if options.quick else SEEDS
    started, machine = time.perf_counter(), machine_line(options.threads)
    bench = Bench(options.threads)
    command = recorded_command("bench.method.accuracy", argv)
    stem = "accuracy_quick" if options.quick else "accuracy"

    def save(name: str, results: dict[str, Any]) -> None:
        run = {
            "command": command,
            "machine": machine,
            "total_s": time.perf_counter() - started,
            "load_end": load_average(),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        with _locked(RESULTS / f".{stem}.lock"):
            merged, runs = merge(stem, {name: results}, run)
            write_results(stem, {**merged, "meta": {"runs": runs}}, render(merged, runs))

    for name in options.datasets:
        run_dataset(
            bench,
            load_dataset(name, 500 if options.quick else None),
            options.methods,
            seeds,
            functools.partial(save, name),
        )
    print(f"wrote {RESULTS / (stem + '.json')} and {RESULTS / (stem + '.md')}")
    return 0


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two runs finishing together must not lose each other's results."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


if __name__ == "__main__":
    sys.exit(main())
