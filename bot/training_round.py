"""One training round, run as `python -m bot.training_round` in a child process of the bot.

Resolved labels -> train/held-out split (storage's deterministic split) -> CAMEL micro-training
from the active adapter with older labels as replay -> a new version folder -> candidate and
active evaluated on the same held-out messages -> the gate -> registered as active or rejected.

Ordering is what makes a SIGKILL at any moment harmless: the folder is renamed into place
complete before it is registered, and activation is one storage transaction, so the database
never names a version that is not whole on disk and the active adapter is never touched.
Exit status: 0 round done (promoted, rejected or skipped), 2 bad input, 1 crash.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import camel
import storage
from bot import adapter_store, gate
from bot.adapter_store import LearningError, RoundInputError, TaskBusyError
from bot.settings import LearningSettings, ModelSettings, Settings

log = logging.getLogger("bot.training_round")
EXIT_OK, EXIT_CRASH, EXIT_BAD_INPUT = 0, 1, 2
SUMMARY_DIR = "runs"
PROJECT_ROOT = str(Path(__file__).resolve().parents[1])
OUTPUT_TAIL = 800


@dataclass
class Split:
    new: list[storage.LabelledMessage]
    old: list[storage.LabelledMessage]
    heldout: list[storage.LabelledMessage]

    @property
    def train(self) -> list[storage.LabelledMessage]:
        return self.old + self.new


@dataclass
class RoundOptions:
    db: str
    task: str
    trigger: str
    run_id: int | None
    data_dir: str
    base_model: str
    trainable_layers: int
    threads: int
    heldout_fraction: float
    admin_weight: float
    epsilon: float
    max_recall_drop: float
    max_epochs: int
    summary: dict[str, Any] = field(default_factory=dict)


def summary_path(data_dir: str, run_id: int) -> Path:
    return Path(data_dir) / SUMMARY_DIR / f"run-{run_id:06d}.json"


def split_labels(labelled: Sequence[storage.LabelledMessage], since: str | None) -> Split:
    """Held-out by storage's split; training labels resolved after `since` are this round's news."""
    heldout = [m for m in labelled if m.split == "heldout"]
    train = [m for m in labelled if m.split == "train"]
    new = [m for m in train if since is None or m.resolved_at > since]
    old = [m for m in train if not (since is None or m.resolved_at > since)]
    return Split(new=new, old=old, heldout=heldout)


def skip_reason(split: Split, active: storage.AdapterVersion | None) -> str | None:
    """Why this round cannot train or judge an adapter, or None when it can."""
    labels = {m.label for m in split.train}
    if len(labels) < 2:
        return f"too little data: {len(labels)} label(s) with training examples, need at least 2"
    if not split.heldout:
        return "too little data: no held-out examples to judge an adapter on"
    if not split.new:
        return f"no new labels since v{active.version:04d} was trained" if active else "no training labels"
    return None


def _texts_labels(items: Sequence[storage.LabelledMessage]) -> tuple[list[str], list[str]]:
    return [m.text for m in items], [m.label for m in items]


def train_candidate(opts: RoundOptions, split: Split, active: camel.Adapter | None,
                    cache: camel.FeatureCache) -> camel.Adapter:
    """Continue from the active adapter with replay, or train a first (or reshaped) one."""
    args = camel.TrainingArgs(num_threads=opts.threads, max_epochs=opts.max_epochs)
    config = camel.CamelConfig(base_model=opts.base_model, trainable_layers=opts.trainable_layers)
    if active is not None and active.config.trainable_layers == opts.trainable_layers:
        texts, labels = _texts_labels(split.new)
        replay = _texts_labels(split.old) if split.old else None
        return camel.train(texts, labels, args=args, init=active, replay=replay, cache=cache).adapter
    texts, labels = _texts_labels(split.train)  # first adapter, or K changed: start afresh
    return camel.train(texts, labels, config=config, args=args, cache=cache).adapter


def judge(candidate: camel.Adapter, active: camel.Adapter | None, split: Split, opts: RoundOptions,
          cache: camel.FeatureCache) -> tuple[gate.Decision, dict[str, Any], dict[str, Any] | None]:
    texts, labels = _texts_labels(split.heldout)
    new_metrics = camel.evaluate(candidate, texts, labels, cache)
    if active is None:
        baseline = gate.majority_baseline([m.label for m in split.train], labels)
        opts.summary["baseline"] = baseline
        return gate.decide_first(new_metrics, baseline), new_metrics, None
    old_metrics = camel.evaluate(active, texts, labels, cache)
    decision = gate.decide(new_metrics, old_metrics, epsilon=opts.epsilon, max_recall_drop=opts.max_recall_drop)
    return decision, new_metrics, old_metrics


def publish_version(opts: RoundOptions, db: Any, adapter: camel.Adapter) -> tuple[int, Path]:
    version = adapter_store.free_version(opts.data_dir, opts.task, storage.next_version(db, opts.task))
    temp = adapter_store.temp_dir(opts.data_dir, opts.task, version)
    final = adapter_store.version_dir(opts.data_dir, opts.task, version)
    camel.save_adapter(adapter, str(temp))
    adapter_store.publish(temp, final)
    return version, final


def record(opts: RoundOptions, db: Any, run_id: int, active: storage.AdapterVersion | None,
           decision: gate.Decision, version: int, folder: Path) -> str:
    parent = active.version if active else None
    storage.register_adapter(db, task=opts.task, version=version, path=str(folder), parent_version=parent,
                             run_id=run_id, metrics=opts.summary["new_metrics"], reason=decision.reason)
    if decision.promote:
        storage.activate_adapter(db, opts.task, version, reason=decision.reason)
        return "promoted"
    storage.set_adapter_status(db, opts.task, version, "rejected", decision.reason)
    return "rejected"


def train_and_judge(opts: RoundOptions, db: Any, run_id: int, active_record: storage.AdapterVersion | None,
                    split: Split) -> tuple[str, int]:
    base = camel.load_base(opts.base_model or camel.default_base_model_path())
    cache = camel.FeatureCache(base, str(Path(opts.data_dir) / "feature_cache"))
    active = camel.load_adapter(active_record.path, base) if active_record else None
    candidate = train_candidate(opts, split, active, cache)
    decision, new_metrics, old_metrics = judge(candidate, active, split, opts, cache)
    opts.summary.update(new_metrics=new_metrics, old_metrics=old_metrics, decision=decision.as_dict())
    candidate.metrics = {**new_metrics, "gate": decision.as_dict()}
    version, folder = publish_version(opts, db, candidate)
    outcome = record(opts, db, run_id, active_record, decision, version, folder)
    cache.flush()  # later rounds and the bot reuse the bottom states computed here
    return outcome, version


def trained_until(db: Any, active: storage.AdapterVersion | None) -> str | None:
    """Labels resolved before the active adapter's round started are already learned."""
    if active is None:
        return None
    runs = {run.id: run for run in storage.list_runs(db, active.task, limit=100_000)}
    run = runs.get(active.run_id) if active.run_id is not None else None
    return run.started_at if run else active.created_at


def run_round(opts: RoundOptions, db: Any, run_id: int) -> str:
    """Everything after the run exists; returns the outcome it was finished with."""
    task = storage.get_task(db, opts.task)
    active_record = storage.get_adapter(db, opts.task, task.active_version) if task and task.active_version else None
    resolution = storage.resolve_labels(db, opts.task, admin_weight=opts.admin_weight,
                                        heldout_fraction=opts.heldout_fraction)
    split = split_labels(resolution.labelled, trained_until(db, active_record))
    counts = {"n_train": len(split.train), "n_heldout": len(split.heldout), "n_new": len(split.new)}
    opts.summary.update(counts, parent_version=active_record.version if active_record else None)
    reason = skip_reason(split, active_record)
    if reason:
        opts.summary["reason"] = reason
        storage.finish_run(db, run_id, outcome="skipped", error=reason, **counts)
        return "skipped"
    outcome, version = train_and_judge(opts, db, run_id, active_record, split)
    opts.summary.update(version=version, reason=opts.summary["decision"]["reason"])
    storage.finish_run(db, run_id, outcome=outcome, version=version, **counts)
    return outcome


def write_summary(opts: RoundOptions, run_id: int, outcome: str) -> None:
    path = summary_path(opts.data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"run_id": run_id, "task": opts.task, "trigger": opts.trigger, "outcome": outcome,
            "finished_at": datetime.now().astimezone().isoformat(), **opts.summary}
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(body, indent=2, default=str))
    os.replace(temp, path)


def execute(opts: RoundOptions) -> str:
    db = storage.open_store(opts.db)
    if storage.get_task(db, opts.task) is None:
        raise RoundInputError(f"unknown task {opts.task!r}")
    run_id = opts.run_id or storage.start_run(db, opts.task, opts.trigger)
    try:
        with adapter_store.task_lock(opts.data_dir, opts.task):
            outcome = run_round(opts, db, run_id)
    except TaskBusyError as exc:
        storage.finish_run(db, run_id, outcome="skipped", error=str(exc))
        opts.summary["reason"], outcome = str(exc), "skipped"
    except (camel.CamelError, storage.StorageError) as exc:
        storage.finish_run(db, run_id, outcome="failed", error=str(exc))
        opts.summary["reason"] = str(exc)
        write_summary(opts, run_id, "failed")
        raise
    write_summary(opts, run_id, outcome)
    return outcome


# launching the round (used by the bot's LearningLoop) ------------------------------
def child_command(settings: Any, db_path: str, task: str, trigger: str, run_id: int) -> list[str]:
    learning, model = settings.learning, settings.model
    return [sys.executable, "-m", "bot.training_round", "--db", db_path, "--task", task,
            "--trigger", trigger, "--run-id", str(run_id), "--data-dir", settings.data_dir,
            "--base-model", model.base_model, "--trainable-layers", str(model.trainable_layers),
            "--threads", str(model.training_threads), "--heldout-fraction", str(learning.heldout_fraction),
            "--admin-weight", str(settings.admin_weight), "--epsilon", str(learning.gate_macro_f1_epsilon),
            "--max-recall-drop", str(learning.gate_max_recall_drop)]


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH", "")) if p)
    return env


def death_message(returncode: int, log_path: Path) -> str:
    if returncode < 0:
        what = f"training process killed by {signal.Signals(-returncode).name}"
    else:
        what = f"training process exited with status {returncode}"
    try:
        tail = log_path.read_text(errors="replace")[-OUTPUT_TAIL:].strip()
    except OSError:
        tail = ""
    return f"{what}: {tail}" if tail else what


# the child's own entry point --------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> RoundOptions:
    p = argparse.ArgumentParser(prog="python -m bot.training_round", description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="the storage database (camel.db)")
    p.add_argument("--task", required=True)
    p.add_argument("--trigger", default="manual", choices=("schedule", "threshold", "manual"))
    p.add_argument("--run-id", type=int, default=None, help="a run the parent already started")
    p.add_argument("--data-dir", default="", help="adapters/ and feature_cache/ live here (default: the db's folder)")
    # Run by hand, the child behaves like the bot on default settings: one source of defaults.
    model, learning, settings = ModelSettings(), LearningSettings(), Settings()
    p.add_argument("--base-model", default=model.base_model, help="'' = the shipped all-MiniLM-L6-v2")
    p.add_argument("--trainable-layers", type=int, default=model.trainable_layers)
    p.add_argument("--threads", type=int, default=model.training_threads, help="torch threads")
    p.add_argument("--heldout-fraction", type=float, default=learning.heldout_fraction)
    p.add_argument("--admin-weight", type=float, default=settings.admin_weight)
    p.add_argument("--epsilon", type=float, default=learning.gate_macro_f1_epsilon, help="allowed macro-F1 loss")
    p.add_argument("--max-recall-drop", type=float, default=learning.gate_max_recall_drop)
    p.add_argument("--max-epochs", type=int, default=camel.TrainingArgs().max_epochs)
    ns = p.parse_args(argv)
    opts = RoundOptions(**{k: v for k, v in vars(ns).items()})
    opts.data_dir = opts.data_dir or str(Path(opts.db).resolve().parent)
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    opts = parse_args(argv)
    try:
        outcome = execute(opts)
    except (LearningError, camel.CamelError, storage.StorageError) as exc:
        print(f"training round for {opts.task}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    log.info("round for %s finished: %s (%s)", opts.task, outcome, opts.summary.get("reason", ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
