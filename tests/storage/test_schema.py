"""open_store: migrations, pragmas, the newer-schema refusal and transactions."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import storage
from storage.migrations import MIGRATIONS, SCHEMA_VERSION

TABLES = {
    "tasks",
    "messages",
    "predictions",
    "corrections",
    "adapters",
    "runs",
    "audit_log",
    "inbox",
}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_empty_file_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "camel.db"
    db = storage.open_store(path)
    assert storage.db.schema_version(db) == SCHEMA_VERSION == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    db.close()
    assert TABLES <= _tables(path)
    assert "processed_events" not in _tables(path)  # the inbox is the one de-duplication mark


def test_every_earlier_version_migrates_and_keeps_its_rows(tmp_path: Path) -> None:
    for start in range(SCHEMA_VERSION + 1):
        path = tmp_path / f"v{start}.db"
        conn = sqlite3.connect(path)
        for migration in MIGRATIONS[:start]:
            migration(conn)
        conn.execute(f"PRAGMA user_version = {start}")
        if start >= 1:
            conn.execute(
                "INSERT INTO messages (workspace, channel, ts, text, received_at) VALUES ('W', 'C', '1', 'kept', 'x')"
            )
        conn.commit()
        conn.close()
        db = storage.open_store(path)
        assert storage.db.schema_version(db) == SCHEMA_VERSION
        if start >= 1:
            assert storage.messages.find_message(db, workspace="W", channel="C", ts="1").text == "kept"
        db.close()


def test_reopening_the_latest_version_changes_nothing(db_path: Path) -> None:
    db = storage.open_store(db_path)
    assert [t.name for t in storage.tasks.list_tasks(db)] == ["support"]
    assert storage.db.schema_version(db) == SCHEMA_VERSION


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(storage.SchemaTooNewError) as caught:
        storage.open_store(path)
    message = str(caught.value)
    assert f"schema version {SCHEMA_VERSION + 5}" in message and f"up to {SCHEMA_VERSION}" in message
    assert "\n" not in message
    assert path.read_bytes() == before


def test_memory_store_works() -> None:
    db = storage.open_store(":memory:")
    assert storage.db.schema_version(db) == SCHEMA_VERSION
    assert storage.tasks.list_tasks(db) == []


def test_transaction_rolls_back_everything_on_error(db) -> None:
    with pytest.raises(RuntimeError):
        with storage.db.transaction(db) as conn:
            conn.execute("INSERT INTO audit_log (at, actor, action) VALUES ('t', 'U1', 'x')")
            storage.events.audit(db, actor="U1", action="nested")
            raise RuntimeError("boom")
    assert storage.events.list_audit(db) == []
    storage.events.audit(db, actor="U1", action="after")
    assert [e.action for e in storage.events.list_audit(db)] == ["after"]


def test_store_is_usable_from_another_thread(db) -> None:
    ids: list[int] = []
    worker = threading.Thread(
        target=lambda: ids.append(storage.messages.record_message(db, workspace="W", channel="C", ts="9", text="t"))
    )
    worker.start()
    worker.join()
    assert storage.messages.get_message(db, ids[0]).text == "t"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some text, long enough to be read as a header" * 20)
    with pytest.raises(storage.StorageError, match="cannot open database .*notes.db: file is not a database"):
        storage.open_store(path)
    with pytest.raises(storage.StorageError, match="cannot open database"):
        storage.open_store(tmp_path)
