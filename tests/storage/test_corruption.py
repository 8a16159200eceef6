"""A corrupted or unwritable database gives one line that says what to do, never a traceback."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import storage
from tests.storage.conftest import message


def _corrupt(path: Path, size: int = 8192) -> None:
    """8 KiB of random bytes in the middle of the file, as the operator's probe did."""
    rng = random.Random(11)
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2 // 4096 * 4096)
        handle.write(bytes(rng.getrandbits(8) for _ in range(size)))


@pytest.fixture
def corrupt_path(db_path: Path) -> Path:
    db = storage.open_store(db_path)
    # Enough messages that the middle of the file is message pages, not one of the many small
    # tables and indexes the schema has (with 300 the middle held the predictions indexes).
    for i in range(3000):
        message(db, f"ts-{i}", text=f"message number {i} " * 5)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert db_path.stat().st_size > 40_000
    _corrupt(db_path)
    return db_path


def _assert_restore_hint(error: storage.StorageError) -> None:
    text = str(error)
    assert "\n" not in text and "corrupt" in text and "backup" in text and "README" in text


def test_quick_check_is_ok_on_a_healthy_database(db_path: Path) -> None:
    db = storage.open_store(db_path)
    assert storage.db.quick_check(db) == []
    storage.db.require_healthy(db)


def test_quick_check_reports_eight_kib_of_random_bytes(corrupt_path: Path) -> None:
    try:
        db = storage.open_store(corrupt_path)
    except storage.CorruptDatabaseError as exc:  # the damage may already show when opening
        _assert_restore_hint(exc)
        return
    assert storage.db.quick_check(db) != []
    with pytest.raises(storage.CorruptDatabaseError) as caught:
        storage.db.require_healthy(db)
    _assert_restore_hint(caught.value)


def test_opening_reading_and_writing_corrupt_pages_raise_one_line(corrupt_path: Path) -> None:
    with pytest.raises(storage.CorruptDatabaseError) as caught:
        db = storage.open_store(corrupt_path)
        storage.resolution.resolve_labels(db, "support")
        storage.transfer.export_corrections(db, corrupt_path.with_name("trail.csv"))
        for i in range(300):
            storage.messages.get_message(db, i + 1)
            message(db, f"new-{i}", text="written into a corrupt file")
        storage.privacy.purge_unlabelled_text(db, older_than_days=0, actor="test")
    _assert_restore_hint(caught.value)


def test_a_file_that_is_not_a_database_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "camel.db"
    path.write_bytes(os.urandom(16384))
    with pytest.raises(storage.CorruptDatabaseError) as caught:
        storage.open_store(path)
    _assert_restore_hint(caught.value)


def test_a_read_only_database_gives_one_line_on_write(db_path: Path) -> None:
    db = storage.open_store(db_path)
    # query_only makes SQLite answer SQLITE_READONLY as a read-only mount would, also for root.
    db.execute("PRAGMA query_only = ON")
    with pytest.raises(storage.StorageError, match="cannot write") as caught:
        message(db, "ro", text="nowhere to go")
    assert "\n" not in str(caught.value) and not isinstance(caught.value, storage.CorruptDatabaseError)
