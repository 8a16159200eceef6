"""Retention: old predictions and run logs go, old unlabelled text is erased,
adapter versions beyond the active one, its parent and the newest N are listed for pruning."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
import sqlite_utils

import storage
from tests.storage.conftest import message, prediction


def _days_ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat(timespec="microseconds")


def _prediction(db: sqlite_utils.Database, message_id: int, age_days: float) -> int:
    pid = prediction(db, message_id)
    db.execute("UPDATE predictions SET created_at = ? WHERE id = ?", (_days_ago(age_days), pid))
    db.conn.commit()
    return pid


def test_old_predictions_are_deleted_and_recent_ones_kept(db: sqlite_utils.Database) -> None:
    mid = message(db, "1")
    old, recent = _prediction(db, mid, 100), _prediction(db, mid, 10)
    assert storage.retention.delete_old_predictions(db, older_than_days=90) == 1
    assert [r[0] for r in db.execute("SELECT id FROM predictions").fetchall()] == [recent]
    assert old != recent


def test_expired_runs_are_the_finished_ones_older_than_the_limit(db: sqlite_utils.Database) -> None:
    old, recent, unfinished = (storage.runs.start_run(db, "support", "manual") for _ in range(3))
    storage.runs.finish_run(db, old, outcome="skipped")
    storage.runs.finish_run(db, recent, outcome="skipped")
    db.execute("UPDATE runs SET started_at = ?, finished_at = ? WHERE id = ?", (_days_ago(100), _days_ago(100), old))
    db.execute("UPDATE runs SET started_at = ?, finished_at = ? WHERE id = ?", (_days_ago(10), _days_ago(10), recent))
    db.execute("UPDATE runs SET started_at = ? WHERE id = ?", (_days_ago(100), unfinished))
    db.conn.commit()
    assert storage.retention.expired_runs(db, older_than_days=90) == [old]  # the unfinished one may still be running


def _versions(db: sqlite_utils.Database, statuses: dict[int, str], parents: dict[int, int]) -> None:
    for version, status in statuses.items():
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task="support",
                version=version,
                path=f"/a/v{version:04d}",
                parent_version=parents.get(version),
                run_id=None,
                metrics={},
            ),
        )
        if status == "active":
            storage.adapters.activate_adapter(db, "support", version, reason="test")
        elif status != "candidate":
            storage.adapters.set_adapter_status(db, "support", version, status, "test")


def test_versions_to_prune_keep_the_active_its_parent_and_the_newest_n(db: sqlite_utils.Database) -> None:
    statuses = {v: "retired" for v in range(1, 9)} | {9: "rejected", 10: "rejected", 11: "candidate"}
    _versions(db, statuses, parents={5: 3})
    storage.adapters.activate_adapter(db, "support", 5, reason="rollback")
    # active 5, its parent 3, the newest two others 10 and 9; 11 is a candidate (a round may be running).
    assert [v.version for v in storage.retention.adapter_versions_to_prune(db, "support", keep_newest=2)] == [
        1,
        2,
        4,
        6,
        7,
        8,
    ]
    storage.retention.mark_adapter_pruned(db, "support", 1)
    assert 1 not in [v.version for v in storage.retention.adapter_versions_to_prune(db, "support", keep_newest=2)]
    assert storage.retention.pruned_versions(db, "support") == [1]


def test_apply_retention_does_it_all_in_one_call_and_audits(db: sqlite_utils.Database) -> None:
    old_mid = storage.messages.record_message(
        db, workspace="W", channel="C1", ts="old", text="old unlabelled", received_at=_days_ago(200)
    )
    _prediction(db, old_mid, 100)
    _versions(db, {1: "retired", 2: "retired", 3: "active"}, parents={3: 2})
    report = storage.retention.apply_retention(
        db, prediction_days=90, unlabelled_days=180, run_log_days=90, keep_versions=0, actor="retention"
    )
    assert report.predictions == 1 and report.erased.messages == 1 and len(report.erased.text_hashes) == 1
    assert [v.version for v in report.prunable["support"]] == [1]
    assert storage.events.list_audit(db)[0].action == "retention"


@pytest.mark.parametrize("days", [math.nan, -3, math.inf])
def test_retention_refuses_days_that_are_not_sensible(db: sqlite_utils.Database, days: float) -> None:
    with pytest.raises(storage.InvalidValueError):
        storage.retention.delete_old_predictions(db, older_than_days=days)
    with pytest.raises(storage.InvalidValueError):
        storage.retention.adapter_versions_to_prune(db, "support", keep_newest=-1)
