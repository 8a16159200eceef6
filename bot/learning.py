"""LearningLoop: the bot's side of self-improvement (schedule, child rounds, hot reload, rollback).

Training never runs in the bot process: each round is `python -m bot.training_round` in a
child with few threads and lower priority, so a crash or out-of-memory there cannot take the
bot down. The child writes the new version and its status to storage; the bot notices the
new active version (right after the child exits, and by polling, which also catches rounds
started elsewhere) and swaps it into the live `Predictor`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import storage
from bot import adapter_store, scheduler as sched
from bot.adapter_store import LearningError, TaskBusyError
from bot.round_report import Post, Upload, build_report, metric_chart
from bot.training_round import child_command, child_env, death_message, summary_path

log = logging.getLogger(__name__)
NICENESS = 10
MAX_POSTPONE = 5  # a burst's round runs at most this many debounce periods after it began


class RollbackError(LearningError):
    """The requested version cannot be rolled back to."""


class LearningLoop:
    def __init__(self, settings: Any, db_path: str, predictors: Any, post: Post | None = None,
                 upload: Upload | None = None) -> None:
        self.settings, self.db_path, self.predictors = settings, db_path, predictors
        self.post, self.upload = post, upload
        self.data_dir = settings.data_dir
        self.db = storage.open_store(db_path)
        self.key = sched.runner_key(self.data_dir)
        self.reload_errors: list[str] = []
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._scheduler: sched.BackgroundScheduler | None = None
        self._task_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._reload_lock = threading.Lock()
        self._reported: set[str] = set()
        self._queued: set[str] = set()
        self._bursts: dict[str, float] = {}  # task -> monotonic time its pending threshold burst began

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Clean up after a crash, serve the active versions, then let the schedule run."""
        self.recover()
        self.sync()
        learning = self.settings.learning
        scheduler = sched.build_scheduler(str(Path(self.data_dir) / "scheduler.db"), learning.timezone)
        scheduler.start(paused=True)  # stored jobs become visible before any can fire
        tasks = self.task_names()
        for task in tasks:
            sched.ensure_nightly(scheduler, self.key, task, cron=learning.schedule_cron,
                                 timezone=learning.timezone, misfire_grace_s=learning.misfire_grace_s)
        sched.remove_unconfigured(scheduler, tasks)
        scheduler.add_job(self.sync, "interval", seconds=learning.reload_poll_s, id="reload",
                          jobstore=sched.VOLATILE, replace_existing=True, coalesce=True, max_instances=1)
        sched.register_runner(self.key, self.request_round)
        self._scheduler = scheduler
        scheduler.resume()

    def stop(self) -> None:
        """Stop scheduling; a round already running finishes in its own process."""
        sched.unregister_runner(self.key)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    def task_names(self) -> list[str]:
        names = {t.name for t in storage.list_tasks(self.db)} | {t.name for t in self.settings.tasks}
        return sorted(names)

    def recover(self) -> list[str]:
        """Fail runs whose process died and delete half-written folders (tasks nobody trains now)."""
        notes = []
        for task in self.task_names():
            try:
                with adapter_store.task_lock(self.data_dir, task):
                    notes += [f"removed {p}" for p in adapter_store.remove_temp_folders(self.data_dir, task)]
                    notes += self._fail_interrupted(task)
            except TaskBusyError:
                continue  # a round from before our restart is still running and owns its files
        for note in notes:
            log.warning("recovery: %s", note)
        return notes

    def _fail_interrupted(self, task: str) -> list[str]:
        notes = []
        for run in storage.list_runs(self.db, task, limit=1000):
            if run.finished_at is not None:
                continue
            storage.finish_run(self.db, run.id, outcome="failed",
                               error="interrupted: the training process died before finishing")
            for version in storage.list_adapters(self.db, task):
                if version.run_id == run.id and version.status == "candidate":
                    storage.set_adapter_status(self.db, task, version.version, "rejected",
                                               "round interrupted before the gate finished")
            notes.append(f"run {run.id} of {task} marked failed (interrupted)")
        return notes

    # triggers --------------------------------------------------------------------------
    def note_new_labels(self, task: str) -> bool:
        """Schedule a debounced round when enough labels arrived since the last run started.

        Each call during a burst moves the run to `debounce_s` from now (one run per burst),
        but never past MAX_POSTPONE debounces after the burst began, so a channel that never
        falls quiet still gets its round.
        """
        if self._scheduler is None:
            return False
        learning = self.settings.learning
        pending = self._scheduler.get_job(sched.threshold_job_id(task), jobstore=sched.PERSISTENT)
        if pending is None and not self._enough_new_labels(task):
            return False  # counting resolves every label, so it is skipped while a run is pending
        with self._guard:
            began = self._bursts.setdefault(task, time.monotonic()) if pending else time.monotonic()
            self._bursts[task] = began
        limit = began + MAX_POSTPONE * learning.debounce_s - time.monotonic()
        sched.schedule_threshold(self._scheduler, self.key, task, delay_s=max(0.0, min(learning.debounce_s, limit)),
                                 misfire_grace_s=learning.misfire_grace_s)
        return True

    def _enough_new_labels(self, task: str) -> bool:
        last = storage.last_run(self.db, task)
        since = datetime.fromisoformat(last.started_at) if last else None
        return storage.count_new_labels_since(self.db, task, since) >= self.settings.learning.threshold_new_labels

    def run_now(self, task: str, actor: str) -> int:
        """Start a manual round in the background; returns its run id at once."""
        run_id = storage.start_run(self.db, task, "manual")
        storage.audit(self.db, actor=actor, action="retrain", detail={"task": task, "run_id": run_id})
        threading.Thread(target=self.run_round, args=(task, "manual", run_id), name=f"round-{run_id}",
                         daemon=True).start()
        return run_id

    def next_run_time(self, task: str) -> datetime | None:
        return sched.next_run_time(self._scheduler, task) if self._scheduler else None

    # one round -------------------------------------------------------------------------
    def _lock_for(self, task: str) -> threading.Lock:
        with self._guard:
            return self._task_locks.setdefault(task, threading.Lock())

    def request_round(self, task: str, trigger: str) -> bool:
        """What scheduled jobs call: queue a round and return at once.

        A job that blocked for the whole round would make APScheduler skip ("max instances")
        the next threshold job of the same id if labels keep coming while it trains. One
        queued round per task is enough: it starts after the running one and sees every label.
        """
        with self._guard:
            if task in self._queued:
                return False
            self._queued.add(task)
        threading.Thread(target=self._queued_round, args=(task, trigger), name=f"round-{task}", daemon=True).start()
        return True

    def _queued_round(self, task: str, trigger: str) -> None:
        with self._lock_for(task):
            with self._guard:
                self._queued.discard(task)
            if self._scheduler is None:
                return  # stopped while waiting
            try:
                run = self._run_locked(task, trigger, None)
            except Exception:
                log.exception("training round of %s could not run", task)
                return
        self._after(task, run)

    def run_round(self, task: str, trigger: str, run_id: int | None = None) -> storage.TrainingRun:
        """Run one round in a child process and wait for it (one round per task at a time)."""
        with self._lock_for(task):
            run = self._run_locked(task, trigger, run_id)
        self._after(task, run)
        return run

    def _run_locked(self, task: str, trigger: str, run_id: int | None) -> storage.TrainingRun:
        run_id = run_id or storage.start_run(self.db, task, trigger)
        log_path = summary_path(self.data_dir, run_id).with_suffix(".log")
        returncode = self._spawn_and_wait(task, trigger, run_id, log_path)
        return self._finished_run(task, run_id, returncode, log_path)

    def _after(self, task: str, run: storage.TrainingRun) -> None:
        self.sync()
        self._report(task, run)

    def _spawn_and_wait(self, task: str, trigger: str, run_id: int, log_path: Path) -> int:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        threads = self.settings.model.training_threads
        with open(log_path, "wb") as output:
            child = subprocess.Popen(
                child_command(self.settings, self.db_path, task, trigger, run_id), env=child_env(threads),
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                preexec_fn=functools.partial(os.nice, NICENESS))
            self.children[task] = child
            try:
                return child.wait()
            finally:
                self.children.pop(task, None)

    def _finished_run(self, task: str, run_id: int, returncode: int, log_path: Path) -> storage.TrainingRun:
        run = self._run(task, run_id)
        if run.finished_at is None:  # the child died before it could record its end
            storage.finish_run(self.db, run_id, outcome="failed", error=death_message(returncode, log_path))
            run = self._run(task, run_id)
        log.info("round %s of %s: %s %s", run_id, task, run.outcome, run.error or "")
        return run

    def _run(self, task: str, run_id: int) -> storage.TrainingRun:
        found = [r for r in storage.list_runs(self.db, task, limit=1000) if r.id == run_id]
        if not found:
            raise LearningError(f"training run {run_id} of {task} is not in the database")
        return found[0]

    # reporting -------------------------------------------------------------------------
    def _summary(self, task: str, run: storage.TrainingRun) -> dict[str, Any]:
        try:
            return json.loads(summary_path(self.data_dir, run.id).read_text())
        except (OSError, ValueError):
            return {"run_id": run.id, "task": task, "trigger": run.trigger, "outcome": run.outcome,
                    "reason": run.error, "n_train": run.n_train, "n_heldout": run.n_heldout, "n_new": run.n_new}

    def _channel(self, task: str) -> str | None:
        record = storage.get_task(self.db, task)
        return record.channels[0] if record and record.channels else None

    def _report(self, task: str, run: storage.TrainingRun) -> None:
        channel = self._channel(task)
        if not (self.settings.learning.report_to_channel and self.post and channel):
            return
        if run.outcome == "skipped":
            return  # a night with nothing new to learn is not news
        text, blocks = build_report(self._summary(task, run))
        try:
            self.post(channel, text, blocks)
            if self.upload and run.outcome in ("promoted", "rejected"):
                chart = metric_chart(storage.list_adapters(self.db, task))
                self.upload(channel, chart, f"{task}-macro-f1.png", f"{task}: macro-F1 across versions")
        except Exception:  # Slack being down must not fail the round that already happened
            log.exception("could not post the round report for %s", task)

    # hot reload and rollback -----------------------------------------------------------
    def sync(self) -> list[str]:
        """Serve each task's active version; report each new load failure once."""
        with self._reload_lock:
            errors = self.predictors.sync(self.db)
        self.reload_errors = errors
        for line in errors:
            if line not in self._reported:
                self._reported.add(line)
                self._tell_admins(line.split(":", 1)[0].split(" ")[0], f":warning: adapter reload failed, "
                                  f"the previous adapter keeps serving: {line}")
        return errors

    def _tell_admins(self, task: str, text: str) -> None:
        channel = self._channel(task)
        if self.post and channel and self.settings.learning.report_to_channel:
            try:
                self.post(channel, text, [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}])
            except Exception:
                log.exception("could not report a reload failure for %s", task)

    def rollback(self, task: str, version: int | None, actor: str) -> storage.AdapterVersion:
        """Serve `version` (default: the newest retired one) now, and make it the active one."""
        with self._reload_lock:
            target = self._rollback_target(task, version)
            previous = self.predictors.version(task)
            self.predictors.load(task, target.version, target.path)  # raises before any change if broken
            activated = storage.activate_adapter(self.db, task, target.version, reason=f"rollback by {actor}")
        storage.audit(self.db, actor=actor, action="rollback",
                      detail={"task": task, "version": target.version, "previous": previous})
        return activated

    def _rollback_target(self, task: str, version: int | None) -> storage.AdapterVersion:
        versions = storage.list_adapters(self.db, task)
        if version is None:
            active = storage.get_task(self.db, task)
            newest = active.active_version if active and active.active_version else 10**9
            retired = [v for v in versions if v.status == "retired" and v.version < newest]
            if not retired:
                raise RollbackError(f"task {task!r} has no earlier version to roll back to")
            return retired[-1]
        found = next((v for v in versions if v.version == version), None)
        if found is None:
            raise RollbackError(f"task {task!r} has no adapter version {version}")
        return found
