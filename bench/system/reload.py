"""Reload benchmark: hot swaps under concurrent predictions, and correction-to-live time.

Real all-MiniLM-L6-v2, real SQLite store, real LearningLoop with its APScheduler and training
child processes, on BANKING77 messages from ../shared/data (five intents).

1. A first round through the child process trains v0001 on 5 x 30 labelled messages.
2. Twenty more adapters are micro-trained in-process from v0001 (one epoch each, different
   seeds) and registered; then, while PREDICT_THREADS threads predict continuously, each is
   activated in storage and hot-reloaded (`LearningLoop.sync()`: read, verify, swap). Swap time
   is that call; a failed prediction is an exception or a label outside the task.
3. Correction to live, with the bot's default learning settings (threshold 25, debounce 30 s):
   one correction is stored (on a message of the training split) and `note_new_labels` called,
   as the bot does, while the threads keep predicting; the clock stops at the first prediction
   made by a version that learned from it: the interim version (the serving head refitted on
   every label, gated, served hot: bot/loop/interim.py), since the threshold round would wait
   for 24 more labels.
4. The round as before: one more correction, then a round started at once (no threshold, no
   debounce); the clock stops when the round's version serves.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

import camel
from bench.common import (
    DATA_DIR,
    RESULTS,
    benchmark_parser,
    machine_line,
    percentile,
    recorded_command,
    require_data,
    shared_data,
)
import storage
from bot.loop import versions as version_dirs
from bot import runtime
from bot.loop import LearningLoop
from bot.loop.registry import PredictorRegistry
from bot.settings import LearningSettings, ModelSettings, Settings, TaskSettings

MODULE = "bench.system.reload"
TASK = "support"
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed"]
PER_LABEL, N_SWAPS, PREDICT_THREADS, N_CORRECTIONS = 30, 20, 3, 3


def read_rows(name: str) -> dict[str, list[str]]:
    by_label: dict[str, list[str]] = {label: [] for label in LABELS}
    with (DATA_DIR / "banking77" / name).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["category"] in by_label:
                by_label[row["category"]].append(row["text"])
    return by_label


def make_settings(folder: Path, training_threads: int = 1) -> Settings:
    # The bot's default learning settings, but for the poll interval: long, so that only the
    # measured sync() call performs each swap.
    return Settings(
        data_dir=str(folder),
        model=ModelSettings(base_model="", trainable_layers=2, training_threads=training_threads),
        learning=LearningSettings(reload_poll_s=3600.0),
        tasks=[TaskSettings(name=TASK, kind="intent", labels=LABELS)],
    )


def store_labelled(db: Any, items: list[tuple[str, str]], first_ts: int) -> None:
    for i, (text, label) in enumerate(items):
        mid = storage.messages.record_message(db, workspace="T1", channel="C1", ts=f"{first_ts + i}.000100", text=text)
        storage.corrections.add_correction(db, message_id=mid, task=TASK, label=label, source="menu", user="U0BENCH")


def train_versions(settings: Settings, db: Any, train: dict[str, list[str]]) -> list[int]:
    """Twenty continued adapters from v0001, written and registered as candidates."""
    base = camel.load_base(camel.default_base_model_path())
    cache = camel.FeatureCache(base, settings.feature_cache_dir)
    first = storage.adapters.get_adapter(db, TASK, 1)
    assert first is not None  # the first round registered v0001 before this is called
    active = camel.load_adapter(first.path, base)
    texts = [t for label in LABELS for t in train[label][:PER_LABEL]]
    labels = [label for label in LABELS for _ in train[label][:PER_LABEL]]
    versions = []
    for seed in range(N_SWAPS):
        args = camel.TrainingArgs(max_epochs=1, seed=seed, num_threads=1)
        adapter = camel.train(
            texts[seed::7], labels[seed::7], args=args, init=active, replay=(texts, labels), cache=cache
        ).adapter
        version = version_dirs.free_version(settings.data_dir, TASK, storage.adapters.next_version(db, TASK))
        folder = version_dirs.version_dir(settings.data_dir, TASK, version)
        camel.save_adapter(adapter, str(folder))
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task=TASK,
                version=version,
                path=str(folder),
                parent_version=1,
                run_id=None,
                metrics={},
                reason="bench candidate",
            ),
        )
        versions.append(version)
    cache.flush()
    return versions


class Predicting:
    """Threads predicting continuously; counts predictions, failures and latencies."""

    def __init__(self, predictors: PredictorRegistry, texts: list[str], floor: float) -> None:
        self.predictors, self.texts, self.floor = predictors, texts, floor
        self.stop, self.lock = threading.Event(), threading.Lock()
        self.count = 0
        self.failures: list[str] = []
        self.latencies_ms: list[float] = []
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(PREDICT_THREADS)]

    def _run(self, n: int) -> None:
        i = n
        while not self.stop.is_set():
            text = self.texts[i % len(self.texts)]
            i += PREDICT_THREADS
            started = time.perf_counter()
            try:
                serving = self.predictors.serving(TASK)
                assert serving is not None  # v0001 serves before the threads start
                label = serving.predictor.answer([text], floor=self.floor)[0].label  # as the bot answers
                ok = label in LABELS
            except Exception as exc:  # counting every failure is the point of this benchmark
                label, ok = repr(exc), False
            with self.lock:
                self.count += 1
                self.latencies_ms.append(1000 * (time.perf_counter() - started))
                if not ok:
                    self.failures.append(label)

    def __enter__(self) -> "Predicting":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def bench_swaps(
    loop: LearningLoop, db: Any, predictors: PredictorRegistry, versions: list[int], texts: list[str]
) -> dict[str, Any]:
    swaps_ms, errors = [], []
    floor = storage.tasks.require_task(db, TASK).abstain_threshold
    with Predicting(predictors, texts, floor) as load:
        time.sleep(2.0)
        for version in versions:
            storage.adapters.activate_adapter(db, TASK, version, reason="bench promotion")
            started = time.perf_counter()
            errors += loop.sync()
            swaps_ms.append(1000 * (time.perf_counter() - started))
            if predictors.version(TASK) != version:
                errors.append(f"v{version} not serving after sync")
            time.sleep(0.5)
    return {
        "swap_p50_ms": percentile(swaps_ms, 0.5),
        "swap_p99_ms": percentile(swaps_ms, 0.99),
        "swap_max_ms": max(swaps_ms),
        "swaps": len(swaps_ms),
        "reload_errors": errors,
        "failed_predictions": len(load.failures),
        "predictions_during_swaps": load.count,
        "predict_p50_ms": percentile(load.latencies_ms, 0.5),
        "predict_p99_ms": percentile(load.latencies_ms, 0.99),
    }


def training_ts(first: int) -> int:
    """The first message ts from `first` on whose message lands in the training split (a held-out
    label is for judging versions, never learned, by an interim or a round alike)."""
    ts = first
    while storage.resolution.split_for("T1", "C1", f"{ts}.000100") != "train":
        ts += 1
    return ts


def correction_to_live(
    loop: LearningLoop, db: Any, predictors: PredictorRegistry, text: str, label: str, ts: int, timeout_s: float = 120.0
) -> dict[str, Any]:
    """Store one correction as the bot does; seconds until a version that learned from it answered."""
    loop.interim.wait_idle(timeout_s)  # a refit started before the correction would not include it
    before = predictors.version(TASK)
    floor = storage.tasks.require_task(db, TASK).abstain_threshold
    loop.interim.last.pop(TASK, None)
    started = time.perf_counter()
    store_labelled(db, [(text, label)], ts)
    scheduled = loop.note_new_labels(TASK)
    while time.perf_counter() - started < timeout_s:
        serving = predictors.serving(TASK)
        if serving is not None and serving.version != before:
            answer = serving.predictor.answer([text], floor=floor)[0]  # the first answer of the new version
            record = storage.adapters.get_adapter(db, TASK, serving.version)
            return {
                "seconds": time.perf_counter() - started,
                "outcome": "interim" if version_dirs.interim_of(record) is not None else "round",
                "version": serving.version,
                "answer_is_label": answer.label == label,
                "round_scheduled": scheduled,
            }
        last = loop.interim.last.get(TASK)
        if last is not None and last.outcome != "promoted":
            return {"seconds": None, "outcome": last.outcome, "reason": last.reason, "round_scheduled": scheduled}
        time.sleep(0.02)
    return {"seconds": None, "outcome": "timeout", "round_scheduled": scheduled}


def round_to_live(
    loop: LearningLoop, db: Any, predictors: PredictorRegistry, text: str, label: str, ts: int
) -> dict[str, Any]:
    """One more correction, then a full round at once; seconds until the round's version serves."""
    loop.interim.wait_idle(120.0)
    started = time.perf_counter()
    store_labelled(db, [(text, label)], ts)
    loop.interim.wait_idle(120.0)  # no interim is asked for here: the round alone is timed
    run = loop.run_round(TASK, "manual")
    served = predictors.version(TASK) == run.version and run.outcome == "promoted"
    return {
        "seconds": time.perf_counter() - started if served else None,
        "outcome": run.outcome,
        "reason": run.error or "",
    }


def write_results(results: dict[str, Any], stem: str = "reload") -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    s, c = results, results["corrections"]
    rows = [
        (
            "swap time p50 (the `sync()` call after activating in storage: read, verify, swap)",
            f"{s['swap_p50_ms']:.1f} ms",
            "",
        ),
        ("swap time p99", f"{s['swap_p99_ms']:.1f} ms", ""),
        (
            f"failed predictions ({s['predictions_during_swaps']} made by {PREDICT_THREADS} threads "
            f"during {s['swaps']} swaps, {s['predictions_during_corrections']} during the corrections' interims)",
            str(s["failed_predictions"]),
            "0",
        ),
        ("prediction latency p50 / p99 during swaps", f"{s['predict_p50_ms']:.1f} / {s['predict_p99_ms']:.1f} ms", ""),
        (
            "correction to live, default settings (median; the first answer of the interim version that learned it)",
            _seconds(s["correction_to_live_s"]),
            "<= 10 s",
        ),
        (
            "correction to live through a round started at once (no threshold, no debounce)",
            _seconds(s["round_correction_to_live_s"]),
            "",
        ),
        (
            f"first round through the child process (150 labels, fresh MiniLM adapter, "
            f"{s['training_threads']} training thread(s))",
            f"{s['first_round_s']:.1f} s",
            "<= 10 s",
        ),
    ]
    lines = [
        "# Reload benchmark",
        "",
        f"Command: `{s['command']}` (training threads {s['training_threads']}; torch {torch.__version__}, "
        f"all-MiniLM-L6-v2, BANKING77: {', '.join(LABELS)}).",
        "",
        f"Machine: {s['machine']}.",
        "",
        f"Load average while running: {s['load_average']:.2f} "
        "(the machine is shared, so wall times include waiting for a core).",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {t} |" for a, b, t in rows]
    lines += [
        "",
        f"Learning settings: {s['learning_settings']}. Each correction: "
        + "; ".join(
            f"{_seconds(x['seconds'])} ({x['outcome']}{', ' + str(x.get('reason')) if x.get('reason') else ''})"
            for x in c
        ),
        "",
        "The clock runs from storing the correction to the first answer of a version that learned from it. With "
        "the defaults the threshold round waits for 24 more labels, so that version is the interim one: the "
        "serving adapter's features of every labelled message (cached per set of blocks), its classifier refitted "
        "by L-BFGS, the gate on the held-out split, a full adapter folder written, activated and hot-swapped "
        "(bot/loop/interim.py). The round row is the old path: child process start (imports, base model load), "
        "micro-training from the active adapter with replay, evaluation of candidate and active, gate, hot reload.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        MODULE,
        __doc__,
        writes="bench/results/reload.json and reload.md (--training-threads N other than 1: reload_threadsN.*)",
        data=shared_data("banking77"),
    )
    parser.add_argument(
        "--training-threads",
        type=int,
        default=1,
        help="threads of the training child (the bot's default 1 writes reload.json, others reload_threadsN.json)",
    )
    options = parser.parse_args(argv)
    wall = time.perf_counter()
    threads = options.training_threads
    # Any other thread count is a variant beside the bot's default, in its own files.
    variant = "" if threads == 1 else f" --training-threads {threads}"
    machine = machine_line(1)  # it names the load average at the start
    torch.set_num_threads(1)
    require_data(["banking77"])
    train, test = read_rows("train.csv"), read_rows("test.csv")
    with tempfile.TemporaryDirectory(prefix="camel-reload-") as tmp:
        settings = make_settings(Path(tmp), threads)
        db = runtime.open_store(settings)
        store_labelled(db, [(t, label) for label in LABELS for t in train[label][:PER_LABEL]], 1_000_000)
        # The bot's own assembly, without the Slack app: registry and loop as `serve` builds them.
        bot = runtime.start(settings, db=db, slack=False)
        assert bot.loop is not None
        loop, predictors = bot.loop, bot.predictors
        loads = []
        try:
            started = time.perf_counter()
            first = loop.run_round(TASK, "manual")
            first_round_s = time.perf_counter() - started
            if first.outcome != "promoted":
                raise SystemExit(f"bench.reload: the first round was {first.outcome}: {first.error}")
            versions = train_versions(settings, db, train)
            probe = [t for label in LABELS for t in test[label]]
            loads.append(os.getloadavg()[0])
            results = bench_swaps(loop, db, predictors, versions, probe)
            loads.append(os.getloadavg()[0])
            corrections = []
            with Predicting(predictors, probe, storage.tasks.require_task(db, TASK).abstain_threshold) as load:
                ts = 2_000_000
                for i in range(N_CORRECTIONS):
                    label = LABELS[i % len(LABELS)]
                    ts = training_ts(ts + 1)
                    corrections.append(correction_to_live(loop, db, predictors, test[label][-1 - i], label, ts))
                    loads.append(os.getloadavg()[0])
                loop.interim.wait_idle(120.0)
            results["failed_predictions_during_swaps"] = results["failed_predictions"]
            results["failed_predictions"] += len(load.failures)
            results["failed_predictions_during_corrections"] = len(load.failures)
            results["predictions_during_corrections"] = load.count
            label = LABELS[-1]
            round_result = round_to_live(loop, db, predictors, test[label][-10], label, training_ts(ts + 1))
        finally:
            bot.stop()
    live = [c["seconds"] for c in corrections if c["seconds"] is not None]
    results.update(
        total_s=round(time.perf_counter() - wall, 1),
        correction_to_live_s=statistics.median(live) if live else None,
        corrections=corrections,
        round_correction_to_live_s=round_result["seconds"],
        round_after_correction=round_result,
        learning_settings="defaults (threshold_new_labels 25, debounce_s 30, interim on), reload_poll_s 3600",
        first_round_s=first_round_s,
        load_average=statistics.mean(loads),
        machine=machine,
        training_threads=threads,
        command=recorded_command(MODULE, variant.split()),
    )
    write_results(results, "reload" if not variant else f"reload_threads{threads}")
    print(json.dumps({k: v for k, v in results.items() if k != "corrections"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
