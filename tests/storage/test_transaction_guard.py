"""transaction() keeps its lock and depth in a guard of its own, not in attributes on the Database."""

from __future__ import annotations

import sqlite_utils

import storage
from storage.db import guard_of


def test_nested_transactions_share_one_guard_and_commit_once(db: sqlite_utils.Database) -> None:
    before = set(vars(db))
    guard = guard_of(db)
    with storage.db.transaction(db) as outer:
        assert guard.depth == 1 and outer.in_transaction
        with storage.db.transaction(db):
            assert guard.depth == 2
        assert guard.depth == 1 and outer.in_transaction  # the inner block did not commit
    assert guard.depth == 0 and not db.conn.in_transaction
    assert guard_of(db) is guard and set(vars(db)) == before  # nothing set on the Database


def test_a_failed_transaction_rolls_back_and_resets_the_depth(db: sqlite_utils.Database) -> None:
    try:
        with storage.db.transaction(db) as conn:
            conn.execute("INSERT INTO audit_log (at, actor, action, detail) VALUES ('x', 'a', 'b', '{}')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert guard_of(db).depth == 0 and storage.events.list_audit(db) == []
