"""The persistent job store: restarts keep one job per task and a missed run happens once."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from bot.loop import scheduler as sch
from bot.errors import ScheduleError


class CallLog:
    """A runner that records its calls, so tests can see what the scheduler ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.event = threading.Event()

    def __call__(self, task: str, trigger: str) -> None:
        self.calls.append((task, trigger))
        self.event.set()


def _future(moment: datetime | None) -> datetime | None:
    return moment if moment is not None and moment > datetime.now(timezone.utc) else None


def wait_for(check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """The first truthy `check()`; the timeout only bounds a wait that would never end."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)
    return value


def _started(db: Path) -> sch.BackgroundScheduler:
    scheduler = sch.build_scheduler(str(db), "UTC")
    scheduler.start(paused=True)
    return scheduler


def test_restart_keeps_one_job_per_task_and_its_next_run(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    first = _started(db)
    for task in ("support", "mood"):
        sch.ensure_nightly(first, "k", task, cron="0 3 * * *", timezone="UTC", misfire_grace_s=600)
    before = {j.id: j.next_run_time for j in first.get_jobs()}
    first.shutdown()

    second = _started(db)
    for task in ("support", "mood"):
        sch.ensure_nightly(second, "k", task, cron="0 3 * * *", timezone="UTC", misfire_grace_s=600)
    after = {j.id: j.next_run_time for j in second.get_jobs()}
    second.shutdown()
    assert sorted(after) == ["nightly:mood", "nightly:support"]
    assert after == before


def test_changed_cron_replaces_the_job_and_unconfigured_tasks_are_dropped(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    first = _started(db)
    sch.ensure_nightly(first, "k", "support", cron="0 3 * * *", timezone="UTC", misfire_grace_s=600)
    sch.ensure_nightly(first, "k", "old", cron="0 3 * * *", timezone="UTC", misfire_grace_s=600)
    first.shutdown()

    second = _started(db)
    job = sch.ensure_nightly(second, "k", "support", cron="30 4 * * *", timezone="UTC", misfire_grace_s=600)
    removed = sch.remove_unconfigured(second, ["support"])
    jobs = second.get_jobs()
    second.shutdown()
    assert removed == ["nightly:old"]
    assert [j.id for j in jobs] == ["nightly:support"]
    assert (job.next_run_time.hour, job.next_run_time.minute) == (4, 30)


def test_run_missed_while_down_runs_once_on_start(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    calls = CallLog()
    sch.register_runner("missed", calls)
    try:
        down = _started(db)
        sch.ensure_nightly(down, "missed", "support", cron="*/10 * * * *", timezone="UTC", misfire_grace_s=900)
        # Three days down: hundreds of 10-minute runs were missed; coalescing must make one.
        down.modify_job("nightly:support", next_run_time=datetime.now(timezone.utc) - timedelta(days=3))
        down.shutdown()

        up = _started(db)
        sch.ensure_nightly(up, "missed", "support", cron="*/10 * * * *", timezone="UTC", misfire_grace_s=900)
        up.resume()
        assert calls.event.wait(120), "the missed run never ran"
        # Once the job's next run is in the future, every missed time has been dealt with; the
        # shutdown waits for any run already handed to the executor.
        next_time = wait_for(lambda: _future(up.get_job("nightly:support").next_run_time))
        up.shutdown(wait=True)
    finally:
        sch.unregister_runner("missed")
    assert calls.calls == [("support", "schedule")]
    assert next_time > datetime.now(timezone.utc)


def test_burst_of_threshold_triggers_makes_one_run(tmp_path: Path) -> None:
    calls = CallLog()
    sch.register_runner("burst", calls)
    scheduler = _started(tmp_path / "scheduler.db")
    scheduler.resume()
    try:
        for _ in range(5):
            sch.schedule_threshold(scheduler, "burst", "support", delay_s=0.5, misfire_grace_s=60)
        assert len(scheduler.get_jobs()) == 1
        assert calls.event.wait(120)
        wait_for(lambda: scheduler.get_jobs() == [])  # the one-off job is gone once it has run
    finally:
        scheduler.shutdown(wait=True)  # and any run already handed to the executor has ended
        sch.unregister_runner("burst")
    assert calls.calls == [("support", "threshold")]


def test_bad_cron_is_one_clear_error(tmp_path: Path) -> None:
    scheduler = _started(tmp_path / "scheduler.db")
    try:
        with pytest.raises(ScheduleError, match="schedule_cron"):
            sch.ensure_nightly(scheduler, "k", "t", cron="every night", timezone="UTC", misfire_grace_s=60)
    finally:
        scheduler.shutdown()
