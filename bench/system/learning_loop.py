"""The learning loop on a stream of BANKING77 corrections, through the real training-round child.

Scenarios: `banking77_20` = the demo's 20 most frequent intents, 3 seed labels
each, then 320 corrections, a round every 25; `banking77_77` = all 77 intents, 3 each, then
1,000 corrections, a round every 50. Messages are BANKING77 training texts in a fixed shuffled
order; every labelled message is stored with storage's API (record_message + add_correction),
and each round is `bot.loop.round`'s child process with the bot's default settings
(`Settings()`: its training threads, heldout fraction and gate), launched with the bot's own
`child_command`/`child_env`. After each round, the active adapter is scored on the BANKING77 test
messages of those intents ("loop"), beside a fresh offline `camel.train` with the shipped
defaults ("fresh") and the frozen logistic-regression probe ("probe"), both on the labels the
round trained on (storage's train split, i.e. without the round's held-out messages).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

import camel
import storage
from bench.common import (
    RESULTS,
    benchmark_parser,
    load_average,
    load_dataset,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    shared_data,
)
from bench.method.curve import evaluate_camel, logreg_scores
from bench.method.features import open_cache
from bot.settings import Settings
from bot.loop.runner import child_command, child_env

SCENARIOS: dict[str, dict[str, int]] = {
    "banking77_20": {"intents": 20, "seed_per_label": 3, "corrections": 320, "every": 25},
    "banking77_77": {"intents": 77, "seed_per_label": 3, "corrections": 1000, "every": 50},
}
TASK = "support"
WORKSPACE, CHANNEL = "T0BENCH", "C0BENCH"


def stream(data: Any, intents: list[str], seed_per_label: int, corrections: int) -> list[tuple[str, str]]:
    """Seed labels (n per intent) then the correction stream, as (text, label)."""
    pool = [(t, label) for t, label in zip(data.train_texts, data.train_labels) if label in intents]
    random.Random(0).shuffle(pool)
    seeds: list[tuple[str, str]] = []
    taken: Counter[str] = Counter()
    rest = []
    for text, label in pool:
        if taken[label] < seed_per_label:
            taken[label] += 1
            seeds.append((text, label))
        else:
            rest.append((text, label))
    return seeds + rest[:corrections]


def label_messages(db: Any, items: list[tuple[str, str]], start: int) -> None:
    for offset, (text, label) in enumerate(items):
        number = start + offset
        message_id = storage.messages.record_message(
            db, workspace=WORKSPACE, channel=CHANNEL, ts=f"{1700000000 + number}.000100", text=text, user="U0WRITER"
        )
        storage.corrections.add_correction(
            db, message_id=message_id, task=TASK, label=label, source="menu", user="U0LABELLER"
        )


def run_child(settings: Settings, db_path: str, db: Any, log: Path) -> tuple[int, float]:
    run_id = storage.runs.start_run(db, TASK, "threshold")
    command = child_command(settings, TASK, "threshold", run_id)
    started = time.perf_counter()
    with log.open("a") as handle:
        process = subprocess.run(
            command,
            env=child_env(settings.model.training_threads),
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return process.returncode, time.perf_counter() - started


def run_scenario(name: str, data: Any, cache: camel.FeatureCache) -> dict[str, Any]:
    spec = SCENARIOS[name]
    intents = [label for label, _ in Counter(data.train_labels).most_common(spec["intents"])]
    items = stream(data, intents, spec["seed_per_label"], spec["corrections"])
    test = [(t, label) for t, label in zip(data.test_texts, data.test_labels) if label in intents]
    test_texts, test_labels = [t for t, _ in test], [label for _, label in test]
    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=folder)
        db_path = str(Path(folder) / "camel.db")
        db = storage.open_store(db_path)
        storage.tasks.upsert_task(db, storage.TaskSpec(TASK, kind="intent", labels=sorted(intents), channels=[CHANNEL]))
        seeded = spec["seed_per_label"] * len(intents)
        cut_points = [seeded] + list(range(seeded + spec["every"], len(items) + 1, spec["every"]))
        done = rounds_seen = 0
        for cut in cut_points:
            label_messages(db, items[done:cut], done)
            done = cut
            code, child_s = run_child(settings, db_path, db, Path(folder) / "rounds.log")
            task = storage.tasks.get_task(db, TASK)
            resolution = storage.resolution.resolve_labels(
                db, TASK, admin_weight=settings.admin_weight, heldout_fraction=settings.learning.heldout_fraction
            )
            train_items = [m for m in resolution.labelled if m.split == "train"]
            texts, labels = [m.text for m in train_items], [m.label for m in train_items]
            row: dict[str, Any] = {
                "labels": cut,
                "train_labels": len(texts),
                "child_exit": code,
                "child_s": round(child_s, 2),
                "active_version": task.active_version if task else None,
            }
            versions = storage.adapters.list_adapters(db, TASK)
            newest = max(versions, key=lambda v: v.version) if versions else None
            if newest is not None and newest.version > rounds_seen:
                rounds_seen = newest.version  # this round made a candidate: what did the gate say?
                # the registration reason is the gate's reason; a promoted candidate is the active one now
                row["gate"] = {"promoted": newest.status == "active", "reason": newest.reason}
                row["heldout"] = newest.metrics.get("n")
            if task and task.active_version:
                record = storage.adapters.get_adapter(db, TASK, task.active_version)
                assert record is not None  # the active version is registered
                adapter = camel.load_adapter(record.path, cache.base)
                row["loop"] = evaluate_camel(adapter, cache, test_texts, test_labels, "accuracy")
            else:
                row["loop"] = None
            if len(set(labels)) >= 2:
                fresh = camel.train(
                    texts,
                    labels,
                    config=camel.CamelConfig(),
                    args=camel.TrainingArgs(num_threads=settings.model.training_threads),
                    cache=cache,
                )
                row["fresh"] = evaluate_camel(fresh.adapter, cache, test_texts, test_labels, "accuracy")
                row["probe"] = logreg_scores(cache, texts, labels, test_texts, test_labels, "accuracy", 0)[0]
            print(
                f"{name} {cut:5d} labels: loop {row['loop']} fresh {row.get('fresh')} probe {row.get('probe')} "
                f"(child {child_s:.1f}s, exit {code})",
                flush=True,
            )
            rounds.append(row)
    return {"rounds": rounds, "n_test": len(test_texts), "intents": len(intents), **spec}


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Learning loop",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"{meta['machine']}; {meta['total_s']:.0f} s wall.",
        "",
        __doc__.split("\n\n", 1)[1].strip(),
        "",
    ]
    for name in SCENARIOS:
        if name not in results:
            continue
        rows = [
            [
                r["labels"],
                r["train_labels"],
                _pct(r["loop"]),
                _pct(r.get("fresh")),
                _pct(r.get("probe")),
                r["child_s"],
                r["child_exit"],
                r.get("heldout", ""),
                _verdict(r.get("gate")),
            ]
            for r in results[name]["rounds"]
        ]
        lines += [
            f"## {name} ({results[name]['n_test']} test messages)",
            "",
            markdown_table(
                ["labels", "train split", "loop", "fresh", "probe", "child s", "exit", "held out", "gate"], rows
            ),
            "",
        ]
    return "\n".join(lines + ["![loop](loop.png)"])


def _verdict(gate: dict[str, Any] | None) -> str:
    if not gate:
        return ""
    if "promoted" not in gate:
        return gate["reason"]
    return ("promoted: " if gate["promoted"] else "rejected: ") + gate["reason"]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in SCENARIOS if n in results]
    figure, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names):
        rounds = results[name]["rounds"]
        for key in ("loop", "fresh", "probe"):
            points = [(r["labels"], 100 * r[key]) for r in rounds if r.get(key) is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=key)
        axis.set_title(name)
        axis.set_xlabel("labels")
        axis.set_ylabel("test accuracy (%)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        "bench.system.learning_loop",
        __doc__,
        writes="bench/results/loop.json, loop.md and loop.png (a run merges its scenarios into them); "
        "MiniLM states in bench/.cache/states",
        data=shared_data("banking77"),
    )
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this parent process")
    options = parser.parse_args(argv)
    require_data(["banking77"])
    torch.set_num_threads(options.threads)
    started, machine = time.perf_counter(), machine_line(options.threads)
    data = load_dataset("banking77")
    cache = open_cache()
    path = RESULTS / "loop.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    for name in options.scenarios:
        results[name] = run_scenario(name, data, cache)
        results["meta"] = {
            "command": recorded_command("bench.system.learning_loop", argv),
            "machine": machine,
            "total_s": time.perf_counter() - started,
            "load_end": load_average(),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        path.with_suffix(".md").write_text(render(results) + "\n")
        plot(results, path.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
