"""One training round, run as `python -m bot.loop.round` in a child process of the bot.

Resolved labels -> train/held-out split (storage's deterministic split) -> CAMEL micro-training
from the active adapter with older labels as replay -> a new version folder -> candidate and
active evaluated on the same held-out messages -> the gate -> registered as active or rejected.

Ordering is what makes a SIGKILL at any moment harmless: the folder is renamed into place
complete before it is registered, and the run's end, registration and activation are one storage
transaction (`storage.rounds.finish_round`), so the database never names a version that is not whole on
disk, and a folder whose round never committed is removed at the bot's next start.
Exit status: 0 round done (promoted, rejected or skipped), 2 bad input, 1 crash.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from sqlite_utils import Database

import camel
from camel.base import compute_fingerprint
from camel.calibration import DEFAULT_TARGET_PRECISION
from camel.errors import BaseModelError
from camel.evaluation import metrics_from_predictions, top1_labels
import storage
from bot import texts as messages_text
from bot.errors import LearningError, RoundInputError, TaskBusyError
from bot.loop import calibrate, gate, versions
from bot.loop.options import RoundOptions, RoundSummary, summary_path
from bot.serving import label_view
from bot.settings import DataPaths
from camel.label_view import retarget

log = logging.getLogger("bot.loop.round")
EXIT_OK, EXIT_CRASH, EXIT_BAD_INPUT = 0, 1, 2
TRAINING_STARTS = "round start-up done"


@dataclass
class Split:
    new: list[storage.LabelledMessage]
    old: list[storage.LabelledMessage]
    heldout: list[storage.LabelledMessage]

    @property
    def train(self) -> list[storage.LabelledMessage]:
        return self.old + self.new


@dataclass(frozen=True)
class Judgement:
    """The gate's verdict on a candidate and the held-out numbers it was based on."""

    decision: gate.Decision
    new_metrics: dict[str, Any]
    old_metrics: dict[str, Any] | None
    baseline: dict[str, Any] | None


def split_labels(
    labelled: Sequence[storage.LabelledMessage], since: str | None, *, labels_changed: bool = False
) -> Split:
    """Held-out by storage's split; training labels resolved after `since` are this round's news.
    When the task's labels changed since the active version was trained (a rename, merge,
    retirement or new label), every training label is news: the round trains on today's set."""
    heldout = [m for m in labelled if m.split == "heldout"]
    train = [m for m in labelled if m.split == "train"]
    if labels_changed:
        return Split(new=train, old=[], heldout=heldout)
    new = [m for m in train if since is None or m.resolved_at > since]
    old = [m for m in train if not (since is None or m.resolved_at > since)]
    return Split(new=new, old=old, heldout=heldout)


def labels_changed_since(db: Database, task: str, active: storage.AdapterVersion | None) -> bool:
    """Whether the task's label history moved on since `active` was trained (its recorded mark)."""
    if active is None:
        return False
    trained_at = int((active.metrics.get("label_set") or {}).get("history_mark") or 0)
    return storage.labels.mark(db, task) > trained_at


def skip_reason(split: Split, active: storage.AdapterVersion | None) -> str | None:
    """Why this round cannot train or judge an adapter, or None when it can."""
    labels = {m.label for m in split.train}
    if len(labels) < 2:
        return f"too little data: {len(labels)} label(s) with training examples, need at least 2"
    if not split.heldout:
        return "too little data: no held-out examples to judge an adapter on"
    if not split.new:
        return f"no new labels since v{active.version} was trained" if active else "no training labels"
    return None


def _texts_labels(items: Sequence[storage.LabelledMessage]) -> tuple[list[str], list[str]]:
    return [m.text for m in items], [m.label for m in items]


def train_candidate(
    opts: RoundOptions,
    split: Split,
    active: camel.Adapter | None,
    cache: camel.FeatureCache,
    descriptions: dict[str, str] | None = None,
) -> camel.Adapter:
    """Continue from the active adapter with replay, or train a first (or reshaped) one.

    A fresh head starts from the label-name prototypes, sharpened by the task's `descriptions`
    (the same ones its zero-shot guesses used), so a first round never starts from a random head.
    """
    args = camel.TrainingArgs(num_threads=opts.threads, max_epochs=opts.max_epochs)
    config = camel.CamelConfig(base_model=opts.base_model, trainable_layers=opts.trainable_layers)
    if active is not None and active.config.trainable_layers == opts.trainable_layers:
        texts, labels = _texts_labels(split.new)
        replay = _texts_labels(split.old) if split.old else None
        return camel.train(
            texts, labels, args=args, init=active, replay=replay, cache=cache, label_descriptions=descriptions
        ).adapter
    texts, labels = _texts_labels(split.train)  # first adapter, or K changed: start afresh
    return camel.train(texts, labels, config=config, args=args, cache=cache, label_descriptions=descriptions).adapter


def judge(
    candidate: camel.Adapter,
    active: camel.Adapter | None,
    split: Split,
    opts: RoundOptions,
    cache: camel.FeatureCache,
    task: storage.Task | None = None,
    active_cache: camel.FeatureCache | None = None,
) -> Judgement:
    """The gate on the held-out labels; `active_cache`: the active adapter's own base's cache when
    it was trained on a previous base (the same held-out messages, each read by its own base)."""
    texts, labels = _texts_labels(split.heldout)
    new_answers = top1_labels(candidate, texts, cache)
    new_metrics = with_out_of_scope(metrics_from_predictions(labels, new_answers), candidate, split, cache, task)
    if active is None:
        baseline = gate.majority_baseline([m.label for m in split.train], labels)
        return Judgement(gate.decide_first(new_metrics, baseline), new_metrics, None, baseline)
    old_cache = active_cache if active_cache is not None else cache  # an empty cache is falsy (len 0)
    old_answers = top1_labels(active, texts, old_cache)
    old_metrics = with_out_of_scope(metrics_from_predictions(labels, old_answers), active, split, old_cache, task)
    decision = gate.decide(
        new_metrics,
        old_metrics,
        epsilon=opts.epsilon,
        max_recall_drop=opts.max_recall_drop,
        min_support=opts.min_label_support,
        paired=gate.PairedOutcomes(labels, new_answers, old_answers),
    )
    return Judgement(decision, new_metrics, old_metrics, None)


def with_out_of_scope(
    metrics: dict[str, Any], adapter: camel.Adapter, split: Split, cache: camel.FeatureCache, task: storage.Task | None
) -> dict[str, Any]:
    """The held-out metrics plus out-of-scope recall when the task declares an out-of-scope label."""
    if task is None or not task.out_of_scope_label:
        return metrics
    texts, labels = _texts_labels(split.heldout)
    recall = calibrate.out_of_scope_recall(
        adapter, texts, labels, cache, out_of_scope_label=task.out_of_scope_label, floor=task.abstain_threshold
    )
    return {**metrics, "out_of_scope": recall}


def fit_calibration(
    candidate: camel.Adapter, split: Split, task: storage.Task | None, cache: camel.FeatureCache
) -> camel.Calibration:
    """The candidate's confidence scale and threshold from the held-out labels; kept in its folder."""
    texts, labels = _texts_labels(split.heldout)
    calibration = calibrate.fit(
        candidate,
        texts,
        labels,
        cache,
        target_precision=task.target_precision if task else DEFAULT_TARGET_PRECISION,
        floor=task.abstain_threshold if task else 0.0,
    )
    candidate.extra_files = {**candidate.extra_files, **calibrate.calibration_file(calibration)}
    if task is not None and task.out_of_scope_label:
        detector = calibrate.fit_detector(
            candidate, texts, labels, cache, out_of_scope_label=task.out_of_scope_label, floor=task.abstain_threshold
        )
        if detector is not None:
            candidate.extra_files = {**candidate.extra_files, **calibrate.detector_file(detector)}
    return calibration


def publish_version(opts: RoundOptions, db: Database, adapter: camel.Adapter) -> tuple[int, Path]:
    version = versions.free_version(opts.data_dir, opts.task, storage.adapters.next_version(db, opts.task))
    temp = versions.temp_dir(opts.data_dir, opts.task, version)
    final = versions.version_dir(opts.data_dir, opts.task, version)
    # extra_files: the calibration, so the integrity manifest covers it.
    camel.save_adapter(adapter, str(temp), extra_files=adapter.extra_files)
    versions.publish(temp, final)
    return version, final


def configured_base(opts: RoundOptions) -> str:
    return opts.base_model or camel.default_base_model_path()


def previous_base(opts: RoundOptions, active_record: storage.AdapterVersion | None) -> camel.BaseRef | None:
    """The base the active adapter was trained on when it is not the configured one (the base
    changed): then the round trains afresh from all labels, and the gate judges against the
    active adapter on its own base."""
    if active_record is None:
        return None
    try:
        ref = camel.adapter_base(active_record.path)
    except camel.CamelError:
        return None  # a broken active adapter: loading it below says so, as before
    try:
        configured = compute_fingerprint(configured_base(opts))
    except OSError as exc:
        raise BaseModelError(f"cannot read base model {configured_base(opts)}: {exc.strerror or exc}") from exc
    return ref if ref.fingerprint != configured else None


def load_previous(
    ref: camel.BaseRef, active_record: storage.AdapterVersion, cache_dir: str
) -> tuple[camel.Adapter, camel.FeatureCache] | None:
    """The active adapter on its own previous base (None when that base's folder is gone or changed)."""
    try:
        if not os.path.isdir(ref.path) or compute_fingerprint(ref.path) != ref.fingerprint:
            return None
        old_base = camel.load_base(ref.path)
    except (OSError, camel.CamelError):
        return None
    return camel.load_adapter(active_record.path, old_base), camel.FeatureCache(old_base, cache_dir)


def train_and_judge(
    opts: RoundOptions,
    db: Database,
    run_id: int,
    active_record: storage.AdapterVersion | None,
    split: Split,
    previous: camel.BaseRef | None = None,
) -> tuple[str, int, Path, Judgement]:
    base = camel.load_base(configured_base(opts))
    # The bot names the engine it checked at its start; a round run by hand with "auto" checks its own.
    engine = camel.choose_engine(base, opts.engine, DataPaths(opts.data_dir).engines, check=opts.engine == "auto")
    log.info("bottom engine %s", engine.reason)
    cache_dir = DataPaths(opts.data_dir).feature_cache
    cache = camel.FeatureCache(base, cache_dir, engine=engine.engine)
    forget_deleted(db, cache)  # erased texts are never read from the shards nor stored again
    view = label_view(db, opts.task)
    trained = {m.label for m in split.train}
    active_cache: camel.FeatureCache | None = None
    if previous is not None and active_record is not None:
        # Trained on a previous base: nothing to continue from here; the gate reads it on its own base.
        found = load_previous(previous, active_record, cache_dir)
        judged, active_cache = found if found is not None else (None, None)
        if judged is not None and active_cache is not None:
            forget_deleted(db, active_cache)
            judged = under_todays_labels(judged, view, active_cache, trained)
        trained_from = None
    else:
        active = camel.load_adapter(active_record.path, base) if active_record else None
        if active is not None:
            active = under_todays_labels(active, view, cache, trained)
        judged = trained_from = active
    task = storage.tasks.get_task(db, opts.task)
    # Everything before this line is the round's start-up (bench.system.round_start times it).
    log.info("%s: training starts on %d labels (%d new)", TRAINING_STARTS, len(split.train), len(split.new))
    candidate = train_candidate(opts, split, trained_from, cache, task.descriptions if task else None)
    calibration = fit_calibration(candidate, split, task, cache)
    judgement = judge(candidate, judged, split, opts, cache, task, active_cache)
    # with the label set it was trained on and the label history position that set reflects
    label_set = {"labels": list(candidate.labels), "history_mark": view.mark}
    judgement = replace(
        judgement,
        new_metrics={**judgement.new_metrics, "calibration": calibration.to_dict(), "label_set": label_set},
    )
    # the held-out figures, the gate's verdict and how the adapter was trained (recipe, steps, described labels)
    training = candidate.metrics.get("training", {})
    candidate.metrics = {**judgement.new_metrics, "gate": judgement.decision.as_dict(), "training": training}
    forget_deleted(db, cache)  # and those erased while this round trained
    version, folder = publish_version(opts, db, candidate)
    cache.flush()  # later rounds and the bot reuse the bottom states computed here
    return ("promoted" if judgement.decision.promote else "rejected"), version, folder, judgement


def under_todays_labels(
    active: camel.Adapter, view: camel.LabelView, cache: camel.FeatureCache, trained: set[str]
) -> camel.Adapter:
    """The active adapter with today's labels, as it serves: renamed columns under their new names,
    merged ones as one row, retired ones gone, and prototype rows for the new labels this round has
    examples of (the others keep being served by their prototypes). The round continues from it and
    the gate compares the candidate with it, so both answer with the same names."""
    predictor = camel.Predictor(active, cache)
    predictor.set_label_view(view)
    return retarget(active, predictor.label_plan(), keep_new=trained)


def forget_deleted(db: Database, cache: camel.FeatureCache) -> int:
    """Drop the states of every erased text (storage's deletion list) before this process writes
    any shard, so a text deleted while the round ran is not stored again."""
    hashes, _version = storage.deletions.deleted_text_hashes(db)
    return cache.forget(hashes) if hashes else 0


def trained_until(db: Database, active: storage.AdapterVersion | None) -> str | None:
    """Labels resolved before the active adapter's round started are already learned. An interim
    version (a head refit between rounds) counts as its round's: the labels it took in are new to
    the top blocks, and the round that follows must not be skipped for want of them."""
    if active is not None and versions.interim_of(active) is not None:
        active = storage.adapters.get_adapter(db, active.task, versions.blocks_version(active))
    if active is None:
        return None
    run = storage.runs.get_run(db, active.run_id) if active.run_id is not None else None
    return run.started_at if run else active.created_at


def run_round(opts: RoundOptions, db: Database, run_id: int) -> RoundSummary:
    """Everything after the run exists; returns the summary of what the round did."""
    task = storage.tasks.get_task(db, opts.task)
    active_record = (
        storage.adapters.get_adapter(db, opts.task, task.active_version) if task and task.active_version else None
    )
    resolution = storage.resolution.resolve_labels(
        db, opts.task, admin_weight=opts.admin_weight, heldout_fraction=opts.heldout_fraction
    )
    previous = previous_base(opts, active_record)
    # On a new base nothing was learned yet: every label is new to it.
    split = split_labels(
        resolution.labelled,
        None if previous else trained_until(db, active_record),
        labels_changed=labels_changed_since(db, opts.task, active_record),
    )
    n_train, n_heldout, n_new = len(split.train), len(split.heldout), len(split.new)
    summary = RoundSummary(
        task=opts.task,
        outcome="skipped",
        run_id=run_id,
        trigger=opts.trigger,
        parent_version=active_record.version if active_record else None,
        n_train=n_train,
        n_heldout=n_heldout,
        n_new=n_new,
    )
    reason = skip_reason(split, active_record)
    if reason:
        storage.runs.finish_run(
            db, run_id, outcome="skipped", error=reason, n_train=n_train, n_heldout=n_heldout, n_new=n_new
        )
        return replace(summary, reason=reason)
    outcome, version, folder, judgement = train_and_judge(opts, db, run_id, active_record, split, previous)
    reason = judgement.decision.reason
    if previous is not None and active_record is not None and outcome == "rejected":
        reason = messages_text.kept_on_previous_base(reason, active_record.version, previous.label(), version)
    # The run's end, the version's registration and its activation in one transaction: a kill
    # at any moment leaves all of them or none (then start-up removes the orphan folder).
    storage.rounds.finish_round(
        db,
        run_id,
        storage.RoundEnd(
            outcome=outcome,
            version=version,
            path=str(folder),
            parent_version=active_record.version if active_record else None,
            metrics=judgement.new_metrics,
            reason=reason,
            n_train=n_train,
            n_heldout=n_heldout,
            n_new=n_new,
        ),
    )
    return replace(
        summary,
        outcome=outcome,
        version=version,
        reason=reason,
        new_metrics=judgement.new_metrics,
        old_metrics=judgement.old_metrics,
        baseline=judgement.baseline,
        decision=judgement.decision.as_dict(),
    )


def execute(opts: RoundOptions) -> RoundSummary:
    """Run the round under the task's lock, record its end and write its summary file."""
    db = storage.open_store(opts.db)
    if storage.tasks.get_task(db, opts.task) is None:
        raise RoundInputError(f"unknown task {opts.task!r}")
    run_id = opts.run_id or storage.runs.start_run(db, opts.task, opts.trigger)
    try:
        with versions.task_lock(opts.data_dir, opts.task):
            summary = run_round(opts, db, run_id)
    except TaskBusyError as exc:
        storage.runs.finish_run(db, run_id, outcome="skipped", error=str(exc))
        summary = RoundSummary(task=opts.task, outcome="skipped", run_id=run_id, trigger=opts.trigger, reason=str(exc))
    except (camel.CamelError, storage.StorageError) as exc:
        storage.runs.finish_run(db, run_id, outcome="failed", error=str(exc))
        RoundSummary(task=opts.task, outcome="failed", run_id=run_id, trigger=opts.trigger, reason=str(exc)).write(
            summary_path(opts.data_dir, run_id)
        )
        raise
    summary.write(summary_path(opts.data_dir, run_id))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    opts = RoundOptions.from_argv(argv, description=(__doc__ or "").splitlines()[0])
    try:
        summary = execute(opts)
    except (LearningError, camel.CamelError, storage.StorageError) as exc:
        print(f"training round for {opts.task}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    log.info("round for %s finished: %s (%s)", opts.task, summary.outcome, summary.reason)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
