"""Admin notices are remembered once per kind, task and channel, across a reopen of the store."""

from __future__ import annotations

from pathlib import Path

import pytest

import storage


def test_a_notice_is_marked_once_and_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "camel.db"
    db = storage.open_store(path)
    assert not storage.notices.notice_sent(db, "unreadable:abc", "support", "C1")
    assert storage.notices.mark_notice_sent(db, "unreadable:abc", "support", "C1", "74% of 50 characters")
    assert not storage.notices.mark_notice_sent(db, "unreadable:abc", "support", "C1", "again")
    db.close()
    db = storage.open_store(path)
    assert storage.notices.notice_sent(db, "unreadable:abc", "support", "C1")
    # Another channel, task or kind (a new base's tag) is a notice of its own.
    assert not storage.notices.notice_sent(db, "unreadable:abc", "support", "C2")
    assert not storage.notices.notice_sent(db, "unreadable:def", "support", "C1")
    with pytest.raises(storage.InvalidValueError):
        storage.notices.mark_notice_sent(db, "", "support", "C1", "")
    db.close()
