"""APScheduler setup: a persistent job store for training jobs, a volatile one for polling.

Training jobs live in `<data_dir>/scheduler.db` (APScheduler's SQLAlchemy store) so a nightly
run missed while the bot was down still happens once when it comes back. Such jobs must be
importable by reference with plain-string arguments, so they point at `run_job`, which looks
up the live runner registered under a key; the runner itself never goes into the store.

`replace_existing=True` alone would overwrite the persisted next run time on every restart and
silently drop the missed run, so `ensure_nightly` keeps a stored job whose schedule is
unchanged and only replaces it when the settings changed.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path
from typing import Callable

from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.errors import ScheduleError
from storage.files import make_private_dirs, make_private_file

log = logging.getLogger(__name__)

JOB_FUNC = "bot.loop.scheduler:run_job"
PERSISTENT = "default"
VOLATILE = "volatile"
Runner = Callable[[str, str], object]

_runners: dict[str, Runner] = {}
_runners_lock = threading.Lock()


def register_runner(key: str, runner: Runner) -> None:
    with _runners_lock:
        _runners[key] = runner


def unregister_runner(key: str) -> None:
    with _runners_lock:
        _runners.pop(key, None)


def run_job(runner_key: str, task: str, trigger: str) -> None:
    """The function every persisted job calls; finds the live runner for its data folder."""
    with _runners_lock:
        runner = _runners.get(runner_key)
    if runner is None:
        log.warning("no learning loop registered for %s; job for %s skipped", runner_key, task)
        return
    runner(task, trigger)


def runner_key(data_dir: str) -> str:
    return str(Path(data_dir).resolve())


def nightly_job_id(task: str) -> str:
    return f"nightly:{task}"


def threshold_job_id(task: str) -> str:
    return f"threshold:{task}"


class TrainingScheduler(BackgroundScheduler):
    """BackgroundScheduler that does no job pass once shut down.

    APScheduler 3.11's main loop, woken by shutdown(), runs one more pass after the executors
    are gone: due jobs fail to submit yet get their next run time advanced in the store, so a
    missed nightly run pending at shutdown would be lost for good.
    """

    def _process_jobs(self) -> float | None:
        if self.state == STATE_STOPPED:
            return None
        return super()._process_jobs()


def build_scheduler(scheduler_db: str, timezone: str) -> BackgroundScheduler:
    """A scheduler (not started) whose training jobs persist in `scheduler_db`."""
    # Made private before SQLAlchemy opens it: SQLite gives its journals the database file's mode.
    make_private_dirs(Path(scheduler_db).parent)
    make_private_file(scheduler_db)
    try:
        return TrainingScheduler(
            jobstores={PERSISTENT: SQLAlchemyJobStore(url=f"sqlite:///{scheduler_db}"), VOLATILE: MemoryJobStore()},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=timezone,
        )
    except Exception as exc:  # unknown time zone names surface here, with several error types
        raise ScheduleError(f"cannot set up the scheduler (timezone {timezone!r}): {exc}") from None


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(cron, timezone=timezone)
    except Exception as exc:
        raise ScheduleError(f"learning.schedule_cron {cron!r} / timezone {timezone!r}: {exc}") from None


def _same_schedule(job: Job, trigger: CronTrigger, args: list[str], grace: int) -> bool:
    return (
        repr(job.trigger) == repr(trigger)
        and list(job.args) == args
        and job.func_ref == JOB_FUNC
        and job.misfire_grace_time == grace
        and job.coalesce
        and job.max_instances == 1
    )


def ensure_nightly(
    scheduler: BackgroundScheduler, key: str, task: str, *, cron: str, timezone: str, misfire_grace_s: int
) -> Job:
    """Add the task's nightly job, or keep the stored one (and its pending run) if unchanged.

    Call with the scheduler started paused, so stored jobs are visible but nothing has run.
    """
    trigger = cron_trigger(cron, timezone)
    args = [key, task, "schedule"]
    existing = scheduler.get_job(nightly_job_id(task), jobstore=PERSISTENT)
    if existing is not None and _same_schedule(existing, trigger, args, misfire_grace_s):
        return existing
    return _add_training_job(
        scheduler, trigger, args, nightly_job_id(task), f"nightly training of {task}", misfire_grace_s
    )


def remove_unconfigured(scheduler: BackgroundScheduler, tasks: list[str]) -> list[str]:
    """Drop nightly jobs of tasks no longer in the settings; returns the removed ids."""
    wanted = {nightly_job_id(t) for t in tasks}
    removed = []
    for job in scheduler.get_jobs(jobstore=PERSISTENT):
        if job.id.startswith("nightly:") and job.id not in wanted:
            scheduler.remove_job(job.id, jobstore=PERSISTENT)
            removed.append(job.id)
    return removed


def schedule_threshold(
    scheduler: BackgroundScheduler, key: str, task: str, *, delay_s: float, misfire_grace_s: int
) -> Job:
    """One run `delay_s` from now; calling again moves it, so a burst of labels makes one run."""
    run_at = datetime.now(dt_timezone.utc) + timedelta(seconds=delay_s)
    args = [key, task, "threshold"]
    name = f"threshold training of {task}"
    return _add_training_job(
        scheduler, DateTrigger(run_date=run_at), args, threshold_job_id(task), name, misfire_grace_s
    )


def _add_training_job(
    scheduler: BackgroundScheduler, trigger: BaseTrigger, args: list[str], job_id: str, name: str, misfire_grace_s: int
) -> Job:
    """Add or replace a persistent training job of `run_job` (one at a time, missed runs coalesced)."""
    return scheduler.add_job(
        JOB_FUNC,
        trigger=trigger,
        args=args,
        id=job_id,
        name=name,
        jobstore=PERSISTENT,
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=misfire_grace_s,
    )


def next_run_time(scheduler: BackgroundScheduler, task: str) -> datetime | None:
    """The earliest pending training run of the task (nightly or threshold)."""
    times = []
    for job_id in (nightly_job_id(task), threshold_job_id(task)):
        job = scheduler.get_job(job_id, jobstore=PERSISTENT)
        if job is not None and job.next_run_time is not None:
            times.append(job.next_run_time)
    return min(times, default=None)
