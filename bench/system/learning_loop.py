"""The learning loop on a stream of BANKING77 corrections, through the real training-round child
and, between rounds, the bot's interim versions.

Scenarios: `banking77_20` = the demo's 20 most frequent intents, 3 seed labels
each, then 320 corrections, a round every 25; `banking77_77` = all 77 intents, 3 each, then
1,000 corrections, a round every 50. Messages are BANKING77 training texts in a fixed shuffled
order; every labelled message is stored with storage's API (record_message + add_correction),
and each round is `bot.loop.round`'s child process with the bot's default settings
(`Settings()`: its training threads, heldout fraction and gate), launched with the bot's own
`child_command`/`child_env`. Between rounds the corrections arrive in batches of 5 (20 intents)
or 10 (77 intents), five batches per round interval, and after each batch the bot's interim path
runs as `LearningLoop.note_new_labels` drives it with `[learning] interim = true` (the default):
`InterimRefitter.request` on a `PredictorRegistry` built as `camel-bot serve` builds it, then
waiting until the refit is done; a refit the gate promotes is served and made the active
version, so the round that follows continues from it (after a round the registry serves the
active version, as `LearningLoop.sync` does). After each round, the active adapter is scored on
the BANKING77 test messages of those intents ("loop"), beside a fresh offline `camel.train` with
the shipped defaults ("fresh") and the frozen logistic-regression probe ("probe"), both on the
labels the round trained on (storage's train split, i.e. without the round's held-out messages);
"interim" is the accuracy on the same test messages of the interim version serving just before
the round (empty when a round's version served then: no refit since it was promoted).
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
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
from bot.loop.interim import InterimRefitter, InterimResult
from bot import runtime
from bot.loop.runner import child_command, child_env
from bot.loop.versions import interim_of

# every: corrections per round; interim_every: corrections per batch, each followed by an interim refit
SCENARIOS: dict[str, dict[str, int]] = {
    "banking77_20": {"intents": 20, "seed_per_label": 3, "corrections": 320, "every": 25, "interim_every": 5},
    "banking77_77": {"intents": 77, "seed_per_label": 3, "corrections": 1000, "every": 50, "interim_every": 10},
}
TASK = "support"
WORKSPACE, CHANNEL = "T0BENCH", "C0BENCH"
REFIT_WAIT_S = 600.0


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


class Interims:
    """The bot's interim path without its Slack side or scheduler: the registry `camel-bot serve`
    builds (bot.runtime) and the `InterimRefitter` `LearningLoop` holds, with its reload lock."""

    def __init__(self, settings: Settings, db: Any) -> None:
        self.db = db
        self.predictors = runtime.predictor_registry(settings)  # no zero-shot: no guesses are asked for here
        self.reload_lock = threading.Lock()
        self.results: list[InterimResult] = []
        self.refitter = InterimRefitter(settings, db, self.predictors, self.reload_lock, on_result=self.results.append)

    def sync(self) -> None:
        """Serve the active version, as `LearningLoop.sync` does after a round."""
        with self.reload_lock:
            self.predictors.sync_notices(self.db)

    def corrections_stored(self) -> InterimResult | None:
        """What `LearningLoop.note_new_labels` does when interim versions are on, then wait for the refit."""
        before = len(self.results)
        self.refitter.request(TASK)
        if not self.refitter.wait_idle(REFIT_WAIT_S):
            raise RuntimeError(f"an interim refit took over {REFIT_WAIT_S:.0f} s")
        return self.results[-1] if len(self.results) > before else None  # None: it raised (logged)

    def stop(self) -> None:
        self.refitter.stop(REFIT_WAIT_S)


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
        interims = Interims(settings, db)
        seeded = spec["seed_per_label"] * len(intents)
        cut_points = [seeded] + list(range(seeded + spec["every"], len(items) + 1, spec["every"]))
        done = rounds_seen = 0
        try:
            for cut in cut_points:
                refits: list[InterimResult | None] = []
                if done == 0:
                    label_messages(db, items[:cut], 0)  # the seed labels: nothing serves yet to refit
                else:
                    for start in range(done, cut, spec["interim_every"]):
                        end = min(start + spec["interim_every"], cut)
                        label_messages(db, items[start:end], start)
                        refits.append(interims.corrections_stored())
                done = cut
                serving = active_record(db)  # an interim's accuracy; None when a round's version serves
                is_interim = interim_of(serving) is not None
                interim = accuracy_of(serving, cache, test_texts, test_labels) if is_interim else None
                code, child_s = run_child(settings, db_path, db, Path(folder) / "rounds.log")
                interims.sync()
                task = storage.tasks.get_task(db, TASK)
                resolution = storage.resolution.resolve_labels(
                    db, TASK, admin_weight=settings.admin_weight, heldout_fraction=settings.learning.heldout_fraction
                )
                train_items = [m for m in resolution.labelled if m.split == "train"]
                texts, labels = [m.text for m in train_items], [m.label for m in train_items]
                outcomes = Counter(r.outcome if r is not None else "failed" for r in refits)
                row: dict[str, Any] = {
                    "labels": cut,
                    "train_labels": len(texts),
                    "child_exit": code,
                    "child_s": round(child_s, 2),
                    "active_version": task.active_version if task else None,
                    "interim": interim,
                    "interims_promoted": outcomes["promoted"],
                    "interims_rejected": outcomes["rejected"],
                    "interims_skipped": outcomes["skipped"],
                    "interims_failed": outcomes["failed"],
                    "interim_s": [round(r.seconds, 3) for r in refits if r is not None and r.outcome != "skipped"],
                }
                versions = [v for v in storage.adapters.list_adapters(db, TASK) if interim_of(v) is None]
                newest = max(versions, key=lambda v: v.version) if versions else None
                if newest is not None and newest.version > rounds_seen:
                    rounds_seen = newest.version  # this round made a candidate: what did the gate say?
                    # the registration reason is the gate's reason; a promoted candidate is the active one now
                    row["gate"] = {"promoted": newest.status == "active", "reason": newest.reason}
                    row["heldout"] = newest.metrics.get("n")
                row["loop"] = accuracy_of(active_record(db), cache, test_texts, test_labels)
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
                    f"{name} {cut:5d} labels: interim {interim} ({outcomes['promoted']} promoted, "
                    f"{outcomes['rejected']} rejected) loop {row['loop']} fresh {row.get('fresh')} "
                    f"probe {row.get('probe')} (child {child_s:.1f}s, exit {code})",
                    flush=True,
                )
                rounds.append(row)
        finally:
            interims.stop()
    return {"rounds": rounds, "n_test": len(test_texts), "intents": len(intents), **spec, **summary(rounds)}


def active_record(db: Any) -> storage.AdapterVersion | None:
    """The task's active version (None before the first adapter)."""
    task = storage.tasks.get_task(db, TASK)
    return storage.adapters.get_adapter(db, TASK, task.active_version) if task and task.active_version else None


def accuracy_of(
    record: storage.AdapterVersion | None, cache: camel.FeatureCache, texts: list[str], labels: list[str]
) -> float | None:
    """A version's accuracy on the test messages, loaded from its folder (None for no version)."""
    if record is None:
        return None
    return evaluate_camel(camel.load_adapter(record.path, cache.base), cache, texts, labels, "accuracy")


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Serving against fresh over every round (points), and what the interim refits did."""
    gaps = [(abs(r["loop"] - r["fresh"]), r["labels"]) for r in rounds if r.get("loop") is not None and "fresh" in r]
    gap, at = max(gaps) if gaps else (None, None)
    seconds = [s for r in rounds for s in r["interim_s"]]
    return {
        "max_loop_fresh_gap": None if gap is None else round(100 * gap, 2),
        "max_loop_fresh_gap_at": at,
        "interims_promoted": sum(r["interims_promoted"] for r in rounds),
        "interims_rejected": sum(r["interims_rejected"] for r in rounds),
        "interims_skipped": sum(r["interims_skipped"] for r in rounds),
        "interims_failed": sum(r["interims_failed"] for r in rounds),
        "interim_s_median": round(statistics.median(seconds), 3) if seconds else None,
        "interim_s_max": max(seconds) if seconds else None,
    }


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Learning loop",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"{meta['machine']}; {meta['total_s']:.0f} s wall; load average at the end {meta['load_end']:.2f}.",
        "",
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        'Columns: "interims" counts the interval\'s refits the gate promoted / rejected; "refit s" is their '
        "median wall time in this process (features of the new labels, L-BFGS, gate, publish and hot "
        'swap); "loop" is what serves after the round (the round\'s version if its gate promoted it, '
        "else still the interim).",
        "",
    ]
    for name in SCENARIOS:
        if name not in results:
            continue
        scenario = results[name]
        rows = [
            [
                r["labels"],
                r["train_labels"],
                _pct(r.get("interim")),
                f"{r['interims_promoted']} / {r['interims_rejected']}" if "interims_promoted" in r else "",
                f"{statistics.median(r['interim_s']):.2f}" if r.get("interim_s") else "",
                _pct(r["loop"]),
                _pct(r.get("fresh")),
                _pct(r.get("probe")),
                r["child_s"],
                r["child_exit"],
                r.get("heldout", ""),
                _verdict(r.get("gate")),
            ]
            for r in scenario["rounds"]
        ]
        lines += [
            f"## {name} ({scenario['n_test']} test messages)",
            "",
            _gap_sentence(scenario),
            "",
            markdown_table(
                [
                    "labels",
                    "train split",
                    "interim",
                    "interims",
                    "refit s",
                    "loop",
                    "fresh",
                    "probe",
                    "child s",
                    "exit",
                    "held out",
                    "gate",
                ],
                rows,
            ),
            "",
        ]
    return "\n".join(lines + ["![loop](loop.png)"])


def _gap_sentence(scenario: dict[str, Any]) -> str:
    gap = scenario.get("max_loop_fresh_gap")
    if gap is None:
        return "No round was scored against a fresh training."
    verdict = "within" if gap <= 1.0 else "NOT within"
    text = (
        f"Serving after each round (loop) against fresh: largest gap {gap:.2f} points "
        f"(at {scenario['max_loop_fresh_gap_at']} labels), {verdict} 1 point."
    )
    if "interims_promoted" in scenario:
        median = scenario["interim_s_median"]
        text += (
            f" Interim refits between rounds: {scenario['interims_promoted']} promoted, "
            f"{scenario['interims_rejected']} rejected by the gate"
            + (f", {scenario['interims_skipped']} skipped" if scenario["interims_skipped"] else "")
            + (f", {scenario['interims_failed']} failed" if scenario["interims_failed"] else "")
            + (f"; median {median:.2f} s, at most {scenario['interim_s_max']:.2f} s." if median is not None else ".")
        )
    return text


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
        points = [(r["labels"], 100 * r["interim"]) for r in rounds if r.get("interim") is not None]
        if points:  # the interim serving just before each round: a point, not a curve
            axis.plot(*zip(*points), linestyle="none", marker="x", color="black", label="interim (before the round)")
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
