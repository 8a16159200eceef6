"""Each thread of the bot reads on its own connection: a read does not queue behind another
thread's open write transaction (the inbox insert synced to disk before Slack's 200, a round's
records), sees every committed write, and a thread inside its own transaction reads its own
uncommitted writes."""

from __future__ import annotations

import threading
from pathlib import Path

import storage
from storage.db import rows_as_tuples, transaction, use_read_connections

COUNT = "SELECT COUNT(*) FROM messages"


def _record(db, ts: str) -> None:
    storage.messages.record_message(db, workspace="T1", channel="C1", ts=ts, text="hello")


def test_a_read_does_not_wait_for_another_threads_open_transaction(db_path: Path) -> None:
    db = storage.open_store(db_path)
    use_read_connections(db, True)
    _record(db, "1.0")
    writing, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with transaction(db) as conn:
            conn.execute(
                "INSERT INTO messages (workspace, channel, ts, text, received_at) "
                "VALUES ('T1', 'C1', '2.0', 'x', '2026')"
            )
            writing.set()
            release.wait(timeout=60)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert writing.wait(timeout=30)
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(rows_as_tuples(db, COUNT)[0][0]))
    reader.start()
    reader.join(timeout=30)  # with one shared connection this read waited for release
    finished = not reader.is_alive()
    release.set()
    writer.join(timeout=30)
    reader.join(timeout=30)
    assert finished and seen == [1]  # the committed row, not the one still uncommitted
    assert rows_as_tuples(db, COUNT)[0][0] == 2  # committed now, seen by the next read
    use_read_connections(db, False)
    db.close()


def test_inside_its_own_transaction_a_thread_reads_its_writes(db_path: Path) -> None:
    db = storage.open_store(db_path)
    use_read_connections(db, True)
    with transaction(db):
        _record(db, "1.0")
        assert rows_as_tuples(db, COUNT)[0][0] == 1
    use_read_connections(db, False)
    db.close()


def test_switching_off_closes_the_readers_and_closing_the_store_empties_the_wal(db_path: Path) -> None:
    db = storage.open_store(db_path)
    use_read_connections(db, True)
    threads = [threading.Thread(target=lambda: rows_as_tuples(db, COUNT)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    _record(db, "1.0")
    assert len(storage.db.guard_of(db).opened_readers) == 3
    use_read_connections(db, False)
    assert storage.db.guard_of(db).opened_readers == []
    assert rows_as_tuples(db, COUNT)[0][0] == 1  # back on the shared connection
    db.close()
    # The last connection to close checkpointed and removed the WAL, as without readers.
    assert not Path(str(db_path) + "-wal").exists()
