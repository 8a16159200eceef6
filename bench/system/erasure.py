"""Erasure benchmark: the longest prediction while messages are deleted, with a full feature cache.

Real all-MiniLM-L6-v2, a real SQLite store, the bot's serving registry and its one erasure path
(`bot.erasure.forget_message`, what an inbox worker runs for a message deleted in Slack), on
BANKING77 messages from ../shared/data (five intents).

1. An adapter is trained in-process on 5 x 30 labelled messages and served as the bot serves it.
2. The feature cache is filled to `--cache-mb` (also the cap): the states of `--real-texts`
   stored messages, computed by the serving predictor and flushed 256 at a time as the bot writes
   them; then filler entries (random float16 states with the real texts' token counts, keyed by
   stored filler messages) in shards of 64 MB, the size the nightly compaction writes. The bytes
   of a state do not change what a rewrite costs, only their number does.
3. While PREDICT_THREADS threads answer held-out messages (not cached: each runs the whole
   encoder, as a new message does), messages are deleted through the erasure path: `--deletions`
   recent ones (states in a small flushed shard) and `--deletions` old ones (states in a 64 MB
   shard). Each deletion's time includes its row, the inbox, the shard rewrite and the WAL
   checkpoint. After each, no shard may hold the text's states.
4. For comparison, in the same run: one whole-cache compaction (every shard rewritten, as
   `delete-user` did before), and the same compaction holding the cache's lock throughout, as
   `FeatureCache.compact` did before it stopped holding that lock across file work.

Every prediction is timed; one "during" a phase overlaps it. The machine is shared: the result
names its load.
"""

from __future__ import annotations

import csv
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

import camel
import storage
from bench.common import (
    DATA_DIR,
    benchmark_parser,
    machine_line,
    markdown_table,
    recorded_command,
    require_data,
    shared_data,
    write_results,
)
from bot import erasure, runtime
from bot.loop import versions as version_dirs
from bot.loop.registry import PredictorRegistry
from bot.settings import ModelSettings, RetentionSettings, Settings, TaskSettings
from camel.cache import COMPACT_SHARD_BYTES, SHARD_SUFFIX

MODULE = "bench.system.erasure"
TASK, WORKSPACE, CHANNEL = "support", "T1", "C1"
LABELS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "pin_blocked", "top_up_failed"]
PER_LABEL, PREDICT_THREADS, FLUSH_EVERY = 30, 2, 256
GAP_S = 2.0  # quiet time between deletions, so each prediction overlaps at most one


def read_texts(name: str) -> tuple[list[str], list[str]]:
    with (DATA_DIR / "banking77" / name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["category"] for row in rows]


def make_settings(folder: Path, cache_mb: int) -> Settings:
    return Settings(
        data_dir=str(folder),
        model=ModelSettings(base_model="", trainable_layers=2),
        retention=RetentionSettings(cache_max_bytes=cache_mb * 1_000_000),
        tasks=[TaskSettings(name=TASK, kind="intent", labels=LABELS, channels=[CHANNEL])],
    )


def serve_first_adapter(settings: Settings, db: Any, texts: list[str], labels: list[str]) -> PredictorRegistry:
    chosen = [(t, lab) for lab in LABELS for t in [t for t, x in zip(texts, labels) if x == lab][:PER_LABEL]]
    config = camel.CamelConfig(base_model=camel.default_base_model_path(), trainable_layers=2)
    args = camel.TrainingArgs(max_epochs=4, seed=0, num_threads=1)
    adapter = camel.train([t for t, _ in chosen], [lab for _, lab in chosen], config=config, args=args).adapter
    folder = version_dirs.version_dir(settings.data_dir, TASK, 1)
    camel.save_adapter(adapter, str(folder))
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(task=TASK, version=1, path=str(folder), parent_version=None, run_id=None, metrics={}),
    )
    storage.adapters.activate_adapter(db, TASK, 1, reason="bench")
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir, zero_shot=False)
    assert predictors.sync(db) == [] and predictors.get(TASK) is not None
    return predictors


def store(db: Any, texts: list[str], first: int) -> list[str]:
    """Each text as a stored message of the channel; returns their ts."""
    stamps = []
    for i, text in enumerate(texts):
        ts = f"{1_700_000_000 + first + i}.000100"
        storage.messages.record_message(db, workspace=WORKSPACE, channel=CHANNEL, ts=ts, text=text, user="U0BENCH")
        stamps.append(ts)
    return stamps


def fill_real(predictor: camel.Predictor, texts: list[str]) -> list[int]:
    """The states of `texts` as the bot writes them (flushed FLUSH_EVERY at a time); their token counts."""
    lengths = []
    for start in range(0, len(texts), FLUSH_EVERY):
        chunk = texts[start : start + FLUSH_EVERY]
        adapter = predictor.adapter
        states = predictor.cache.states(chunk, adapter.split_layer, adapter.config.max_length)
        lengths += [state.shape[0] for state in states]
        predictor.cache.flush()
    return lengths


def fill_filler(cache: camel.FeatureCache, adapter: camel.Adapter, lengths: list[int], target: int) -> list[str]:
    """Shards of COMPACT_SHARD_BYTES of filler entries until the folder holds `target` bytes; their texts."""
    assert cache.directory is not None
    rng = random.Random(0)
    texts: list[str] = []
    hidden = adapter.base.hidden_size
    while cache.disk_bytes() < target:
        shard: dict[str, torch.Tensor] = {}
        size = 0
        room = min(COMPACT_SHARD_BYTES, target - cache.disk_bytes())
        while size < room:
            text = f"filler message {len(texts)} {uuid.uuid4().hex[:8]}"
            rows = rng.choice(lengths)
            shard[cache.key(text, adapter.split_layer, adapter.config.max_length)] = torch.randn(
                rows, hidden, dtype=torch.float16
            )
            texts.append(text)
            size += rows * hidden * 2 + 160  # the state and its header entry
        path = os.path.join(cache.directory, f"filler-{uuid.uuid4().hex}{SHARD_SUFFIX}")
        save_file(shard, path)
        os.chmod(path, 0o600)
    return texts


class Predicting:
    """Threads answering held-out messages continuously; each prediction's start and end."""

    def __init__(self, predictors: PredictorRegistry, texts: list[str]) -> None:
        self.predictors, self.texts = predictors, texts
        self.stop, self.lock = threading.Event(), threading.Lock()
        self.spans: list[tuple[float, float]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(PREDICT_THREADS)]

    def _run(self, n: int) -> None:
        i = n
        while not self.stop.is_set():
            # A fresh text each time (a number appended): never cached, as a new message is not.
            text = f"{self.texts[i % len(self.texts)]} ({i})"
            i += PREDICT_THREADS
            started = time.perf_counter()
            failure = ""
            try:
                serving = self.predictors.serving(TASK)
                assert serving is not None
                serving.predictor.answer([text])  # as the bot answers a message
            except Exception as exc:  # counting every failure is part of the measure
                failure = repr(exc)
            with self.lock:
                self.spans.append((started, time.perf_counter()))
                if failure:
                    self.failures.append(failure)

    def __enter__(self) -> "Predicting":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def during(self, windows: list[tuple[float, float]]) -> list[float]:
        """Latencies (ms) of the predictions that overlapped one of `windows`."""
        with self.lock:
            spans = list(self.spans)
        return [1000 * (e - s) for s, e in spans if any(s < end and e > start for start, end in windows)]


def summary(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"predictions": 0}
    return {
        "predictions": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "max_ms": ordered[-1],
    }


@contextmanager
def timed(windows: list[tuple[float, float]]) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        windows.append((started, time.perf_counter()))


def span(window: tuple[float, float]) -> float:
    return window[1] - window[0]


def delete(settings: Settings, db: Any, cache: camel.FeatureCache, ts: str, text: str) -> dict[str, Any]:
    """One message deleted in Slack, through the erasure path; then checks no shard holds its states."""
    started = time.perf_counter()
    _forgotten, derived = erasure.forget_message(
        settings, db, workspace=WORKSPACE, channel=CHANNEL, ts=ts, actor="slack", cache=cache
    )
    return {
        "seconds": time.perf_counter() - started,
        "shards_rewritten": derived.cache_shards_rewritten,
        "entries_removed": derived.cache_entries_removed,
        "checkpointed": derived.checkpointed,
        "digest": camel.text_digest(text),
    }


def still_holding(cache: camel.FeatureCache, digest: str) -> int:
    """Shards that hold the digest, as a process opening the folder afresh finds them."""
    return len(camel.FeatureCache(cache.base, cache.directory).holders([digest]))


def run(options: Any, folder: Path) -> dict[str, Any]:
    settings = make_settings(folder, options.cache_mb)
    db = runtime.open_store(settings)
    train_texts, train_labels = read_texts("train.csv")
    test_texts, _ = read_texts("test.csv")
    predictors = serve_first_adapter(settings, db, train_texts, train_labels)
    serving = predictors.serving(TASK)
    assert serving is not None and predictors.cache is not None
    predictor, cache = serving.predictor, predictors.cache

    real = [t for t in dict.fromkeys(train_texts[::-1])][: options.real_texts]
    real_ts = store(db, real, 0)
    started = time.perf_counter()
    lengths = fill_real(predictor, real)
    filler = fill_filler(cache, predictor.adapter, lengths, options.cache_mb * 1_000_000)
    fill_s = time.perf_counter() - started
    cache.refresh()
    rng = random.Random(1)
    old_targets = rng.sample(filler, options.deletions)
    old_ts = store(db, old_targets, len(real))
    recent = rng.sample(range(len(real)), options.deletions)
    shards = [p for p in Path(cache.directory or "").iterdir() if p.name.endswith(SHARD_SUFFIX)]
    layout = {
        "cache_bytes": cache.disk_bytes(),
        "shards": len(shards),
        "compacted_shards": sum(p.stat().st_size > COMPACT_SHARD_BYTES // 2 for p in shards),
        "entries": len(cache),
        "real_entries": len(real),
        "fill_s": fill_s,
    }

    windows: dict[str, list[tuple[float, float]]] = {name: [] for name in ("baseline", "recent", "old")}
    windows.update(compaction=[], compaction_holding_lock=[])
    deletions: dict[str, list[dict[str, Any]]] = {"recent": [], "old": []}
    with Predicting(predictors, test_texts) as load:
        time.sleep(GAP_S)
        with timed(windows["baseline"]):
            time.sleep(options.baseline_s)
        for kind, picks in (
            ("recent", [(real_ts[i], real[i]) for i in recent]),
            ("old", list(zip(old_ts, old_targets))),
        ):
            for ts, text in picks:
                time.sleep(GAP_S)
                with timed(windows[kind]):
                    done = delete(settings, db, cache, ts, text)
                done["shards_still_holding_it"] = still_holding(cache, done.pop("digest"))  # outside the window
                deletions[kind].append(done)
        time.sleep(GAP_S)
        with timed(windows["compaction"]):
            whole = erasure.compact_cache(settings, db, cache)
        time.sleep(GAP_S)
        with timed(windows["compaction_holding_lock"]):
            with cache._lock:  # noqa: SLF001 - what FeatureCache.compact held across its file work before
                held = cache.compact()
        time.sleep(GAP_S)
    db.close()
    assert whole is not None
    return {
        "layout": layout,
        "predictions": {name: summary(load.during(spans)) for name, spans in windows.items()},
        "deletions": deletions,
        "compaction_s": span(windows["compaction"][0]),
        "compaction_holding_lock_s": span(windows["compaction_holding_lock"][0]),
        "compaction_bytes": whole.bytes_after,
        "held_compaction_bytes": held.bytes_after,
        "failed_predictions": len(load.failures),
        "failures": load.failures[:5],
    }


def render(results: dict[str, Any]) -> str:
    p, layout = results["predictions"], results["layout"]

    def row(name: str, what: str) -> list[Any]:
        s = p[name]
        if not s["predictions"]:
            return [what, 0, "", "", ""]
        return [what, s["predictions"], f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", f"{s['max_ms']:.1f}"]

    def seconds(kind: str) -> str:
        values = [d["seconds"] for d in results["deletions"][kind]]
        return f"{statistics.median(values):.2f} s (max {max(values):.2f} s)"

    rewritten = {k: sorted({d["shards_rewritten"] for d in v}) for k, v in results["deletions"].items()}
    left = sum(d["shards_still_holding_it"] for v in results["deletions"].values() for d in v)
    lines = [
        "# Erasure benchmark",
        "",
        f"Command: `{results['command']}` (torch {results['torch']}, all-MiniLM-L6-v2, BANKING77 five intents).",
        "",
        f"Machine: {results['machine']}.",
        "",
        f"Load average while running: {results['load_during']:.2f} (the machine is shared, so wall times "
        "include waiting for a core).",
        "",
        f"Feature cache: {layout['cache_bytes'] / 1e6:,.0f} MB on disk (the cap), {layout['entries']:,} entries in "
        f"{layout['shards']} shards ({layout['compacted_shards']} of about {COMPACT_SHARD_BYTES >> 20} MB, as the "
        f"nightly compaction writes them; the others of {FLUSH_EVERY} entries, as the bot flushes them); "
        f"{layout['real_entries']:,} entries are MiniLM states of stored BANKING77 messages, the rest filler "
        "states of the same sizes.",
        "",
        f"Predictions: {PREDICT_THREADS} threads, each answering one new (uncached) message at a time, as the bot "
        "does; a prediction counts for a phase when it overlaps it.",
        "",
        markdown_table(
            ["phase", "predictions", "p50 ms", "p99 ms", "longest ms"],
            [
                row("baseline", "no deletion (baseline)"),
                row("recent", "deleting a recent message (states in a small shard)"),
                row("old", f"deleting an old message (states in a {COMPACT_SHARD_BYTES >> 20} MB shard)"),
                row("compaction", "whole-cache compaction (every shard rewritten; no lock held)"),
                row("compaction_holding_lock", "the same, holding the cache's lock throughout (the code before)"),
            ],
        ),
        "",
        markdown_table(
            ["deletion through bot.erasure.forget_message", "time (median, max)", "shards rewritten"],
            [
                ["recent message", seconds("recent"), ", ".join(map(str, rewritten["recent"]))],
                ["old message", seconds("old"), ", ".join(map(str, rewritten["old"]))],
                ["whole-cache compaction", f"{results['compaction_s']:.2f} s", layout["shards"]],
                ["whole-cache compaction holding the lock", f"{results['compaction_holding_lock_s']:.2f} s", ""],
            ],
        ),
        "",
        f"Shards still holding a deleted text's states after its deletion: {left}. Failed predictions: "
        f"{results['failed_predictions']}. Each deletion's time covers the row, the inbox, the shard rewrite "
        "(write a new file, fsync, rename, remove the old one) and the WAL checkpoint.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        MODULE,
        __doc__,
        writes="bench/results/erasure.json and erasure.md (and a temporary data folder of about --cache-mb, removed)",
        data=shared_data("banking77"),
    )
    parser.add_argument("--cache-mb", type=int, default=1000, help="the feature cache's size and cap (MB)")
    parser.add_argument("--real-texts", type=int, default=2000, help="stored messages whose real states are cached")
    parser.add_argument("--deletions", type=int, default=3, help="deletions of each kind (recent, old)")
    parser.add_argument("--baseline-s", type=float, default=20.0, help="seconds of predictions with no deletion")
    options = parser.parse_args(argv)
    machine = machine_line(1)
    require_data(["banking77"])
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    total = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="camel-erasure-") as folder:
        results = run(options, Path(folder))
    results.update(
        command=recorded_command(MODULE, argv),
        machine=machine,
        torch=torch.__version__,
        load_at_start=load_before,
        load_during=os.getloadavg()[0],
        total_s=time.perf_counter() - total,
    )
    write_results("erasure", results, render(results))
    print(json.dumps(results["predictions"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
