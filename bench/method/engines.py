"""Engines for the frozen bottom, paired on BANKING77 test: do they keep the answers, and how fast are they?

One adapter is trained once (shipped defaults, bottom states from torch-fp32); then only the
engine that computes the bottom's states is swapped, each engine with an empty feature cache.
For every engine, on the same test messages: accuracy and its change against torch-fp32 (points),
the share of answers (top label) that changed, throughput (one answer() of every test message,
bottom pass included), latency p50 of one uncached message per call and of a cached one, and the
cosine of each message's mean-pooled bottom states to torch-fp32's (min, 0.1% quantile, mean):
the lowest cosine seen here justifies the start-up agreement bound in camel.engines.
An engine qualifies when accuracy moves by at most 0.2 points and at most 0.5% of answers change.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from typing import Any

import torch

from bench.common import (
    benchmark_parser,
    load_average,
    load_dataset,
    machine_facts,
    markdown_table,
    require_data,
    result_meta,
    say,
    sample_per_class,
    shared_data,
    write_results,
)
from camel import (
    CamelConfig,
    FeatureCache,
    Predictor,
    TrainingArgs,
    load_adapter,
    load_base,
    make_engine,
    save_adapter,
    train,
)
from camel.base import mean_pool
from camel.engines import AGREEMENT_BOUND, ENGINES, unavailable_reason

MAX_ACCURACY_CHANGE_POINTS = 0.2
MAX_ANSWERS_CHANGED = 0.005
LATENCY_MESSAGES = 200
SPEED_MESSAGES = 1000


def measure_engine(adapter: Any, name: str, texts: list[str], gold: list[str], folder: str) -> dict[str, Any]:
    """Answers, accuracy and bottom states of every test message through `name`, from an empty cache."""
    engine = make_engine(name, folder)
    split, max_length = adapter.split_layer, adapter.config.max_length
    # Export (ort-fp32) and kernel warm-up are start-up costs, not per-message ones.
    FeatureCache(adapter.base, engine=engine).states(["warm up the kernels"], split, max_length)
    predictor = Predictor(adapter, FeatureCache(adapter.base, engine=engine))
    _, probabilities = predictor.probabilities(texts)
    predicted = [adapter.labels[i] for i in probabilities.argmax(dim=-1).tolist()]
    return {
        "engine": engine,
        "predicted": predicted,
        "pooled": _pooled(predictor.cache, texts, split, max_length),
        "accuracy": sum(p == g for p, g in zip(predicted, gold)) / len(gold),
    }


def measure_speed(adapter: Any, engine: Any, texts: list[str]) -> dict[str, float]:
    """One pass: throughput of one answer() over `texts` from an empty cache, then latency of one
    uncached message per call and of the same messages again (cached)."""
    predictor = Predictor(adapter, FeatureCache(adapter.base, engine=engine))
    started = time.perf_counter()
    predictor.answer(texts)
    throughput = len(texts) / (time.perf_counter() - started)
    single = Predictor(adapter, FeatureCache(adapter.base, engine=engine))
    uncached: list[float] = []
    cached: list[float] = []
    for pass_times in (uncached, cached):
        for text in texts[:LATENCY_MESSAGES]:
            started = time.perf_counter()
            single.answer([text])
            pass_times.append((time.perf_counter() - started) * 1000)
    return {
        "throughput_msg_s": throughput,
        "latency_p50_ms": statistics.median(uncached),
        "latency_cached_p50_ms": statistics.median(cached),
    }


def _pooled(cache: FeatureCache, texts: list[str], split: int, max_length: int) -> torch.Tensor:
    """Mean-pooled bottom states as the top reads them (float16 in the cache)."""
    rows = []
    for start in range(0, len(texts), 256):
        hidden, mask = cache.batch(texts[start : start + 256], split, max_length)
        rows.append(mean_pool(hidden, mask))
    return torch.cat(rows)


def compare(adapter: Any, texts: list[str], gold: list[str], repeats: int) -> tuple[dict[str, Any], dict[str, str]]:
    """Every engine that can run here, paired with torch-fp32 on the same messages (see the module
    docstring); and the engines skipped, with why. bench.method.speed reports these as `engines`."""
    measured: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in ENGINES:
            why = unavailable_reason(name)
            if why:
                skipped[name] = why
                continue
            say(f"engine {name}: answers on every test message")
            measured[name] = measure_engine(adapter, name, texts, gold, folder)
        # Speed in rounds, engines taking turns, best of the rounds: on a shared machine the other
        # jobs' load comes and goes, and the best round is the one it disturbed least.
        speed_texts = texts[-SPEED_MESSAGES:]
        speeds: dict[str, list[dict[str, float]]] = {name: [] for name in measured}
        for repeat in range(repeats):
            for name, found in measured.items():
                say(f"speed round {repeat + 1}/{repeats}: {name} (load {load_average():.2f})")
                speeds[name].append(measure_speed(adapter, found["engine"], speed_texts))
    for name, rounds in speeds.items():
        measured[name]["throughput_msg_s"] = max(r["throughput_msg_s"] for r in rounds)
        measured[name]["latency_p50_ms"] = min(r["latency_p50_ms"] for r in rounds)
        measured[name]["latency_cached_p50_ms"] = min(r["latency_cached_p50_ms"] for r in rounds)
        measured[name]["rounds"] = rounds
    reference = measured["torch-fp32"]
    engines: dict[str, Any] = {}
    for name, found in measured.items():
        changed = sum(a != b for a, b in zip(found["predicted"], reference["predicted"])) / len(texts)
        change = 100 * (found["accuracy"] - reference["accuracy"])
        cosines = torch.nn.functional.cosine_similarity(found["pooled"], reference["pooled"], dim=-1)
        engines[name] = {
            "accuracy": found["accuracy"],
            "accuracy_change_points": change,
            "answers_changed": changed,
            "qualifies": abs(change) <= MAX_ACCURACY_CHANGE_POINTS and changed <= MAX_ANSWERS_CHANGED,
            "throughput_msg_s": found["throughput_msg_s"],
            "latency_p50_ms": found["latency_p50_ms"],
            "latency_cached_p50_ms": found["latency_cached_p50_ms"],
            "speedup_vs_torch_fp32": found["throughput_msg_s"] / reference["throughput_msg_s"],
            "cosine_min": float(cosines.min()),
            "cosine_q001": float(torch.quantile(cosines.double(), 0.001)),
            "cosine_mean": float(cosines.mean()),
            "speed_rounds": found["rounds"],
        }
    return _rounded(engines), skipped


def run(threads: int, quick: bool, repeats: int, adapter_dir: str | None, per_class: int) -> dict[str, Any]:
    data = load_dataset("banking77", test_limit=600 if quick else None)
    # Fewer labels than the shipped 10k make a less sure adapter, whose answers change more easily
    # with the engine: a stricter test of "keeps the answers", and a quicker one.
    train_texts, train_labels = sample_per_class(
        data.train_texts, data.train_labels, 10 if quick else per_class, seed=0
    )
    base = load_base(CamelConfig().resolved_base_model())
    loaded = bool(adapter_dir) and os.path.isdir(str(adapter_dir))
    if adapter_dir and loaded:
        say(f"loading the adapter in {adapter_dir}")
        adapter = load_adapter(adapter_dir, base)
    else:
        say(f"training one adapter on {len(train_texts)} messages (torch-fp32 bottom states)")
        args = TrainingArgs(num_threads=threads)
        adapter = train(train_texts, train_labels, args=args, cache=FeatureCache(base)).adapter
        if adapter_dir:
            save_adapter(adapter, adapter_dir)
    adapter.eval()
    engines, skipped = compare(adapter, data.test_texts, data.test_labels, repeats)
    reference_accuracy = engines["torch-fp32"]["accuracy"]
    return {
        "train_messages": None if loaded else len(train_texts),
        "adapter_folder": adapter_dir,
        "adapter_test_accuracy": reference_accuracy,
        "speed_messages": min(SPEED_MESSAGES, len(data.test_texts)),
        "repeats": repeats,
        "test_messages": len(data.test_texts),
        "agreement_bound": AGREEMENT_BOUND,
        "engines": engines,
        "skipped": skipped,
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 6) if isinstance(value, float) else value


def render(results: dict[str, Any], meta: dict[str, Any]) -> str:
    rows = [
        [
            name,
            f"{100 * e['accuracy']:.2f}",
            f"{e['accuracy_change_points']:+.2f}",
            f"{100 * e['answers_changed']:.2f}%",
            "yes" if e["qualifies"] else "no",
            f"{e['throughput_msg_s']:.0f}",
            f"{e['speedup_vs_torch_fp32']:.2f}x",
            f"{e['latency_p50_ms']:.1f}",
            f"{e['latency_cached_p50_ms']:.1f}",
            f"{e['cosine_min']:.6f} / {e['cosine_q001']:.6f} / {e['cosine_mean']:.6f}",
        ]
        for name, e in results["engines"].items()
    ]
    skipped = "".join(f"\n- {name} not measured: {why}" for name, why in results["skipped"].items())
    return "\n".join(
        [
            "# Engines for the frozen bottom",
            "",
            f"Command: `{meta['command']}`",
            "",
            f"{meta['machine']}; load average at end {meta['load_end']:.2f}; total wall time {meta['total_s']:.0f} s.",
            "",
            f"One adapter ({_trained(results)}; test accuracy {100 * results['adapter_test_accuracy']:.2f} %), then "
            f"only the bottom's engine swapped, each with an empty cache, on the same {results['test_messages']:,} "
            f"test messages. Qualifies: accuracy within {MAX_ACCURACY_CHANGE_POINTS} points and at most "
            f"{100 * MAX_ANSWERS_CHANGED}% of answers changed, against torch-fp32. Speed, best of "
            f"{results['repeats']} rounds with the engines taking turns: throughput of one answer() over "
            f"{results['speed_messages']:,} test messages from an empty cache (bottom pass included); latency: one "
            f"message per call, {LATENCY_MESSAGES} messages, uncached then cached. Cosine: each message's "
            "mean-pooled bottom states against "
            f"torch-fp32's (min / 0.1% quantile / mean); the start-up agreement bound is {results['agreement_bound']}.",
            "",
            markdown_table(
                [
                    "engine",
                    "accuracy %",
                    "change (points)",
                    "answers changed",
                    "qualifies",
                    "messages/s",
                    "speed-up",
                    "latency p50 (ms)",
                    "cached p50 (ms)",
                    "cosine min / q0.001 / mean",
                ],
                rows,
            )
            + skipped,
            "",
        ]
    )


def _trained(results: dict[str, Any]) -> str:
    if results["train_messages"] is None:
        return f"loaded from {results['adapter_folder']}, which a previous run trained"
    return f"trained with the shipped defaults on {results['train_messages']:,} BANKING77 training messages"


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.method.engines",
        __doc__,
        writes="bench/results/engines.json and engines.md (--quick: engines_quick.*)",
        data=shared_data("banking77"),
    )
    parser.add_argument("--threads", type=int, default=2, help="torch (and ONNX Runtime) threads")
    parser.add_argument("--quick", action="store_true", help="10 training messages per intent, 600 test messages")
    parser.add_argument("--per-class", type=int, default=20, help="training messages per intent for the adapter")
    parser.add_argument("--repeats", type=int, default=3, help="speed rounds per engine (best one kept)")
    parser.add_argument(
        "--adapter",
        default="bench/.cache/engines_adapter",
        help="load the adapter from this folder if it exists, else train one (shipped defaults, --per-class "
        "messages of every intent) and save it there, so a rerun measures the same adapter; '' trains without saving",
    )
    options = parser.parse_args(argv)
    torch.set_num_threads(options.threads)
    require_data(["banking77"])
    started, facts = time.perf_counter(), machine_facts(options.threads)
    adapter_dir = options.adapter and (options.adapter + ("_quick" if options.quick else ""))
    results = run(options.threads, options.quick, options.repeats, adapter_dir, options.per_class)
    meta = result_meta("bench.method.engines", argv, facts, started)
    stem = "engines_quick" if options.quick else "engines"
    paths = write_results(stem, {**results, "meta": meta}, render(results, meta))
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
