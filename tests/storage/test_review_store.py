"""Storage for asking for labels: migration 6, out-of-scope label, review scores (deleted with their message),
questions asked (per channel per day, never twice), coverage and precision per version."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import sqlite_utils

import storage
from storage.migrations import MIGRATIONS
from tests.storage.conftest import LABELS, message

EMBEDDING = np.ones(4, dtype=np.float32).tobytes()


def _score(db: sqlite_utils.Database, ids: list[int], version: int = 1) -> int:
    rows = [(mid, 1.0 - i / 10, [("card_arrival", 0.5), ("top_up", 0.4)], EMBEDDING) for i, mid in enumerate(ids)]
    return storage.review.store_review_scores(db, "support", version, rows)


def test_migration_4_keeps_corrections_and_accepts_review_and_ask_sources(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:3]:
        migration(conn)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        "INSERT INTO tasks (name, kind, labels, created_at, updated_at) "
        "VALUES ('t', 'other', '[\"a\",\"b\"]', 'x', 'x')"
    )
    conn.execute("INSERT INTO messages (workspace, channel, ts, text, received_at) VALUES ('W', 'C', '1', 'hi', 'x')")
    conn.execute(
        "INSERT INTO corrections (id, message_id, task, label, source, user, created_at) "
        "VALUES (7, 1, 't', 'a', 'menu', 'U1', 'x')"
    )
    conn.commit()
    conn.close()
    db = storage.open_store(path)
    kept = db.execute("SELECT id, label, source FROM corrections").fetchall()
    assert [tuple(r) for r in kept] == [(7, "a", "menu")]
    task = storage.tasks.get_task(db, "t")
    assert task is not None and task.target_precision == 0.9 and task.out_of_scope_label is None
    for source in ("review", "ask"):
        storage.corrections.add_correction(db, message_id=1, task="t", label="b", source=source, user="U2")
    assert {r[0] for r in db.execute("SELECT source FROM corrections")} == {"menu", "review", "ask"}
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_out_of_scope_label_is_added_to_labels_and_survives_an_upsert_without_one(db: sqlite_utils.Database) -> None:
    task = storage.tasks.set_out_of_scope_label(db, "support", "none_of_these")
    assert task.out_of_scope_label == "none_of_these" and task.labels == [*LABELS, "none_of_these"]
    again = storage.tasks.upsert_task(
        db, storage.TaskSpec("support", kind="intent", labels=LABELS, target_precision=0.8)
    )
    assert again.out_of_scope_label == "none_of_these" and again.target_precision == 0.8
    assert storage.tasks.set_out_of_scope_label(db, "support", None).out_of_scope_label is None


def test_review_candidates_skip_labelled_other_channels_and_purged_messages(db: sqlite_utils.Database) -> None:
    ids = [message(db, f"{i}", text=f"text {i}") for i in range(4)]
    elsewhere = storage.messages.record_message(db, workspace="W1", channel="C_OTHER", ts="9", text="secret elsewhere")
    storage.tasks.bind_channel(db, "support", "C_OTHER")
    assert _score(db, [*ids, elsewhere]) == 5
    storage.corrections.add_correction(db, message_id=ids[0], task="support", label="top_up", source="menu", user="U1")
    found = storage.review.review_candidates(db, "support", "C1", 10)
    assert [c.message_id for c in found] == ids[1:]
    assert all(c.channel == "C1" for c in found) and found[0].top3[0] == ("card_arrival", 0.5)
    assert [c.message_id for c in storage.review.review_candidates(db, "support", "C_OTHER", 10)] == [elsewhere]
    assert {m.id for m in storage.review.unlabelled_messages(db, "support")} == {*ids[1:], elsewhere}


def test_stored_scores_are_deleted_with_their_message(db: sqlite_utils.Database) -> None:
    gone = message(db, "1", user="U_GONE")
    old = message(db, "2", user="U_OLD")
    kept = message(db, "3", user="U_KEPT")
    _score(db, [gone, old, kept])
    storage.privacy.erase_user(db, "U_GONE", actor="admin")
    assert storage.review.count_review_scores(db, "support") == 2
    db.execute(
        "UPDATE messages SET received_at = ? WHERE id = ?",
        ((datetime.now(timezone.utc) - timedelta(days=40)).isoformat(), old),
    )
    storage.privacy.purge_unlabelled(db, older_than_days=30, actor="retention")
    assert [c.message_id for c in storage.review.review_candidates(db, "support", "C1", 10)] == [kept]
    assert storage.review.count_review_scores(db, "support") == 1
    db.execute("DELETE FROM messages WHERE id = ?", (kept,))
    assert storage.review.count_review_scores(db) == 0
    again = message(db, "4")
    _score(db, [again])
    assert storage.review.delete_review_scores(db, [again]) == 1 and storage.review.count_review_scores(db) == 0


def test_record_ask_never_twice_and_at_most_n_per_channel_per_day(db: sqlite_utils.Database) -> None:
    ids = [message(db, f"{i}") for i in range(3)]
    assert storage.review.record_ask(db, task="support", message_id=ids[0], channel="C1", limit_per_day=2)
    assert not storage.review.record_ask(db, task="support", message_id=ids[0], channel="C1", limit_per_day=2)
    assert storage.review.record_ask(db, task="support", message_id=ids[1], channel="C1", limit_per_day=2)
    assert not storage.review.record_ask(db, task="support", message_id=ids[2], channel="C1", limit_per_day=2)
    assert storage.review.asked_since(db, "C1", "2000-01-01") == 2


def test_coverage_and_precision_per_version(db: sqlite_utils.Database) -> None:
    ids = [message(db, f"{i}") for i in range(4)]
    for mid, version, label, abstained in [
        (ids[0], 1, "top_up", False),
        (ids[1], 1, "top_up", True),
        (ids[2], 2, "card_arrival", False),
        (ids[3], 2, "top_up", False),
    ]:
        storage.messages.record_prediction(
            db,
            storage.NewPrediction(
                message_id=mid,
                task="support",
                adapter_version=version,
                label=label,
                confidence=0.9,
                top3=[(label, 0.9)],
                latency_ms=1.0,
                abstained=abstained,
            ),
        )
    for mid in ids:
        storage.corrections.add_correction(db, message_id=mid, task="support", label="top_up", source="menu", user="U1")
    rows = {r["version"]: r for r in storage.review.coverage_by_version(db, "support")}
    assert (rows[1]["coverage"], rows[1]["precision"], rows[1]["judged"]) == (0.5, 1.0, 1)
    assert (rows[2]["coverage"], rows[2]["precision"], rows[2]["judged"]) == (1.0, 0.5, 2)
