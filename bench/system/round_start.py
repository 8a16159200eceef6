"""Round start-up benchmark: a training round forked by the warm worker against today's cold child.

Real all-MiniLM-L6-v2, real SQLite store, the bot's own assembly without Slack (`bot.runtime.start`
with its LearningLoop), on BANKING77 messages from ../shared/data (five intents, 30 labelled
messages each). Each path runs in its own fresh Python process (the "serving" process) so their
memory is measured apart, one after the other in one run:

- cold: `[model] warm_worker = false`, each round is `python -m bot.loop.round` (today's path);
- warm: the default, each round is forked by the warm worker started with the bot.

In each: the bot starts (the warm path waits until its worker is ready, and says how long that
took), a first round trains a fresh adapter on 150 labels, five more labels arrive and a second
round continues from it. Per round: seconds from the trigger (`run_round` called) to training
start (the round's "start-up done" log line, after imports, the base, the feature cache and the
active adapter are loaded) and to the round's end. Memory: the serving process's resident set
after the rounds and 200 predictions, the warm worker's resident set while idle, and the highest
resident set sampled of each round's process.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    benchmark_parser,
    load_average,
    machine_line,
    markdown_table,
    project_env,
    recorded_command,
    require_data,
    rss_mb,
    shared_data,
    write_results,
)

MODULE = "bench.system.round_start"
PATHS = ("cold", "warm")
EXTRA_LABELS = 5  # labels added before the second round


class RoundMemory:
    """Samples the resident set of whatever round process the loop runs now."""

    def __init__(self, loop: Any, task: str) -> None:
        self.loop, self.task, self.peak_mb = loop, task, 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            child = self.loop.children.get(self.task)
            if child is not None:
                self.peak_mb = max(self.peak_mb, rss_mb(child.pid))
            time.sleep(0.05)

    def __enter__(self) -> RoundMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def training_start(log_path: Path) -> float | None:
    """The wall-clock time of the round's "start-up done" line (its log's asctime, local time)."""
    from bot.loop.round import TRAINING_STARTS

    for line in log_path.read_text(errors="replace").splitlines():
        if TRAINING_STARTS in line:
            stamp = " ".join(line.split()[:2])
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def timed_round(loop: Any, settings: Any, task: str) -> dict[str, Any]:
    from bot.loop.options import summary_path

    with RoundMemory(loop, task) as memory:
        triggered = time.time()
        run = loop.run_round(task, "manual")
        total = time.time() - triggered
    started = training_start(summary_path(settings.data_dir, run.id).with_suffix(".log"))
    return {
        "outcome": run.outcome,
        "error": run.error,
        "trigger_to_training_s": None if started is None else round(started - triggered, 2),
        "total_s": round(total, 2),
        "round_process_peak_rss_mb": round(memory.peak_mb, 1),
    }


def one_path(path: str) -> dict[str, Any]:
    """Everything measured for one path, in this (fresh) process."""
    import torch

    from bench.system.reload import LABELS, PER_LABEL, TASK, make_settings, read_rows, store_labelled
    from bot import runtime

    torch.set_num_threads(1)  # serving's threads, as the bot runs beside a one-thread round
    train, test = read_rows("train.csv"), read_rows("test.csv")
    with tempfile.TemporaryDirectory(prefix=f"camel-round-start-{path}-") as tmp:
        base = make_settings(Path(tmp), 1)
        settings = dataclasses.replace(base, model=dataclasses.replace(base.model, warm_worker=path == "warm"))
        db = runtime.open_store(settings)
        store_labelled(db, [(t, label) for label in LABELS for t in train[label][:PER_LABEL]], 1_000_000)
        started = time.time()
        bot = runtime.start(settings, db=db, slack=False)
        assert bot.loop is not None
        loop = bot.loop
        result: dict[str, Any] = {"path": path, "bot_start_s": round(time.time() - started, 2)}
        try:
            worker = loop.runner.warm
            if worker is not None:
                ready = worker.wait_ready(600)
                result["worker_ready_s"] = round(time.time() - started, 2) if ready else None
                result["worker_import_s"] = round(worker.timings.get("import_s", 0.0), 2)
                result["worker_base_load_s"] = round(worker.timings.get("load_s", 0.0), 2)
                result["worker_idle_rss_mb"] = round(rss_mb(worker.pid), 1)
            result["first_round"] = timed_round(loop, settings, TASK)
            extra = [(train[label][PER_LABEL + i], label) for i, label in enumerate(LABELS[:EXTRA_LABELS])]
            store_labelled(db, extra, 2_000_000)
            result["second_round"] = timed_round(loop, settings, TASK)
            serving = bot.predictors.serving(TASK)
            probe = [t for label in LABELS for t in test[label]][:200]
            if serving is not None:
                for text in probe:
                    serving.predictor.answer([text])
            result["serving_rss_mb"] = round(rss_mb(), 1)
            result["serving_peak_rss_mb"] = round(rss_mb(field="VmHWM"), 1)
            if worker is not None and loop.runner.warm is not None:
                result["worker_rss_after_rounds_mb"] = round(rss_mb(loop.runner.warm.pid), 1)
                result["rounds_forked"] = loop.runner.warm.forked
        finally:
            bot.stop()
            db.close()
    return result


def render(results: dict[str, Any]) -> str:
    cold, warm = results["paths"]["cold"], results["paths"]["warm"]

    def peaks(path: dict[str, Any]) -> str:
        first, second = path["first_round"], path["second_round"]
        return f"{first['round_process_peak_rss_mb']:.0f} / {second['round_process_peak_rss_mb']:.0f} MB"

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f} s"

    rows = [
        [
            "first round: trigger to training start",
            seconds(cold["first_round"]["trigger_to_training_s"]),
            seconds(warm["first_round"]["trigger_to_training_s"]),
            "<= 1 s",
        ],
        [
            "first round: total",
            seconds(cold["first_round"]["total_s"]),
            seconds(warm["first_round"]["total_s"]),
            "<= 10 s",
        ],
        [
            "second round: trigger to training start",
            seconds(cold["second_round"]["trigger_to_training_s"]),
            seconds(warm["second_round"]["trigger_to_training_s"]),
            "<= 1 s",
        ],
        ["second round: total", seconds(cold["second_round"]["total_s"]), seconds(warm["second_round"]["total_s"]), ""],
        [
            "serving process resident set after the rounds and 200 predictions",
            f"{cold['serving_rss_mb']:.0f} MB",
            f"{warm['serving_rss_mb']:.0f} MB",
            "warm within 5% of cold",
        ],
        [
            "serving process peak resident set",
            f"{cold['serving_peak_rss_mb']:.0f} MB",
            f"{warm['serving_peak_rss_mb']:.0f} MB",
            "",
        ],
        ["warm worker resident set, idle (its own process)", "none", f"{warm.get('worker_idle_rss_mb', 0):.0f} MB", ""],
        [
            "round process peak resident set (sampled), first / second round",
            peaks(cold),
            peaks(warm),
            "",
        ],
        [
            "warm worker start (once, at bot start, in the background): imports / base / ready after",
            "none",
            f"{warm['worker_import_s']:.1f} s / {warm['worker_base_load_s']:.1f} s / {seconds(warm['worker_ready_s'])}",
            "",
        ],
    ]
    lines = [
        "# Round start-up benchmark",
        "",
        f"Command: `{results['command']}` (all-MiniLM-L6-v2, BANKING77: five intents, 30 labels each, "
        f"then {EXTRA_LABELS} more; 1 training thread).",
        "",
        f"Machine: {results['machine']}; load average at end {results['load_average_end']:.2f}.",
        "",
        f"Serving resident set, warm against cold: {results['serving_rss_change_pct']:+.1f}%. "
        "Each path ran in its own fresh serving process, cold first, in one run "
        f"({results['total_s']:.0f} s in all; the machine is shared, so wall times include waiting for a core).",
        "",
        markdown_table(["measure", "cold child (today)", "warm worker", "target"], rows),
        "",
        "Trigger to training start: from `run_round` to the round's log line after imports, the base, the "
        "feature cache and the active adapter are loaded. The cold child pays Python's start, torch's and "
        "transformers' imports and the base load on every round; the warm worker paid them once.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser(
        MODULE,
        __doc__,
        writes="bench/results/round_start.json and round_start.md",
        data=shared_data("banking77"),
    )
    parser.add_argument("--one", choices=PATHS, help="(internal) measure one path in this process, print JSON")
    options = parser.parse_args(argv)
    require_data(["banking77"])
    if options.one:
        print(json.dumps(one_path(options.one)))
        return 0
    wall = time.perf_counter()
    machine = machine_line(1)
    paths: dict[str, Any] = {}
    for path in PATHS:
        done = subprocess.run(
            [sys.executable, "-m", MODULE, "--one", path],
            env=project_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{MODULE}: the {path} path failed: {done.stderr[-2000:]}")
        paths[path] = json.loads(done.stdout.strip().splitlines()[-1])
    cold_rss, warm_rss = paths["cold"]["serving_rss_mb"], paths["warm"]["serving_rss_mb"]
    results = {
        "paths": paths,
        "serving_rss_change_pct": round(100.0 * (warm_rss - cold_rss) / cold_rss, 2),
        "machine": machine,
        "load_average_end": load_average(),
        "total_s": round(time.perf_counter() - wall, 1),
        "command": recorded_command(MODULE, argv),
    }
    write_results("round_start", results, render(results))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
