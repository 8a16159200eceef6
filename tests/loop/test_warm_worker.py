"""Rounds forked by the warm training worker: the same records as a cold child, no SQLite handle
in the worker, and a worker that is killed or stuck is replaced without losing the next round."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal

import pytest

import storage
from bot.loop import LearningLoop
from bot.loop import runner as runner_module
from bot.loop.options import RoundSummary, summary_path
from bot.loop.registry import PredictorRegistry
from bot.loop.runner import child_env
from bot.loop.warm_client import WarmRound, WarmWorker, gone
from tests.loop.conftest import CHANNEL, TASK, WORDS, label_messages, make_settings
from tests.waiting import wait_until

WAIT_S = 120.0


@pytest.fixture
def loop_env(loop_env):
    """The shared loop settings with the warm worker on, as `serve` runs by default (the other
    loop tests use the cold child)."""
    settings, db = loop_env
    return dataclasses.replace(settings, model=dataclasses.replace(settings.model, warm_worker=True)), db


def _ready_worker(loop) -> WarmWorker:
    worker = loop.runner.warm
    assert worker is not None and worker.wait_ready(300)
    return worker


def _started_loop(settings, db, new_loop) -> tuple[LearningLoop, WarmWorker]:
    """A started loop over 30 labelled messages, and its warm worker once ready."""
    label_messages(db, 30)
    loop = new_loop(settings, PredictorRegistry(settings.model.base_model, settings.feature_cache_dir))
    loop.start()
    return loop, _ready_worker(loop)


def _round_record(settings, db, warm: bool) -> tuple[tuple, dict]:
    settings = dataclasses.replace(settings, model=dataclasses.replace(settings.model, warm_worker=warm))
    loop = LearningLoop(settings, db, PredictorRegistry(settings.model.base_model, settings.feature_cache_dir))
    loop.start()
    try:
        run = loop.run_round(TASK, "manual")
        worker = loop.runner.warm
        assert (worker is not None and worker.forked == 1) == warm  # the round went the way asked
    finally:
        loop.stop()
    summary = RoundSummary.read(summary_path(settings.data_dir, run.id))
    record = (run.outcome, run.version, run.n_train, run.n_heldout, run.n_new, run.error)
    return record, {k: v for k, v in dataclasses.asdict(summary).items() if k != "finished_at"}


def test_a_warm_round_records_what_a_cold_round_records(loop_env, tmp_path, tiny_bert_dir) -> None:
    settings, db = loop_env
    label_messages(db, 30)
    other = make_settings(tmp_path / "cold", tiny_bert_dir)
    cold_db = storage.open_store(other.db_path)
    try:
        storage.tasks.upsert_task(
            cold_db, storage.TaskSpec(TASK, kind="intent", labels=sorted(WORDS), channels=[CHANNEL])
        )
        label_messages(cold_db, 30)
        warm = _round_record(settings, db, True)
        cold = _round_record(other, cold_db, False)
    finally:
        cold_db.close()
    assert warm[0][0] == "promoted"
    assert warm == cold


def _db_handles(pid: int) -> list[str]:
    opened = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    return [path for path in opened if path.endswith((".db", ".db-wal", ".db-shm", ".db-journal"))]


def test_the_warm_worker_holds_no_sqlite_handle(loop_env, new_loop) -> None:
    settings, db = loop_env
    loop = new_loop(settings, PredictorRegistry(settings.model.base_model))
    loop.start()
    worker = _ready_worker(loop)
    assert _db_handles(worker.pid) == []
    assert os.path.realpath(settings.db_path) in [  # the bot itself has it open: the check can see one
        os.readlink(f"/proc/self/fd/{fd}")
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    ]


def test_a_worker_killed_while_idle_is_replaced_and_the_next_round_is_warm(loop_env, new_loop) -> None:
    settings, db = loop_env
    loop, first = _started_loop(settings, db, new_loop)
    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: loop.runner.warm is not None and loop.runner.warm is not first, WAIT_S)
    run = loop.run_round(TASK, "manual")
    assert run.outcome == "promoted"
    assert loop.runner.warm is not None and loop.runner.warm.pid != first.pid and loop.runner.warm.forked == 1
    assert _db_handles(loop.runner.warm.pid) == []  # its round opened the store; the worker did not


def test_a_worker_killed_mid_round_fails_the_round_truthfully_and_the_next_round_works(loop_env, new_loop) -> None:
    settings, db = loop_env
    loop, first = _started_loop(settings, db, new_loop)
    run_id = loop.run_now(TASK, actor="U0ADMIN")
    wait_until(lambda: isinstance(loop.children.get(TASK), WarmRound), WAIT_S)
    child_pid = loop.children[TASK].pid
    os.kill(first.pid, signal.SIGKILL)
    wait_until(lambda: storage.runs.get_run(db, run_id).finished_at is not None, WAIT_S)
    run = storage.runs.get_run(db, run_id)
    assert run.outcome == "failed"
    assert f"warm worker pid {first.pid} killed by SIGKILL while the round ran" in run.error
    assert gone(child_pid)  # the round died with its worker: nothing of it still writes
    assert storage.tasks.get_task(db, TASK).active_version is None

    label_messages(db, 5, seed=7)
    again = loop.run_round(TASK, "manual")
    assert again.outcome == "promoted"
    assert loop.runner.warm is not None and loop.runner.warm.pid != first.pid


def test_a_stuck_worker_is_killed_and_replaced(loop_env, new_loop) -> None:
    settings, db = loop_env
    loop, stuck = _started_loop(settings, db, new_loop)
    os.kill(stuck.pid, signal.SIGSTOP)  # alive, but answers nothing
    run = loop.run_round(TASK, "manual")
    assert run.outcome == "promoted"
    assert stuck.process.poll() == -signal.SIGKILL
    assert loop.runner.warm is not None and loop.runner.warm is not stuck and loop.runner.warm.forked == 1


def test_a_worker_that_cannot_start_in_time_leaves_the_round_to_a_cold_child(
    loop_env, new_loop, monkeypatch, caplog
) -> None:
    settings, db = loop_env
    label_messages(db, 30)
    monkeypatch.setattr(runner_module, "READY_TIMEOUT_S", 0.0)
    loop = new_loop(settings, PredictorRegistry(settings.model.base_model, settings.feature_cache_dir))
    with caplog.at_level(logging.WARNING, logger="bot.loop.runner"):
        run = loop.run_round(TASK, "manual")  # no start(): the worker is made for the round, not ready at once
    assert run.outcome == "promoted"
    assert "training round runs cold: the warm training worker could not start (not ready within 0 s)" in caplog.text
    assert loop.runner.warm is None


def test_a_changed_base_model_restarts_the_worker(loop_env, new_loop, tmp_path, tiny_bert_dir) -> None:
    settings, db = loop_env
    loop, first = _started_loop(settings, db, new_loop)
    copy = shutil.copytree(tiny_bert_dir, tmp_path / "same-bert-elsewhere")
    loop.runner.settings = dataclasses.replace(
        settings, model=dataclasses.replace(settings.model, base_model=str(copy))
    )
    loop.run_round(TASK, "manual")
    assert first.process.wait(timeout=60) == 0  # asked to stop, it exited
    assert loop.runner.warm is not None and loop.runner.warm.base_model == str(copy)
    assert loop.runner.warm.forked == 1


@pytest.mark.parametrize("warm", [True, False])
def test_sigkill_of_the_round_is_reported_by_either_path(loop_env, new_loop, warm) -> None:
    settings, db = loop_env
    settings = dataclasses.replace(settings, model=dataclasses.replace(settings.model, warm_worker=warm))
    label_messages(db, 30)
    loop = new_loop(settings, PredictorRegistry(settings.model.base_model, settings.feature_cache_dir))
    loop.start()
    run_id = loop.run_now(TASK, actor="U0ADMIN")
    wait_until(lambda: TASK in loop.children, WAIT_S)
    assert isinstance(loop.children[TASK], WarmRound) == warm
    os.kill(loop.children[TASK].pid, signal.SIGKILL)
    wait_until(lambda: storage.runs.get_run(db, run_id).finished_at is not None, WAIT_S)
    run = storage.runs.get_run(db, run_id)
    assert run.outcome == "failed" and run.error.startswith("training process killed by SIGKILL")


def test_a_forked_round_exits_and_logs_as_the_cold_child_does(loop_env, tmp_path) -> None:
    settings, _ = loop_env
    worker = WarmWorker(settings.model.base_model, 1, tmp_path / "worker.log", child_env(1), 0)
    try:
        assert worker.wait_ready(300)
        unknown = worker.start_round(["--db", settings.db_path, "--task", "nope"], tmp_path / "unknown.log", 1)
        assert unknown.wait(120) == 2
        log_text = (tmp_path / "unknown.log").read_text()
        assert log_text.strip().splitlines()[-1] == "training round for nope: error: unknown task 'nope'"
        assert (tmp_path / "unknown.log").stat().st_mode & 0o777 == 0o600
        bad = worker.start_round(["--task", TASK, "--trigger", "bogus"], tmp_path / "bad.log", 1)
        assert bad.wait(120) == 2  # argparse's usage error, as `python -m bot.loop.round` exits
        assert "invalid choice: 'bogus'" in (tmp_path / "bad.log").read_text()
        assert worker.ping()  # the worker itself is untouched by its rounds' ends
    finally:
        worker.close()
    assert worker.process.returncode == 0
