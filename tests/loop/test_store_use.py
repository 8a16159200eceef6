"""The loop shares the bot's one connection, which its owner closes after `stop()`: stop waits
for the loop's work on the store under way and the loop does none afterwards."""

from __future__ import annotations

import threading

import pytest

import storage
from bot.errors import LoopStoppedError
from bot.loop import LearningLoop
from bot.loop.registry import PredictorRegistry
from bot.loop.store_use import StoreUse
from tests.loop.conftest import TASK


def test_close_waits_for_the_work_under_way_and_refuses_new_work() -> None:
    use = StoreUse()
    inside, release = threading.Event(), threading.Event()

    def work() -> None:
        with use.using():
            inside.set()
            release.wait(30)

    worker = threading.Thread(target=work)
    worker.start()
    assert inside.wait(30)
    assert use.close(timeout=0.05) is False  # still in use: the worker holds it until released
    with pytest.raises(LoopStoppedError):
        with use.using():
            pass  # closing refuses new work at once, even before the old work ends
    release.set()
    worker.join(30)
    assert use.close(timeout=30) is True


def test_a_stopped_loop_leaves_the_store_alone(loop_env) -> None:
    settings, db = loop_env
    loop = LearningLoop(settings, db, PredictorRegistry(settings.model.base_model))
    assert loop.db is db  # the caller's connection, not one of its own
    loop.start()
    loop.stop()
    with pytest.raises(LoopStoppedError):
        loop.run_round(TASK, "manual")
    assert storage.runs.list_runs(db, TASK) == []  # not even a run row was started
