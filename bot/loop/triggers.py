"""When rounds start: the nightly schedule, the new-label threshold (debounced), and the reload poll.

Jobs live in APScheduler (see `bot.loop.scheduler`); a due job calls back into the loop through
`request_round`, which queues the round and returns at once.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Callable

from apscheduler.triggers.cron import CronTrigger
from sqlite_utils import Database

import storage
from bot.loop import scheduler as sched
from bot.settings import Settings

MAX_POSTPONE = 5  # a burst's round runs at most this many debounce periods after it began


class Triggers:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.key = sched.runner_key(settings.data_dir)
        self.scheduler: sched.BackgroundScheduler | None = None
        self._guard = threading.Lock()
        self._bursts: dict[str, float] = {}  # task -> monotonic time its pending threshold burst began

    def start(
        self,
        tasks: list[str],
        request_round: sched.Runner,
        poll: Callable[[], object],
        retention: Callable[[], object] | None = None,
    ) -> None:
        """Keep each task's nightly job (and a pending missed run), poll for reloads, schedule the
        nightly retention pass, then run."""
        learning = self.settings.learning
        scheduler = sched.build_scheduler(self.settings.scheduler_db_path, learning.timezone)
        scheduler.start(paused=True)  # stored jobs become visible before any can fire
        for task in tasks:
            sched.ensure_nightly(
                scheduler,
                self.key,
                task,
                cron=learning.schedule_cron,
                timezone=learning.timezone,
                misfire_grace_s=learning.misfire_grace_s,
            )
        sched.remove_unconfigured(scheduler, tasks)
        scheduler.add_job(
            poll,
            "interval",
            seconds=learning.reload_poll_s,
            id="reload",
            jobstore=sched.VOLATILE,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        if retention is not None:
            # In memory: a pass missed while the bot was down simply runs the next night.
            scheduler.add_job(
                retention,
                sched.cron_trigger(self.settings.retention.schedule_cron, learning.timezone),
                id="retention",
                jobstore=sched.VOLATILE,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
            )
        sched.register_runner(self.key, request_round)
        self.scheduler = scheduler
        scheduler.resume()

    def add_interval(self, name: str, func: Callable[[], object], seconds: float) -> None:
        """A volatile job (not kept across restarts) that calls `func` every `seconds`."""
        if self.scheduler is None:
            return
        self.scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=name,
            jobstore=sched.VOLATILE,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    def add_cron(self, name: str, func: Callable[[], object], cron: str) -> None:
        """A volatile job calling `func` on a crontab schedule in the learning timezone."""
        if self.scheduler is None:
            return
        self.scheduler.add_job(
            func,
            CronTrigger.from_crontab(cron, timezone=self.settings.learning.timezone),
            id=name,
            jobstore=sched.VOLATILE,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    def stop(self) -> None:
        """No job runs after this returns: a reload poll, retention, asking or digest pass under
        way is waited for (they use the store, which the caller closes next); a requested round
        only starts a thread, which `LearningLoop.stop` deals with."""
        sched.unregister_runner(self.key)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None

    @property
    def running(self) -> bool:
        return self.scheduler is not None

    def note_new_labels(self, task: str) -> bool:
        """Schedule a debounced round when enough labels arrived since the last run started.

        Each call during a burst moves the run to `debounce_s` from now (one run per burst),
        but never past MAX_POSTPONE debounces after the burst began, so a channel that never
        falls quiet still gets its round.
        """
        if self.scheduler is None:
            return False
        learning = self.settings.learning
        pending = self.scheduler.get_job(sched.threshold_job_id(task), jobstore=sched.PERSISTENT)
        if pending is None and not self._enough_new_labels(task):
            return False  # counting resolves every label, so it is skipped while a run is pending
        with self._guard:
            began = self._bursts.setdefault(task, time.monotonic()) if pending else time.monotonic()
            self._bursts[task] = began
        limit = began + MAX_POSTPONE * learning.debounce_s - time.monotonic()
        sched.schedule_threshold(
            self.scheduler,
            self.key,
            task,
            delay_s=max(0.0, min(learning.debounce_s, limit)),
            misfire_grace_s=learning.misfire_grace_s,
        )
        return True

    def _enough_new_labels(self, task: str) -> bool:
        last = storage.runs.last_run(self.db, task)
        since = datetime.fromisoformat(last.started_at) if last else None
        return storage.resolution.new_labels_reach(self.db, task, since, self.settings.learning.threshold_new_labels)

    def next_run_time(self, task: str) -> datetime | None:
        return sched.next_run_time(self.scheduler, task) if self.scheduler else None
