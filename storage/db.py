"""Opening the store, transactions and the small helpers every storage module shares.

One `sqlite_utils.Database` is shared by the Bolt app's threads (check_same_thread=False),
so every statement on it runs under one re-entrant lock per connection: SQLite serialises a
connection's statements anyway, and the lock keeps one thread's transaction from swallowing
another thread's statements. Other processes (the training child) use their own connections;
WAL lets their reads run alongside our writes, and BEGIN IMMEDIATE plus busy_timeout makes
writers queue instead of failing with "database is locked".
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.errors import SchemaTooNewError, StorageError
from storage.migrations import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_MS = 10_000


def open_store(path: str | Path) -> sqlite_utils.Database:
    """Open (creating or migrating) the database at `path`, or ":memory:"."""
    target = str(path)
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {target}: {exc}") from exc
    try:
        found = _read_version(conn, target)
        if found > SCHEMA_VERSION:
            # Checked before any PRAGMA that writes (journal_mode), so the file stays untouched.
            raise SchemaTooNewError(
                f"{target} has schema version {found} but this camel-bot knows only up to "
                f"{SCHEMA_VERSION}; upgrade camel-bot instead of opening it with an older one"
            )
        _configure(conn)
    except BaseException:
        conn.close()
        raise
    db = sqlite_utils.Database(conn)
    _migrate(db, found)
    return db


def _read_version(conn: sqlite3.Connection, target: str) -> int:
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"cannot open database {target}: {exc}") from exc


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL is crash-safe in WAL mode (a killed process never corrupts or half-commits);
    # only a power cut can lose the last few commits, and it makes each commit ~10x cheaper.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def _migrate(db: sqlite_utils.Database, found: int) -> None:
    for version in range(found + 1, SCHEMA_VERSION + 1):
        with transaction(db) as conn:
            # Another process may have migrated while we waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                continue
            MIGRATIONS[version - 1](conn)
            conn.execute(f"PRAGMA user_version = {version}")


def schema_version(db: sqlite_utils.Database) -> int:
    with _lock(db):
        return int(db.conn.execute("PRAGMA user_version").fetchone()[0])


class ConnectionGuard:
    """The lock and transaction depth of one shared connection, kept beside the `Database`.

    Why a hand-made `transaction()` rather than sqlite-utils' `db.atomic()` (a savepoint):
    `atomic()` begins a deferred transaction and takes no lock. A connection shared by Bolt's
    listener threads needs a re-entrant lock, so that one thread's transaction never swallows
    another thread's statements, and `BEGIN IMMEDIATE`, so that a writer queues on SQLite's
    write lock (busy_timeout) instead of failing later with "database is locked" when its
    deferred read transaction tries to write while the training child commits.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.depth = 0  # nesting of transaction() on this connection; > 0 means one is open


_GUARDS: weakref.WeakKeyDictionary[sqlite_utils.Database, ConnectionGuard] = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


def guard_of(db: sqlite_utils.Database) -> ConnectionGuard:
    """The one guard of `db`, made on first use and dropped with the `Database`."""
    with _GUARDS_LOCK:
        guard = _GUARDS.get(db)
        if guard is None:
            guard = _GUARDS[db] = ConnectionGuard()
        return guard


def _lock(db: sqlite_utils.Database) -> threading.RLock:
    return guard_of(db).lock


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """One write transaction (BEGIN IMMEDIATE): all of it commits, or none of it.

    Nested use joins the outer transaction, so functions can call each other freely; see
    `ConnectionGuard` for why this is not sqlite-utils' `atomic()`.
    """
    guard = guard_of(db)
    with guard.lock:
        conn = db.conn
        if guard.depth > 0:
            guard.depth += 1
            try:
                yield conn
            finally:
                guard.depth -= 1
            return
        if conn.in_transaction:
            raise StorageError("a transaction opened outside storage.transaction() is still open")
        conn.execute("BEGIN IMMEDIATE")
        guard.depth = 1
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
        finally:
            guard.depth = 0


def rows(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    """Run a read and fetch every row while holding the connection's lock."""
    with _lock(db):
        cursor = db.conn.cursor()
        cursor.row_factory = sqlite3.Row
        return cursor.execute(sql, tuple(params)).fetchall()


def rows_as_tuples(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Like `rows` but plain tuples: several times cheaper for the 100k-row scans."""
    with _lock(db):
        return db.conn.execute(sql, tuple(params)).fetchall()


def one(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
    found = rows(db, sql, params)
    return found[0] if found else None


def to_iso(moment: datetime | str) -> str:
    """Normalise a datetime (naive means UTC) or ISO string to the stored UTC format."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError as exc:
            raise StorageError(f"not an ISO-8601 time: {moment!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def utc_now() -> str:
    return to_iso(datetime.now(timezone.utc))
