"""Rounds and labels that change in Slack: a round after a rename trains on today's names (no new
corrections needed), records the label set it was trained on, a rollback to a version trained
before the rename serves today's names, and a rename racing a round is served under the new name."""

from __future__ import annotations

import threading

import storage
from bot.loop.registry import PredictorRegistry
from tests.loop.conftest import TASK, label_messages


def test_a_rename_is_trained_on_and_a_rollback_serves_todays_names(loop_env, new_loop) -> None:
    settings, db = loop_env
    label_messages(db, 16)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    loop.start()
    first = loop.run_round(TASK, "manual")
    assert (first.outcome, first.version) == ("promoted", 1)
    assert "refund" in storage.adapters.get_adapter(db, TASK, 1).metrics["label_set"]["labels"]

    storage.labels.change(db, TASK, "rename", "U0ADMIN", "refund", "money_back")
    predictors.follow_labels(db, TASK)
    answer = predictors.get(TASK).answer(["refund charged twice fee"])[0]
    assert answer.label == "money_back"  # served under the new name at once, by v1

    second = loop.run_round(TASK, "manual")  # no new correction: the label change is the news
    assert second.version == 2, second
    trained = storage.adapters.get_adapter(db, TASK, 2).metrics["label_set"]
    assert "money_back" in trained["labels"] and "refund" not in trained["labels"]
    assert trained["history_mark"] == storage.labels.mark(db, TASK)
    if second.outcome == "promoted":
        loop.rollback(TASK, 1, actor="U0ADMIN")
    assert predictors.version(TASK) == 1
    assert predictors.get(TASK).answer(["refund charged twice fee"])[0].label == "money_back"
    assert "refund" not in predictors.get(TASK).label_plan().labels


def test_a_rename_racing_a_round_is_served_under_the_new_name(loop_env, new_loop) -> None:
    settings, db = loop_env
    label_messages(db, 16)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    loop.start()
    renamed = threading.Event()

    def rename_once_the_round_runs() -> None:
        while not storage.runs.list_runs(db, TASK):
            renamed.wait(0.01)
        storage.labels.change(db, TASK, "rename", "U0ADMIN", "feelings", "mood")
        renamed.set()

    racer = threading.Thread(target=rename_once_the_round_runs)
    racer.start()
    run = loop.run_round(TASK, "manual")
    racer.join(timeout=60)
    assert renamed.is_set() and run.outcome == "promoted"
    loop.sync()  # whichever finished first, the served labels are today's
    plan = predictors.get(TASK).label_plan()
    assert "mood" in plan.labels and "feelings" not in plan.labels
    assert predictors.get(TASK).answer(["sad happy upset"])[0].top3[0][0] in plan.labels
