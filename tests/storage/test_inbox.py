"""The durable inbox: one row per event id, claimed, finished or put back."""

from __future__ import annotations

import sqlite_utils

import storage


def _enqueue(db: sqlite_utils.Database, event_id: str, user: str = "U1") -> bool:
    return storage.inbox.enqueue_event(
        db, event_id=event_id, kind="message", body='{"t": "secret"}', channel="C1", user=user
    )


def test_an_event_id_is_queued_once(db: sqlite_utils.Database) -> None:
    assert _enqueue(db, "Ev1") is True
    assert _enqueue(db, "Ev1") is False
    assert storage.inbox.count_unfinished(db) == 1


def test_claim_finish_blanks_text_and_keeps_the_mark(db: sqlite_utils.Database) -> None:
    _enqueue(db, "Ev1")
    item = storage.inbox.claim_next(db)
    assert item is not None and item.event_id == "Ev1" and item.attempts == 1 and "secret" in item.body
    assert storage.inbox.claim_next(db) is None  # claimed rows are not handed out twice
    storage.inbox.finish(db, item.id, "answered")
    assert storage.inbox.count_unfinished(db) == 0 and storage.inbox.outcomes(db) == {"answered": 1}
    assert db.execute("SELECT body FROM inbox").fetchall() == [("",)]
    assert _enqueue(db, "Ev1") is False  # still the de-duplication mark


def test_requeue_makes_it_due_later(db: sqlite_utils.Database) -> None:
    _enqueue(db, "Ev1")
    item = storage.inbox.claim_next(db)
    assert item is not None
    storage.inbox.requeue(db, item.id, delay_s=3600)
    assert storage.inbox.claim_next(db) is None
    storage.inbox.requeue(db, item.id, delay_s=0)
    again = storage.inbox.claim_next(db)
    assert again is not None and again.attempts == 2


def test_release_claims_after_a_crash(db: sqlite_utils.Database) -> None:
    _enqueue(db, "Ev1")
    assert storage.inbox.claim_next(db) is not None
    assert storage.inbox.release_claims(db) == 1
    assert storage.inbox.claim_next(db) is not None


def test_delete_user_data_and_purge_remove_waiting_text(db: sqlite_utils.Database) -> None:
    _enqueue(db, "Ev1", user="U_GONE")
    _enqueue(db, "Ev2", user="U_STAY")
    assert storage.privacy.delete_user_data(db, "U_GONE", actor="ADMIN")["inbox"] == 1
    db.execute("UPDATE inbox SET received_at = '2000-01-01T00:00:00.000000+00:00'")
    db.conn.commit()
    assert storage.privacy.purge_unlabelled_text(db, older_than_days=30, actor="ADMIN") == 0
    assert storage.inbox.count_unfinished(db) == 0


def _statements_of(db: sqlite_utils.Database, write) -> list[str]:
    seen: list[str] = []
    db.conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split())))
    try:
        write()
    finally:
        db.conn.set_trace_callback(None)
    return seen


def test_the_inbox_insert_commits_at_synchronous_full_and_other_writes_stay_normal(tmp_path) -> None:
    # Power loss cannot be simulated here; what can be checked is the level SQLite applies when the
    # insert commits (FULL syncs the WAL at that commit), and that the connection returns to NORMAL.
    db = storage.open_store(tmp_path / "camel.db")
    try:
        seen = _statements_of(db, lambda: _enqueue(db, "Ev1"))
        insert = next(i for i, s in enumerate(seen) if s.startswith("INSERT INTO inbox"))
        commit = next(i for i, s in enumerate(seen) if i > insert and s == "COMMIT")
        levels = [(i, s) for i, s in enumerate(seen) if s.startswith("PRAGMA synchronous")]
        assert [s for i, s in levels if i < insert][-1] == "PRAGMA synchronous = FULL", seen
        assert not [s for i, s in levels if insert < i < commit], seen
        assert [s for i, s in levels if i > commit] == ["PRAGMA synchronous = NORMAL"], seen
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL for every other write
        seen = _statements_of(db, lambda: storage.inbox.claim_next(db))
        assert not [s for s in seen if s.startswith("PRAGMA synchronous")]
    finally:
        db.close()


def test_a_durable_write_cannot_join_an_open_transaction(db: sqlite_utils.Database) -> None:
    with storage.db.transaction(db):
        try:
            _enqueue(db, "Ev1")
        except storage.StorageError as exc:
            assert "inside an open transaction" in str(exc)
        else:
            raise AssertionError("an inbox insert joined a transaction it cannot make durable")
    assert storage.inbox.count_unfinished(db) == 0
