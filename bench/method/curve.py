"""Learning curve: the shipped CAMEL default beside a frozen probe, TF-IDF+SVM and SetFit.

Shots "0" is zero-shot from the label names (top-1 and top-3); "2".."20" are examples per label
(bench.common.sample_per_class, seeds 0, 1, 2); "full" is the whole training split (3 seeds too:
only CAMEL's batch order depends on them). BANKING77 reports accuracy, TweetEval macro-recall.
MiniLM states come from bench/.cache/states (bench.method.features), so train_s is the round on a
warm cache. SetFit runs in its own venv (bench.method.setfit_peer) and is folded in from
bench/.cache/setfit.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from bench.common import (
    DATASETS,
    REPO,
    RESULTS,
    benchmark_parser,
    load_average,
    load_dataset,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    sample_per_class,
    shared_data,
)
from bench.method.features import open_cache, sentence_features
from camel import Adapter, CamelConfig, FeatureCache, TrainingArgs, train
from camel.evaluation import metrics_from_predictions, top1_labels
from camel.zero_shot import ZeroShotClassifier

SHOTS = ("0", "2", "5", "10", "20", "full")
METHODS = ("camel", "logreg", "tfidf_svm", "setfit")
SEEDS = (0, 1, 2)
SETFIT_DIR = REPO / "bench" / ".cache" / "setfit"
SETFIT_NOT_RUN = {
    "*": "not run: SetFit was run at one point only, BANKING77 10-shot seed 0 (36 min on one thread "
    "of this machine); the other points would take 30-90 min each",
}


def metric_of(name: str) -> str:
    return DATASETS[name][1]


def score(gold: list[str], predicted: list[str], metric: str) -> float:
    return float(metrics_from_predictions(gold, predicted)[metric])


def evaluate_camel(adapter: Adapter, cache: FeatureCache, texts: list[str], gold: list[str], metric: str) -> float:
    return score(gold, top1_labels(adapter, texts, cache), metric)


def logreg_scores(
    cache: FeatureCache,
    texts: list[str],
    labels: list[str],
    test_texts: list[str],
    test_labels: list[str],
    metric: str,
    seed: int,
) -> tuple[float, float]:
    """The frozen probe: logistic regression (C=10) on L2-normalised mean-pooled MiniLM states."""
    features = sentence_features(cache, texts)
    started = time.perf_counter()
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed).fit(features, labels)
    train_s = time.perf_counter() - started
    test = sentence_features(cache, test_texts)
    return score(test_labels, list(model.predict(test)), metric), train_s


def run_camel(
    cache: FeatureCache,
    texts: list[str],
    labels: list[str],
    test_texts: list[str],
    test_labels: list[str],
    metric: str,
    seed: int,
    threads: int,
) -> tuple[float, float]:
    """The shipped default: CamelConfig() and TrainingArgs() with only the seed and threads set."""
    started = time.perf_counter()
    adapter = train(
        texts, labels, config=CamelConfig(), args=TrainingArgs(seed=seed, num_threads=threads), cache=cache
    ).adapter
    train_s = time.perf_counter() - started
    return evaluate_camel(adapter, cache, test_texts, test_labels, metric), train_s


def run_tfidf(
    texts: list[str], labels: list[str], test_texts: list[str], test_labels: list[str], metric: str, seed: int
) -> tuple[float, float]:
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
    model = LinearSVC(C=1.0, random_state=seed).fit(vectorizer.fit_transform(texts), labels)
    train_s = time.perf_counter() - started
    return score(test_labels, list(model.predict(vectorizer.transform(test_texts))), metric), train_s


def zero_shot(
    cache: FeatureCache,
    labels: list[str],
    test_texts: list[str],
    test_labels: list[str],
    metric: str,
    background: list[str],
) -> dict[str, Any]:
    """Label names only; `background` = the unlabelled training texts (messages the bot has seen)."""
    started = time.perf_counter()
    classifier = ZeroShotClassifier(cache.base, labels, cache=cache, background=background)
    build_s = time.perf_counter() - started
    guesses = classifier.predict(test_texts, k=3)
    top1 = score(test_labels, [g.label for g in guesses], metric)
    top3 = float(np.mean([gold in [label for label, _ in g.top3] for g, gold in zip(guesses, test_labels)]))
    return {
        "mean": top1,
        "std": 0.0,
        "seeds": [top1],
        "train_s": round(build_s, 3),
        "top3": top3,
        "note": "deterministic (no seed): label names only, humanised, cosine with MiniLM embeddings, "
        "centred on the unlabelled training messages' mean",
    }


def summary(values: list[float], times: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "seeds": values,
        "train_s": round(statistics.fmean(times), 3),
    }


def setfit_entry(name: str, shots: str, metric: str) -> dict[str, Any]:
    runs = []
    for path in sorted(SETFIT_DIR.glob(f"{name}-{shots}-*.json")):
        if "-test" in path.stem:
            continue
        runs.append(json.loads(path.read_text(encoding="utf-8")))
    if not runs:
        reason = SETFIT_NOT_RUN.get(f"{name}/{shots}", SETFIT_NOT_RUN["*"])
        return {"mean": None, "std": None, "seeds": [], "train_s": None, "not_run": reason}
    entry = summary([run[metric] for run in runs], [run["train_s"] for run in runs])
    entry.update(
        {
            "seed_ids": [run["seed"] for run in runs],
            "num_iterations": runs[0]["num_iterations"],
            "epochs": runs[0]["epochs"],
            "threads": runs[0]["threads"],
        }
    )
    return entry


def run_point(cache: FeatureCache, data: Any, shots: str, methods: list[str], threads: int) -> dict[str, Any]:
    metric = metric_of(data.name)
    if shots == "0":
        return {
            "zero_shot": zero_shot(
                cache, sorted(set(data.train_labels)), data.test_texts, data.test_labels, metric, data.train_texts
            )
        }
    point: dict[str, Any] = {}
    values: dict[str, list[float]] = {m: [] for m in methods}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for seed in SEEDS:
        if shots == "full":
            texts, labels = data.train_texts, data.train_labels
        else:
            texts, labels = sample_per_class(data.train_texts, data.train_labels, int(shots), seed)
        for method in methods:
            if method == "camel":
                result = run_camel(cache, texts, labels, data.test_texts, data.test_labels, metric, seed, threads)
            elif method == "logreg":
                result = logreg_scores(cache, texts, labels, data.test_texts, data.test_labels, metric, seed)
            elif method == "tfidf_svm":
                result = run_tfidf(texts, labels, data.test_texts, data.test_labels, metric, seed)
            else:
                continue
            values[method].append(result[0])
            times[method].append(result[1])
            print(
                f"{data.name:20s} {shots:>4s} {method:10s} seed {seed} {100 * result[0]:.2f} {result[1]:.1f}s",
                flush=True,
            )
    for method in methods:
        point[method] = (
            setfit_entry(data.name, shots, metric) if method == "setfit" else summary(values[method], times[method])
        )
    return point


def render(results: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = ["# Learning curve", "", "Runs merged into this file:", ""]
    lines += [
        f"- `{run['command']}`: {run['machine']}; {run['total_s']:.0f} s wall; load average at the end "
        f"{run['load_end']:.2f}"
        for run in meta.get("runs", [])
    ]
    lines += [
        "",
        "Mean ± population std over seeds 0, 1, 2 (full data: the same data, seeds change CAMEL's batch "
        "order). `camel` is the shipped default (`CamelConfig()`, `TrainingArgs()`); train_s is the round on a "
        "warm feature cache, with 2 torch threads on a shared 2-core machine (other helpers' jobs and the "
        "SetFit run were using the cores too). Shots `0` is zero-shot from the label names (top-1, top-3).",
        "",
        "A later run replaces the points it covers, and the runs above did not all have the same machine: the "
        "first two ran on a CPU with AMX, where the default trains in bfloat16; a run whose line says "
        "`native bfloat16 no` trained in float32 (the default there). Compare train seconds within a run.",
        "",
    ]
    for name in DATASETS:
        if name not in results:
            continue
        metric = metric_of(name)
        lines += [f"## {name} ({metric.replace('_', '-')}, %)", ""]
        rows = []
        zero = results[name].get("0", {}).get("zero_shot")
        if zero:
            rows.append(
                [
                    "zero_shot (label names)",
                    f"{100 * zero['mean']:.2f} (top-3 {100 * zero['top3']:.2f})",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
        for method in METHODS:
            row = [f"`{method}`", ""]
            for shots in SHOTS[1:]:
                entry = results[name].get(shots, {}).get(method)
                if not entry or entry.get("mean") is None:
                    row.append("not run")
                else:
                    row.append(f"{100 * entry['mean']:.2f} ± {100 * entry['std']:.2f} ({entry['train_s']:.1f} s)")
            rows.append(row)
        lines.append(markdown_table(["method", "0"] + list(SHOTS[1:]), rows))
        lines.append("")
        camel_gap = []
        for shots in SHOTS[1:]:
            point = results[name].get(shots, {})
            if point.get("camel") and point.get("logreg"):
                camel_gap.append(f"{shots}: {100 * (point['camel']['mean'] - point['logreg']['mean']):+.2f}")
        if camel_gap:
            lines += [f"camel minus logreg (points): {', '.join(camel_gap)}", ""]
    setfit_notes = {
        f"{n}/{s}": results[n][s]["setfit"].get("not_run")
        for n in DATASETS
        if n in results
        for s in SHOTS[1:]
        if results[n].get(s, {}).get("setfit", {}).get("not_run")
    }
    if setfit_notes:
        lines += [
            "SetFit (its own venv, same all-MiniLM-L6-v2 folder, `num_iterations=20`, one epoch, one thread): "
            "`OMP_NUM_THREADS=1 .venv-setfit/bin/python -m bench.method.setfit_peer --shots 10 "
            "--seed 0`, folded in from bench/.cache/setfit by `python -m bench.method.curve --render`. "
            "Every other point: " + SETFIT_NOT_RUN["*"] + ".",
            "",
        ]
    lines += ["![learning curve](curve.png)"]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in DATASETS if n in results]
    figure, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        for method in METHODS:
            xs, ys, errs = [], [], []
            for position, shots in enumerate(SHOTS[1:], start=1):
                entry = results[name].get(shots, {}).get(method)
                if entry and entry.get("mean") is not None:
                    xs.append(position)
                    ys.append(100 * entry["mean"])
                    errs.append(100 * (entry["std"] or 0.0))
            if xs:
                axis.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=method)
        zero = results[name].get("0", {}).get("zero_shot")
        if zero:
            axis.plot([0], [100 * zero["mean"]], "k*", markersize=10, label="zero-shot top-1")
            axis.plot([0], [100 * zero["top3"]], "k^", markersize=7, label="zero-shot top-3")
        axis.set_xticks(range(len(SHOTS)), list(SHOTS))
        axis.set_xlabel("labelled examples per label")
        axis.set_ylabel(metric_of(name).replace("_", "-") + " (%)")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.curve",
        __doc__,
        writes="bench/results/curve.json, curve.md and curve.png (a run merges into them); "
        "MiniLM states in bench/.cache/states",
        data=shared_data(*DATASETS) + "; SetFit's results from bench/.cache/setfit if present",
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--shots", nargs="+", default=list(SHOTS), choices=list(SHOTS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render", action="store_true", help="only fold SetFit results in and redraw md/png")
    options = parser.parse_args(argv)
    path = RESULTS / "curve.json"
    results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if not options.render:
        require_data(options.datasets)
        torch.set_num_threads(options.threads)
        started, machine = time.perf_counter(), machine_line(options.threads)
        cache = open_cache()
        for name in options.datasets:
            data = load_dataset(name)
            for shots in options.shots:
                point = run_point(cache, data, shots, options.methods, options.threads)
                results.setdefault(name, {}).setdefault(shots, {}).update(point)
                _save(results, path)
        command = recorded_command("bench.method.curve", argv)
        runs = [r for r in results.setdefault("meta", {}).get("runs", []) if r["command"] != command]
        results["meta"]["runs"] = runs + [
            {
                "command": command,
                "machine": machine,
                "total_s": time.perf_counter() - started,
                "load_end": load_average(),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        ]
    for name in DATASETS:  # SetFit results land in bench/.cache/setfit whenever its own venv finishes
        for shots in SHOTS[1:]:
            if name in results and shots in results[name]:
                entry = setfit_entry(name, shots, metric_of(name))
                recorded = results[name][shots].get("setfit")
                # bench/.cache is not committed: a checkout without it keeps the run already recorded
                if entry.get("not_run") and recorded and not recorded.get("not_run"):
                    continue
                results[name][shots]["setfit"] = entry
    _save(results, path)
    print(f"wrote {path}, {path.with_suffix('.md')} and {path.with_suffix('.png')}")
    return 0


def _save(results: dict[str, Any], path: Path) -> None:
    ordered = {name: {s: results[name][s] for s in SHOTS if s in results[name]} for name in DATASETS if name in results}
    if "meta" in results:
        ordered["meta"] = results["meta"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
    path.with_suffix(".md").write_text(render(ordered) + "\n", encoding="utf-8")
    plot(ordered, path.with_suffix(".png"))


if __name__ == "__main__":
    sys.exit(main())
