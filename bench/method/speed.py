"""Speed benchmark of the shipped CAMEL defaults on BANKING77: latency, throughput, retrain, memory.

Scenario, as the bot lives it: an adapter is trained on the 10,003 training messages (once with
the bottom's states already cached, once from an empty cache); then 100 test-set messages arrive,
are predicted (which caches their states) and corrected by users, and one incremental round
continues from the 10k adapter with replay. Forgetting is measured on the other test messages.
Peak RSS is measured in fresh child processes that load the base and 1 or 5 adapters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import (
    REPO,
    benchmark_parser,
    folder_mb,
    load_dataset,
    machine_facts,
    machine_line,
    markdown_table,
    peak_rss_mb,
    project_env,
    require_data,
    result_meta,
    rss_mb,
    say,
    shared_data,
    stopwatch,
    write_results,
)
from bench.method.engines import compare
from camel import (
    ENGINES,
    CamelConfig,
    FeatureCache,
    Predictor,
    TrainingArgs,
    choose_engine,
    evaluate,
    load_adapter,
    load_base,
    save_adapter,
    train,
)

N_NEW = 100
LATENCY_MESSAGES = 300
THROUGHPUT_MESSAGES = 2000
TARGETS = {
    "latency_p50_ms": ("<=", 10),
    "throughput_msg_s": (">=", 300),
    "retrain_10k_s": ("<=", 60),
    "incremental_100_s": ("<=", 5),
    "forgetting_points": ("<=", 0.5),
    "extra_task_mb": ("<=", 15),
    "adapter_mb": ("<=", 8),
    "first_round_150_lib_s": ("<=", 10),
}
FIRST_ROUND_LABELS = 150
ENGINE_REPEATS = 2
# The engine every measure below runs the bottom with: chosen like the bot chooses it ([model]
# engine = auto, with its start-up check), unless --engine names one.
_engine: Any = None


def cache_for(base: Any, directory: str | None = None) -> FeatureCache:
    """A feature cache whose bottom runs on the benchmark's engine."""
    return FeatureCache(base, directory, engine=_engine)


def training_args(threads: int) -> TrainingArgs:
    """The shipped defaults; only the thread count is the benchmark's."""
    return TrainingArgs(num_threads=threads)


def measure_retrain(texts: list[str], labels: list[str], threads: int, cache: FeatureCache) -> dict[str, Any]:
    base = cache.base
    config = CamelConfig()
    split_layer = base.num_layers - config.trainable_layers
    with stopwatch() as fill:
        cache.states(texts, split_layer, config.max_length)
    with stopwatch() as cached:
        result = train(texts, labels, config=config, args=training_args(threads), cache=cache)
    with stopwatch() as uncached:
        train(texts, labels, config=config, args=training_args(threads), cache=cache_for(base))
    return {
        "adapter": result.adapter,
        "retrain_10k_s": cached["wall_s"],
        "retrain_10k_cpu_s": cached["cpu_s"],
        "retrain_10k_nocache_s": uncached["wall_s"],
        "bottom_pass_10k_s": fill["wall_s"],
        "retrain_10k_epochs": len(result.history),
    }


def measure_incremental(adapter: Any, data: Any, threads: int, cache: FeatureCache) -> dict[str, Any]:
    new_texts, new_labels = data.test_texts[:N_NEW], data.test_labels[:N_NEW]
    old_texts, old_labels = data.test_texts[N_NEW:], data.test_labels[N_NEW:]
    Predictor(adapter, cache).answer(new_texts)  # the bot answered these before users corrected them
    before = evaluate(adapter, old_texts, old_labels, cache=cache)
    with stopwatch() as clock:
        result = train(
            new_texts,
            new_labels,
            init=adapter,
            replay=(data.train_texts, data.train_labels),
            args=training_args(threads),
            cache=cache,
        )
    after = evaluate(result.adapter, old_texts, old_labels, cache=cache)
    on_new_before = evaluate(adapter, new_texts, new_labels, cache=cache)["accuracy"]
    on_new_after = evaluate(result.adapter, new_texts, new_labels, cache=cache)["accuracy"]
    return {
        "incremental_100_s": clock["wall_s"],
        "incremental_100_cpu_s": clock["cpu_s"],
        "old_test_accuracy_before": before["accuracy"],
        "old_test_accuracy_after": after["accuracy"],
        "forgetting_points": 100 * (before["accuracy"] - after["accuracy"]),
        "new_examples_accuracy_before": on_new_before,
        "new_examples_accuracy_after": on_new_after,
        "incremental_epochs": len(result.history),
    }


def measure_first_round(data: Any) -> dict[str, Any]:
    """A task's first round at the library level: 150 labelled messages, 1 thread (as the bot's child
    trains), an empty feature cache (their bottom pass included), base already loaded."""
    # train.csv is sorted by intent: every n-th row gives a first round spread over the intents.
    step = max(1, len(data.train_texts) // FIRST_ROUND_LABELS)
    texts = data.train_texts[::step][:FIRST_ROUND_LABELS]
    labels = data.train_labels[::step][:FIRST_ROUND_LABELS]
    base = load_base(CamelConfig().resolved_base_model())
    with stopwatch() as clock:
        result = train(texts, labels, config=CamelConfig(), args=training_args(1), cache=cache_for(base))
    return {
        "first_round_150_lib_s": clock["wall_s"],
        "first_round_150_lib_cpu_s": clock["cpu_s"],
        "first_round_150_labels": len(set(labels)),
        "first_round_150_epochs": len(result.history),
    }


def measure_latency(adapter: Any, texts: list[str]) -> dict[str, Any]:
    """One uncached message per call (a fresh message's bottom pass included), then batched throughput."""
    predictor = Predictor(adapter, cache_for(adapter.base))
    predictor.answer(["warm up the kernels"])
    single = []
    for text in texts[:LATENCY_MESSAGES]:
        started = time.perf_counter()
        predictor.answer([text])
        single.append((time.perf_counter() - started) * 1000)
    cached = []
    for text in texts[:LATENCY_MESSAGES]:
        started = time.perf_counter()
        predictor.answer([text])
        cached.append((time.perf_counter() - started) * 1000)
    batch = texts[LATENCY_MESSAGES : LATENCY_MESSAGES + THROUGHPUT_MESSAGES]
    fresh = Predictor(adapter, cache_for(adapter.base))
    with stopwatch() as clock:
        fresh.answer(batch)
    return {
        "latency_p50_ms": _percentile(single, 50),
        "latency_p99_ms": _percentile(single, 99),
        "latency_cached_p50_ms": _percentile(cached, 50),
        "throughput_msg_s": len(batch) / clock["wall_s"],
    }


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def measure_rss(adapter_dir: Path, threads: int) -> dict[str, Any]:
    """Peak RSS of fresh processes holding the base and 0, 1 or 5 task adapters (each predicting once)."""
    rss = {n: _child_rss(adapter_dir, n, threads) for n in (0, 1, 5)}
    # Peak RSS is dominated by the transient of loading the base, so the per-task cost is taken
    # from the resident size after loading (VmRSS), which is what stays for the bot's lifetime.
    return {
        "rss_base_only_mb": rss[0]["peak_rss_mb"],
        "rss_1_task_mb": rss[1]["peak_rss_mb"],
        "rss_5_tasks_mb": rss[5]["peak_rss_mb"],
        "resident_1_task_mb": rss[1]["resident_mb"],
        "resident_5_tasks_mb": rss[5]["resident_mb"],
        "extra_task_mb": (rss[5]["resident_mb"] - rss[1]["resident_mb"]) / 4,
    }


def _child_rss(adapter_dir: Path, tasks: int, threads: int) -> dict[str, float]:
    command = [
        sys.executable,
        "-m",
        "bench.method.speed",
        "--rss-child",
        str(tasks),
        "--adapter",
        str(adapter_dir),
        "--threads",
        str(threads),
        "--engine",
        _engine.name,
    ]
    output = subprocess.run(command, cwd=REPO, env=project_env(), check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def rss_child(adapter_dir: str, tasks: int) -> None:
    base = load_base(CamelConfig().resolved_base_model())
    cache = cache_for(base)
    predictors = [Predictor(load_adapter(adapter_dir, base), cache) for _ in range(tasks)]
    if not predictors:
        cache.states(["how do I top up my card"], base.num_layers, CamelConfig().max_length)
    for number, predictor in enumerate(predictors):
        predictor.answer([f"my card number {number} has not arrived yet"])
    # ru_maxrss survives execve on Linux (it would report the parent's peak), so the child's own
    # peak is VmHWM, the high-water mark of this process image.
    print(
        json.dumps(
            {
                "tasks": tasks,
                "peak_rss_mb": rss_mb(field="VmHWM"),
                "resident_mb": rss_mb(),
                "ru_maxrss_mb": peak_rss_mb(),
            }
        )
    )


def run(threads: int, quick: bool) -> dict[str, Any]:
    data = load_dataset("banking77")
    if quick:  # smoke run: a tenth of the training data, so "10k" numbers are not comparable
        data.train_texts, data.train_labels = data.train_texts[::10], data.train_labels[::10]
    base = load_base(CamelConfig().resolved_base_model())
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        cache = cache_for(base, f"{folder}/feature_cache")
        say("retrain on the training set, cached and uncached")
        retrain = measure_retrain(data.train_texts, data.train_labels, threads, cache)
        adapter = retrain.pop("adapter")
        results.update(retrain)
        save_adapter(adapter, f"{folder}/adapter")
        results["adapter_mb"] = folder_mb(f"{folder}/adapter")
        results["test_accuracy_10k"] = evaluate(adapter, data.test_texts, data.test_labels, cache=cache)["accuracy"]
        say(f"incremental round ({results})")
        results.update(measure_incremental(adapter, data, threads, cache))
        say("first round on 150 labels")
        results.update(measure_first_round(data))
        say("latency and throughput")
        results.update(measure_latency(adapter, data.test_texts))
        say("every engine, paired with torch-fp32 on the test set")
        engines, skipped = compare(adapter, data.test_texts, data.test_labels, ENGINE_REPEATS)
        results["engines"], results["engines_skipped"] = engines, skipped
        results["speedup_vs_torch_fp32"] = engines[_engine.name]["speedup_vs_torch_fp32"]
        results["test_messages"] = len(data.test_texts)
        say("memory in child processes")
        results.update(measure_rss(Path(folder) / "adapter", threads))
    results["config"] = CamelConfig().to_dict()
    results["training_args"] = training_args(threads).to_dict()
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in results.items()}


def render(results: dict[str, Any], meta: dict[str, Any]) -> str:
    rows = []
    for key, (label, detail) in ROWS.items():
        value = results[key]
        target = TARGETS.get(key)
        ratio = _ratio(value, target) if target else ""
        target_text = f"{target[0]} {target[1]}" if target else ""
        rows.append([label, f"{value:,.3f}" if isinstance(value, float) else f"{value:,}", target_text, ratio, detail])
    config = results["config"]
    args = results["training_args"]
    return "\n".join(
        [
            "# Speed benchmark",
            "",
            f"Command: `{meta['command']}`",
            "",
            f"{meta['machine']}; finished with load average {meta['load_end']:.2f}; "
            f"total wall time {meta['total_s']:.0f} s. "
            "The machine is shared by several processes, so wall times include waiting for a core; CPU seconds are "
            "listed where they matter.",
            "",
            f"Shipped defaults measured: K={config['trainable_layers']}, bottleneck {config['bottleneck']}, "
            f"max_length {config['max_length']}, batch {args['batch_size']}, max_epochs {args['max_epochs']}, "
            f"max_steps {args['max_steps']}, validation share {args['val_fraction']}, "
            f"lr blocks/head {args['lr_blocks']}/{args['lr_head']}.",
            "",
            "Ratio = how the result compares with the target (above 1 = better than the target).",
            "",
            markdown_table(["measure", "result", "target", "ratio", "how"], rows),
            "",
            f"Engine of the frozen bottom in every measure above: {results['engine']} ({results['engine_reason']}). "
            f"Every engine, paired with torch-fp32 on the {results['test_messages']:,} test messages with the adapter "
            f"trained above (speed: best of {ENGINE_REPEATS} rounds, see bench/method/engines.py); speed-up of the "
            f"chosen engine over torch-fp32: {results['speedup_vs_torch_fp32']:.2f}x.",
            "",
            markdown_table(
                [
                    "engine",
                    "accuracy change (points)",
                    "answers changed",
                    "messages/s",
                    "latency p50 (ms)",
                    "cached p50",
                ],
                [
                    [
                        name,
                        f"{e['accuracy_change_points']:+.2f}",
                        f"{100 * e['answers_changed']:.2f}%",
                        f"{e['throughput_msg_s']:.0f}",
                        f"{e['latency_p50_ms']:.1f}",
                        f"{e['latency_cached_p50_ms']:.1f}",
                    ]
                    for name, e in results["engines"].items()
                ],
            ),
            "",
        ]
    )


ROWS: dict[str, tuple[str, str]] = {
    "first_round_150_lib_s": (
        "first round, 150 labels, library level, 1 thread (s)",
        "train() on 150 training messages, empty cache (their bottom pass included)",
    ),
    "first_round_150_lib_cpu_s": ("  same, CPU seconds", ""),
    "latency_p50_ms": ("latency p50 (ms)", f"one uncached message per answer() call, {LATENCY_MESSAGES} messages"),
    "latency_p99_ms": ("latency p99 (ms)", "same calls"),
    "latency_cached_p50_ms": ("latency p50, states cached (ms)", "the same messages again"),
    "throughput_msg_s": ("throughput (messages/s)", f"one answer() of {THROUGHPUT_MESSAGES} uncached messages"),
    "retrain_10k_s": ("retrain on 10k, feature cache warm (s)", "train() wall time, bottom states cached"),
    "retrain_10k_cpu_s": ("  same, CPU seconds", "process CPU time"),
    "retrain_10k_nocache_s": ("retrain on 10k, empty cache (s)", "train() computing every bottom state"),
    "bottom_pass_10k_s": ("bottom pass over 10k (s)", "filling the cache once"),
    "retrain_10k_epochs": ("epochs run (early stopping, or max_steps when there is no validation share)", ""),
    "test_accuracy_10k": ("test accuracy of the 10k adapter", "3,080 test messages"),
    "incremental_100_s": (
        "incremental round, 100 corrections (s)",
        "train(init=10k adapter, replay=train set): 10,103 examples <= refit_below, so a fresh training on all",
    ),
    "forgetting_points": (
        "forgetting (accuracy points)",
        f"old test messages (all but the {N_NEW} corrected), before - after",
    ),
    "old_test_accuracy_before": ("old test accuracy before the round", ""),
    "old_test_accuracy_after": ("old test accuracy after the round", ""),
    "new_examples_accuracy_before": ("accuracy on the 100 corrected messages, before", "the 10k adapter"),
    "new_examples_accuracy_after": ("accuracy on the 100 corrected messages, after", "after the incremental round"),
    "rss_base_only_mb": ("peak RSS, base only (MB)", "fresh process, VmHWM"),
    "rss_1_task_mb": ("peak RSS, 1 task (MB)", "fresh process, base + 1 adapter + one prediction"),
    "rss_5_tasks_mb": ("peak RSS, 5 tasks (MB)", "fresh process, base + 5 adapters"),
    "resident_1_task_mb": ("resident after loading, 1 task (MB)", "VmRSS of the same process"),
    "resident_5_tasks_mb": ("resident after loading, 5 tasks (MB)", "VmRSS of the same process"),
    "extra_task_mb": ("memory per extra task (MB)", "(resident 5 tasks - resident 1 task) / 4"),
    "adapter_mb": ("adapter on disk (MB)", "folder size"),
}


def _ratio(value: float, target: tuple[str, float]) -> str:
    direction, limit = target
    if value <= 0:
        return "n/a" if direction == ">=" else "inf"
    return f"{(value / limit if direction == '>=' else limit / value):.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.speed",
        __doc__,
        writes="bench/results/speed.json and speed.md (--quick: speed_quick.*)",
        data=shared_data("banking77"),
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the targets are for 2 cores)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the training data (smoke run)")
    parser.add_argument("--first-round-only", action="store_true", help="only the first-round measure, printed")
    parser.add_argument(
        "--engine",
        default="auto",
        choices=("auto", *ENGINES),
        help="what runs the frozen bottom in every measure (auto: as the bot chooses, with its start-up check)",
    )
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--adapter", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    if options.rss_child is None:
        # Before the base is loaded and the engines checked: a clone without the data skips at once.
        require_data(["banking77"])
    # ONNX exports (ort-fp32) live as long as the run, then go.
    with tempfile.TemporaryDirectory(prefix="speed-engines-") as engines_dir:
        return measure(options, argv, engines_dir)


def measure(options: argparse.Namespace, argv: list[str] | None, engines_dir: str) -> int:
    global _engine
    choice = choose_engine(load_base(CamelConfig().resolved_base_model()), options.engine, engines_dir)
    _engine = choice.engine
    if options.rss_child is not None:
        rss_child(options.adapter, options.rss_child)
        return 0
    if options.first_round_only:  # the base is loaded (choose_engine above): the round's clock excludes it
        print(json.dumps({**measure_first_round(load_dataset("banking77")), "machine": machine_line(1, _engine.name)}))
        return 0
    started, facts = time.perf_counter(), machine_facts(options.threads, choice.name)
    results = {"engine": choice.name, "engine_reason": choice.reason, **run(options.threads, options.quick)}
    meta = result_meta("bench.method.speed", argv, facts, started)
    stem = "speed_quick" if options.quick else "speed"
    paths = write_results(stem, {**results, "meta": meta}, render(results, meta))
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
