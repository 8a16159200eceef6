"""Day one at the bot level: the zero-shot guesses the bot serves before a task's first adapter.

Run: `.venv/bin/python -m bench.day_one [--threads N] [--quick]` (writes bench/results/day_one.json
and day_one.md). Data: ../shared/data/banking77; without it the run prints where it looked and
exits 0.

The bot's own serving path: a task with BANKING77's intent names as labels (no description, no
labelled example, no adapter) in a real data folder, and `bot.loop.registry.PredictorRegistry.guess`
(the one the Slack listener calls) for every test message, one at a time as messages arrive.
Two tasks: all 77 intents, and the demo's 20 most frequent intents (their test messages only).
Reported: top-1 and top-3 accuracy, and the latency of one guess (median and 95th percentile,
warm: the prototypes are built at the first message, whose time is reported apart).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from typing import Any

import torch

import storage
from bench.common import load_dataset, machine_line, markdown_table, require_data, write_results
from bot.loop.registry import PredictorRegistry
from bot.settings import Settings


def measure(name: str, labels: list[str], texts: list[str], truth: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=folder)
        db = storage.open_store(settings.db_path)
        task = storage.upsert_task(db, name, kind="intent", labels=sorted(labels))
        registry = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
        started = time.perf_counter()
        first = registry.guess(task, texts[0])
        first_ms = (time.perf_counter() - started) * 1000.0
        assert first is not None
        top1 = top3 = 0
        latencies = []
        for text, label in zip(texts, truth):
            started = time.perf_counter()
            guess = registry.guess(task, text)
            latencies.append((time.perf_counter() - started) * 1000.0)
            assert guess is not None
            top1 += guess.label == label
            top3 += label in [guessed for guessed, _ in guess.top3]
        db.close()
    latencies.sort()
    return {
        "labels": len(labels),
        "n": len(texts),
        "top1": round(100.0 * top1 / len(texts), 2),
        "top3": round(100.0 * top3 / len(texts), 2),
        "first_guess_ms": round(first_ms, 1),
        "guess_ms_median": round(statistics.median(latencies), 2),
        "guess_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day_one", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the bot serves with the rest)")
    parser.add_argument("--quick", action="store_true", help="500 test messages instead of all")
    options = parser.parse_args(argv)
    require_data(["banking77"])
    torch.set_num_threads(options.threads)
    machine = machine_line(options.threads)
    data = load_dataset("banking77", test_limit=500 if options.quick else None)
    intents = sorted(set(data.train_labels))
    demo = [label for label, _ in Counter(data.train_labels).most_common(20)]
    results: dict[str, Any] = {
        "machine": machine,
        "command": "python -m bench.day_one" + (" --quick" if options.quick else ""),
    }
    results["banking77_77"] = measure("banking77_77", intents, data.test_texts, data.test_labels)
    kept = [(t, label) for t, label in zip(data.test_texts, data.test_labels) if label in demo]
    results["banking77_20"] = measure("banking77_20", demo, [t for t, _ in kept], [label for _, label in kept])
    rows = [
        [key, r["labels"], r["n"], r["top1"], r["top3"], r["first_guess_ms"], r["guess_ms_median"], r["guess_ms_p95"]]
        for key, r in results.items()
        if isinstance(r, dict)
    ]
    markdown = "\n".join(
        [
            "# Day one: the bot's zero-shot guesses (label names only, no description)",
            "",
            f"Command: `{results['command']}`. Machine: {machine}.",
            "Path: `PredictorRegistry.guess` (what the Slack listener calls before a task's first adapter),",
            "one message at a time, BANKING77 test messages of the task's intents, all-MiniLM-L6-v2.",
            "",
            markdown_table(
                ["task", "labels", "messages", "top-1 %", "top-3 %", "first guess ms", "median ms", "p95 ms"], rows
            ),
        ]
    )
    json_path, md_path = write_results("day_one", results, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
