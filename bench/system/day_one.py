"""Day one at the bot level: the zero-shot guesses the bot serves before a task's first adapter.

The bot's own serving path: a task with BANKING77's intent names as labels (no description, no
labelled example, no adapter) in a real data folder, and `bot.loop.registry.PredictorRegistry.guess`
(the one the Slack listener calls) for every test message, one at a time as messages arrive.
Two tasks: all 77 intents, and the demo's 20 most frequent intents (their test messages only).
Each stream is run twice: label names only, and as served (messages stored as they arrive, the
guesser centring on them once 50 are stored). Reported: top-1 and top-3 accuracy, and the
latency of one guess (the first, which loads the model and builds the prototypes, apart).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import Counter
from typing import Any

import torch

import storage
from bench.common import (
    benchmark_parser,
    load_dataset,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    shared_data,
    write_results,
)
from bot.loop.registry import PredictorRegistry
from bot.loop.zero_shot import MAX_BACKGROUND
from bot.settings import Settings


CHANNEL = "C0BENCH"


def measure(name: str, labels: list[str], texts: list[str], truth: list[str], *, centred: bool) -> dict[str, Any]:
    """One pass over the stream. `centred`: as the bot runs, each message is stored before it is
    guessed and the guesser centres on the task's stored messages once there are enough; otherwise
    label names only."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=folder)
        db = storage.open_store(settings.db_path)
        task = storage.tasks.upsert_task(
            db, storage.TaskSpec(name, kind="intent", labels=sorted(labels), channels=[CHANNEL])
        )
        background = (
            (lambda t: storage.messages.recent_texts(db, t.channels, limit=MAX_BACKGROUND)) if centred else None
        )
        registry = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir, background=background)
        top1 = top3 = 0
        latencies = []
        for number, (text, label) in enumerate(zip(texts, truth)):
            if centred:
                storage.messages.record_message(
                    db, workspace="T0", channel=CHANNEL, ts=f"{1700000000 + number}.000100", text=text
                )
            started = time.perf_counter()
            guess = registry.guess(task, text)
            latencies.append((time.perf_counter() - started) * 1000.0)
            assert guess is not None
            top1 += guess.label == label
            top3 += label in [guessed for guessed, _ in guess.top3]
        db.close()
    first_ms, rest = latencies[0], sorted(latencies[1:])
    return {
        "labels": len(labels),
        "n": len(texts),
        "top1": round(100.0 * top1 / len(texts), 2),
        "top3": round(100.0 * top3 / len(texts), 2),
        "first_guess_ms": round(first_ms, 1),
        "guess_ms_median": round(statistics.median(rest), 2),
        "guess_ms_p95": round(rest[int(0.95 * (len(rest) - 1))], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.system.day_one",
        __doc__,
        writes="bench/results/day_one.json and day_one.md",
        data=shared_data("banking77"),
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the bot serves with the rest)")
    parser.add_argument("--quick", action="store_true", help="500 test messages instead of all")
    options = parser.parse_args(argv)
    wall = time.perf_counter()
    require_data(["banking77"])
    torch.set_num_threads(options.threads)
    machine = machine_line(options.threads)
    data = load_dataset("banking77", test_limit=500 if options.quick else None)
    intents = sorted(set(data.train_labels))
    demo = [label for label, _ in Counter(data.train_labels).most_common(20)]
    results: dict[str, Any] = {
        "machine": machine,
        "command": recorded_command("bench.system.day_one", argv),
    }
    kept = [(t, label) for t, label in zip(data.test_texts, data.test_labels) if label in demo]
    streams = {
        "banking77_77": (intents, data.test_texts, data.test_labels),
        "banking77_20": (demo, [t for t, _ in kept], [label for _, label in kept]),
    }
    rows = []
    for key, (labels, texts, truth) in streams.items():
        results[key] = {}
        for variant, centred in (("names_only", False), ("as_served", True)):
            r = results[key][variant] = measure(key, labels, texts, truth, centred=centred)
            print(key, variant, r, flush=True)
            rows.append(
                [
                    key,
                    variant,
                    r["labels"],
                    r["n"],
                    r["top1"],
                    r["top3"],
                    r["first_guess_ms"],
                    r["guess_ms_median"],
                    r["guess_ms_p95"],
                ]
            )
    markdown = "\n".join(
        [
            "# Day one: the bot's zero-shot guesses (label names only, no description)",
            "",
            f"Command: `{results['command']}`. Machine: {machine}.",
            "Path: `PredictorRegistry.guess` (what the Slack listener calls before a task's first adapter),",
            "one message at a time, BANKING77 test messages of the task's intents, all-MiniLM-L6-v2.",
            "`names_only`: cosine with the label-name prototypes. `as_served`: each message is stored before",
            "it is guessed, as the bot does, and the guesser centres on the task's stored messages once 50",
            "are stored (refreshed as they double, the newest 1,000 at most). The very first guess",
            "(first row) loads the base model, every first guess builds the prototypes; median and p95",
            "are over the other guesses (rebuilds included).",
            "",
            markdown_table(
                [
                    "task",
                    "variant",
                    "labels",
                    "messages",
                    "top-1 %",
                    "top-3 %",
                    "first guess ms",
                    "median ms",
                    "p95 ms",
                ],
                rows,
            ),
        ]
    )
    results["total_s"] = round(time.perf_counter() - wall, 1)
    json_path, md_path = write_results("day_one", results, markdown)
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
