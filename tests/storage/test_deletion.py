"""Deletion reaches everything storage holds: secure_delete, a truncated WAL, and a deletion list
of text hashes (never text) that the feature cache honours."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils

import storage
from tests.storage.conftest import message, prediction

SECRET = "SECRET-MARKER-card 4111 lost in Lisbon"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_secure_delete_is_on(db_path: Path) -> None:
    db = storage.open_store(db_path)
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_a_deleted_users_text_is_gone_from_the_database_file_and_its_wal(db_path: Path) -> None:
    db = storage.open_store(db_path)
    for i in range(20):
        message(db, f"gone-{i}", text=f"{SECRET} #{i}", user="U_GONE")
        message(db, f"stay-{i}", text=f"kept message {i}", user="U_STAY")
    report = storage.privacy.erase_user(db, "U_GONE", actor="ADMIN")
    assert (report.messages, report.checkpointed) == (20, True)
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    for path in (db_path, wal):
        if path.exists():
            assert SECRET.encode() not in path.read_bytes()
    assert storage.messages.get_message(db, 2).text == "kept message 0"


def test_erase_user_reports_what_it_removed_and_lists_hashes_not_text(db: sqlite_utils.Database) -> None:
    theirs = message(db, "1", text="my card is lost " + "x" * 50, user="U_GONE")
    other = message(db, "2", text="shared words", user="U_STAY")
    message(db, "3", text="shared words", user="U_GONE")  # the same text stays stored for U_STAY
    prediction(db, theirs)
    storage.corrections.add_correction(
        db, message_id=other, task="support", label="top_up", source="menu", user="U_GONE"
    )
    report = storage.privacy.erase_user(db, "U_GONE", actor="ADMIN", prefix_lengths=[10, 1000])
    assert (report.messages, report.predictions, report.corrections) == (2, 1, 1)
    long_text = "my card is lost " + "x" * 50
    # The whole text and the 10-character prefix the bot predicted on; not "shared words" (still stored).
    assert set(report.text_hashes) == {_digest(long_text), _digest(long_text[:10])}
    assert report.cache_keys == 2
    hashes, version = storage.deletions.deleted_text_hashes(db)
    assert set(hashes) == set(report.text_hashes) and version == storage.deletions.deletion_version(db) > 0
    stored = db.execute("SELECT * FROM deleted_texts").fetchall()
    assert not any(long_text in str(row) or "my card" in str(row) for row in stored)
    assert storage.events.list_audit(db)[0].detail["messages"] == 2


def test_the_deletion_version_grows_and_readers_get_only_what_is_new(db: sqlite_utils.Database) -> None:
    assert storage.deletions.deletion_version(db) == 0 and storage.deletions.deleted_text_hashes(db) == ([], 0)
    message(db, "1", text="first", user="U1")
    storage.privacy.erase_user(db, "U1", actor="ADMIN")
    first = storage.deletions.deletion_version(db)
    message(db, "2", text="second", user="U2")
    storage.privacy.erase_user(db, "U2", actor="ADMIN")
    hashes, version = storage.deletions.deleted_text_hashes(db, after=first)
    assert hashes == [_digest("second")] and version > first


def test_purge_reports_and_lists_the_erased_texts(db: sqlite_utils.Database) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=40)
    storage.messages.record_message(db, workspace="W", channel="C1", ts="1", text="old and unlabelled", received_at=old)
    report = storage.privacy.purge_unlabelled(db, older_than_days=30, actor="ADMIN")
    assert report.messages == 1 and report.text_hashes == [_digest("old and unlabelled")]
    assert storage.deletions.deleted_text_hashes(db)[0] == [_digest("old and unlabelled")]


@pytest.mark.parametrize("days", [math.nan, math.inf, -1.0, 1e10, 99_999_999])
def test_purge_refuses_days_that_are_not_a_sensible_number(db: sqlite_utils.Database, days: float) -> None:
    with pytest.raises(storage.InvalidValueError, match="older_than_days"):
        storage.privacy.purge_unlabelled(db, older_than_days=days, actor="ADMIN")
    with pytest.raises(storage.InvalidValueError, match="older_than_days"):
        storage.privacy.purge_unlabelled_text(db, older_than_days=days, actor="ADMIN")


def test_storage_and_camel_hash_texts_the_same_way() -> None:
    import camel

    for text in ["hello", "ünïcødé 🐪", "lone surrogate \udc80"]:
        assert storage.transfer.text_sha256(text) == camel.text_digest(text)
