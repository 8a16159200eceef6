"""Tasks, messages, predictions, corrections bookkeeping, adapters, runs, audit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import storage
from tests.storage.conftest import LABELS, message


def test_same_slack_message_stored_twice_is_one_row(db) -> None:
    first = message(db, "1700000000.000100")
    second = message(db, "1700000000.000100", text="retried delivery")
    assert first == second
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1
    assert storage.messages.get_message(db, first).text == "where is my card"


def test_tasks_keep_labels_and_refuse_bad_values(db) -> None:
    task = storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["new_label"]))
    assert task.labels == [*LABELS, "new_label"]
    assert task.channels == ["C1"] and task.emoji_map["card"] == "card_arrival"
    assert storage.tasks.task_for_channel(db, "C1").name == "support"
    assert storage.tasks.task_for_channel(db, "C9") is None
    with pytest.raises(storage.InvalidValueError, match="kind"):
        storage.tasks.upsert_task(db, storage.TaskSpec("x", kind="weird", labels=["a"]))
    with pytest.raises(storage.UnknownLabelError, match="not a label"):
        storage.tasks.upsert_task(db, storage.TaskSpec("x", labels=["a"], emoji_map={"smile": "b"}))
    with pytest.raises(storage.ChannelBoundError, match="already bound to task 'support'"):
        storage.tasks.upsert_task(
            db, storage.TaskSpec("mood", kind="sentiment", labels=["pos", "neg"], channels=["C1"])
        )
    assert storage.tasks.bind_channel(db, "support", "C2").channels == ["C1", "C2"]
    assert storage.tasks.add_labels(db, "support", ["x", "top_up"]).labels[-1] == "x"
    with pytest.raises(storage.UnknownTaskError, match="known tasks: support"):
        storage.tasks.add_labels(db, "nope", ["a"])


def test_prediction_found_by_its_reply(db) -> None:
    mid = message(db, "1.1")
    stored = storage.messages.record_prediction(
        db,
        storage.NewPrediction(
            message_id=mid,
            task="support",
            adapter_version=3,
            label="card_arrival",
            confidence=0.8,
            top3=[("card_arrival", 0.8), ("top_up", 0.15), ("lost_or_stolen_card", 0.05)],
            latency_ms=12.5,
        ),
    )
    assert stored == storage.messages.latest_prediction(db, mid, "support")  # returned exactly as stored
    assert stored.reply_ts is None and not stored.abstained
    pid = stored.id
    storage.messages.set_prediction_reply(db, pid, channel="C1", reply_ts="1.2")
    found = storage.messages.find_prediction_by_reply(db, channel="C1", reply_ts="1.2")
    assert found.id == pid and found.top3[0] == ("card_arrival", 0.8) and found.adapter_version == 3
    assert storage.messages.latest_prediction(db, mid, "support").id == pid
    assert storage.messages.find_prediction_by_reply(db, channel="C1", reply_ts="9.9") is None
    with pytest.raises(storage.UnknownMessageError):
        storage.messages.record_prediction(
            db,
            storage.NewPrediction(
                message_id=999,
                task="support",
                adapter_version=None,
                label="top_up",
                confidence=0.5,
                top3=[],
                latency_ms=1.0,
            ),
        )


def test_corrections_validate_and_count_per_user(db) -> None:
    mid = message(db, "1.1")
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    storage.corrections.add_correction(db, message_id=mid, task="support", label="top_up", source="menu", user="U1")
    storage.corrections.add_correction(db, message_id=mid, task="support", label=None, source="reject", user="U1")
    assert storage.corrections.count_user_corrections_since(db, "U1", since) == 2
    assert (
        storage.corrections.count_user_corrections_since(db, "U1", datetime.now(timezone.utc) + timedelta(hours=1)) == 0
    )
    with pytest.raises(storage.UnknownLabelError, match="not a label of task 'support'"):
        storage.corrections.add_correction(db, message_id=mid, task="support", label="nope", source="menu", user="U1")
    with pytest.raises(storage.InvalidValueError, match="source"):
        storage.corrections.add_correction(
            db, message_id=mid, task="support", label="top_up", source="telepathy", user="U1"
        )
    with pytest.raises(storage.InvalidValueError, match="no 'support' prediction to confirm"):
        storage.corrections.add_correction(db, message_id=mid, task="support", label=None, source="confirm", user="U1")


def test_adapter_lifecycle_keeps_one_active_version(db) -> None:
    run = storage.runs.start_run(db, "support", "manual")
    assert storage.adapters.next_version(db, "support") == 1
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support",
            version=1,
            path="a/v0001",
            parent_version=None,
            run_id=run,
            metrics={"macro_f1": 0.5},
            status="active",
            reason="first",
        ),
    )
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=2, path="a/v0002", parent_version=1, run_id=None, metrics={"macro_f1": 0.6}
        ),
    )
    assert storage.adapters.next_version(db, "support") == 3
    promoted = storage.adapters.activate_adapter(db, "support", 2, reason="gate passed")
    assert promoted.status == "active" and promoted.metrics == {"macro_f1": 0.6}
    assert storage.adapters.get_adapter(db, "support", 1).status == "retired"
    assert storage.tasks.get_task(db, "support").active_version == 2
    storage.adapters.set_adapter_status(db, "support", 2, "rejected", "bad in production")
    assert storage.tasks.get_task(db, "support").active_version is None
    assert [a.status for a in storage.adapters.list_adapters(db, "support")] == ["retired", "rejected"]
    with pytest.raises(storage.UnknownAdapterError):
        storage.adapters.activate_adapter(db, "support", 7, reason="x")
    with pytest.raises(storage.InvalidValueError, match="already has an adapter version 1"):
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task="support", version=1, path="p", parent_version=None, run_id=None, metrics={}
            ),
        )


def test_runs_are_recorded_newest_first(db) -> None:
    first = storage.runs.start_run(db, "support", "schedule")
    storage.runs.finish_run(db, first, outcome="rejected", n_train=10, n_heldout=3, n_new=4)
    second = storage.runs.start_run(db, "support", "threshold")
    latest = storage.runs.last_run(db, "support")
    assert latest.id == second and latest.finished_at is None
    finished = storage.runs.list_runs(db, "support")[1]
    assert (finished.outcome, finished.n_train, finished.n_heldout, finished.n_new) == ("rejected", 10, 3, 4)
    with pytest.raises(storage.InvalidValueError, match="trigger"):
        storage.runs.start_run(db, "support", "whim")
    with pytest.raises(storage.UnknownRunError):
        storage.runs.finish_run(db, 999, outcome="failed")


def test_audit_entries_newest_first(db) -> None:
    storage.events.audit(db, actor="U1", action="retrain", detail={"task": "support"})
    storage.events.audit(db, actor="U2", action="rollback")
    entries = storage.events.list_audit(db)
    assert [(e.actor, e.action, e.detail) for e in entries] == [
        ("U2", "rollback", None),
        ("U1", "retrain", {"task": "support"}),
    ]
