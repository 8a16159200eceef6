"""The LearningLoop's own jobs: persisted across restarts, a missed night runs once, thresholds."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import storage
from bot.loop import scheduler as sch
from bot.loop import LearningLoop
from bot.loop.registry import PredictorRegistry
from tests.loop.conftest import TASK, label_messages, make_settings


def _jobs(settings) -> dict[str, datetime]:
    paused = sch.build_scheduler(str(Path(settings.data_dir) / "scheduler.db"), "UTC")
    paused.start(paused=True)
    try:
        return {job.id: job.next_run_time for job in paused.get_jobs(jobstore=sch.PERSISTENT)}
    finally:
        paused.shutdown()


def _loop(settings, db) -> LearningLoop:
    return LearningLoop(settings, db, PredictorRegistry(settings.model.base_model))


def _wait_for_a_finished_run(db) -> None:
    """Until a run of TASK has finished, then a second for a wrongly queued second run to start.

    The round is a niced child process, which a busy machine can hold back for minutes: the
    deadline only bounds a run that never ends.
    """
    deadline = time.monotonic() + 540
    while not any(r.finished_at for r in storage.runs.list_runs(db, TASK)):
        assert time.monotonic() < deadline, "no run of the task finished within 540 s"
        time.sleep(0.2)
    time.sleep(1.0)


def test_restarting_the_loop_keeps_one_nightly_job(loop_env) -> None:
    settings, db = loop_env
    for _ in range(3):
        loop = _loop(settings, db)
        loop.start()
        planned = loop.next_run_time(TASK)
        loop.stop()
    jobs = _jobs(settings)
    assert list(jobs) == [f"nightly:{TASK}"]
    assert jobs[f"nightly:{TASK}"] == planned and planned.hour == 3


def test_a_night_missed_while_down_runs_once_at_start(loop_env, tiny_bert_dir) -> None:
    _, db = loop_env
    settings = make_settings(
        Path(loop_env[0].data_dir), tiny_bert_dir, schedule_cron="*/10 * * * *", misfire_grace_s=900
    )
    loop = _loop(settings, db)
    loop.start()
    loop.stop()
    down = sch.build_scheduler(str(Path(settings.data_dir) / "scheduler.db"), "UTC")
    down.start(paused=True)
    down.modify_job(f"nightly:{TASK}", next_run_time=datetime.now(timezone.utc) - timedelta(days=2))
    down.shutdown()

    loop = _loop(settings, db)
    loop.start()
    try:
        _wait_for_a_finished_run(db)
    finally:
        loop.stop()
    runs = storage.runs.list_runs(db, TASK)
    assert [(r.trigger, r.outcome) for r in runs] == [("schedule", "skipped")]  # no labels yet
    assert "too little data" in runs[0].error


def test_threshold_trigger_schedules_one_debounced_run(loop_env, tiny_bert_dir) -> None:
    _, db = loop_env
    settings = make_settings(Path(loop_env[0].data_dir), tiny_bert_dir, threshold_new_labels=10, debounce_s=600)
    loop = _loop(settings, db)
    loop.start()
    try:
        label_messages(db, {"refund": 3})
        assert loop.note_new_labels(TASK) is False and loop.next_run_time(TASK).hour == 3
        label_messages(db, {"card_arrival": 4, "feelings": 4, "refund": 3})
        assert all(loop.note_new_labels(TASK) for _ in range(5))
        soon = loop.next_run_time(TASK)
        loop.triggers._bursts[TASK] -= 2900  # a burst that began long ago is not postponed past 5 debounces
        assert loop.note_new_labels(TASK)
        capped = loop.next_run_time(TASK)
    finally:
        loop.stop()
    jobs = _jobs(settings)
    assert sorted(jobs) == [f"nightly:{TASK}", f"threshold:{TASK}"]
    assert timedelta(seconds=500) < soon - datetime.now(timezone.utc) <= timedelta(seconds=600)
    assert jobs[f"threshold:{TASK}"] == capped
    assert timedelta(seconds=0) < capped - datetime.now(timezone.utc) <= timedelta(seconds=100)


def test_rounds_requested_while_one_trains_queue_as_one(loop_env) -> None:
    settings, db = loop_env
    loop = _loop(settings, db)
    loop.start()
    try:
        with loop.runner.lock_for(TASK):  # a round of this task is training right now
            requested = [loop.request_round(TASK, "threshold") for _ in range(3)]
        _wait_for_a_finished_run(db)
    finally:
        loop.stop()
    assert requested == [True, False, False]
    assert [(r.trigger, r.outcome) for r in storage.runs.list_runs(db, TASK)] == [("threshold", "skipped")]
