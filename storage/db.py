"""Opening the store, transactions and the small helpers every storage module shares.

One `sqlite_utils.Database` is shared by the Bolt app's threads (check_same_thread=False),
so every statement on it runs under one re-entrant lock per connection: SQLite serialises a
connection's statements anyway, and the lock keeps one thread's transaction from swallowing
another thread's statements. Other processes (the training child) use their own connections;
WAL lets their reads run alongside our writes, and BEGIN IMMEDIATE plus busy_timeout makes
writers queue instead of failing with "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.files import FILE_MODE, make_private_dirs
from storage.errors import (
    CorruptDatabaseError,
    DatabaseWriteError,
    InvalidValueError,
    SchemaTooNewError,
    StorageError,
)
from storage.migrations import MIGRATIONS, SCHEMA_VERSION

BUSY_TIMEOUT_MS = 10_000
# PRAGMA synchronous of every connection; `synchronous()` raises it for one write.
STORE_SYNCHRONOUS = "NORMAL"
SYNCHRONOUS_LEVELS = ("FULL", "NORMAL")
RESTORE_HINT = (
    "stop camel-bot and restore camel.db from your latest backup (README, Operations: Backup); "
    "keep the damaged file aside until the restore is checked"
)
# SQLite primary result codes (sqlite3.h): the ones that mean damage, and the ones that mean
# "cannot write here" (read-only file or folder, full disk, I/O error, permission, still locked).
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNWRITABLE_CODES = {
    3: "permission denied",
    5: "still locked by another process",
    8: "read-only",
    10: "I/O error",
    13: "disk full",
    14: "cannot open",
}


def open_store(path: str | Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open (creating or migrating) the database at `path`, or ":memory:".

    With create=False a missing file is a StorageError and nothing is created (no folder, no
    empty database), for commands that must not leave anything behind when they refuse."""
    target = str(path)
    if target != ":memory:" and not create and not Path(target).is_file():
        raise StorageError(f"no database at {target}")
    if target != ":memory:":
        _prepare_private_file(target)
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
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise database_error(exc, target, opening=True) from exc
    except BaseException:
        conn.close()
        raise
    db = sqlite_utils.Database(conn)
    guard_of(db).path = target
    _migrate(db, found)
    return db


def _prepare_private_file(target: str) -> None:
    """Create the folder (0700) and the file (0600) before SQLite does: SQLite gives the -wal
    and -shm files the database file's mode, so all three stay owner-only whatever the umask."""
    try:
        make_private_dirs(Path(target).parent)
        if not Path(target).exists():
            _create_private(target)
        # chmod, never open(): closing any descriptor of the database file would drop the POSIX
        # locks that other SQLite connections of this process hold on it (then another process
        # may checkpoint and delete the WAL under them).
        for path in (target, target + "-wal", target + "-shm"):
            if Path(path).is_file() and Path(path).stat().st_mode & 0o777 != FILE_MODE:
                os.chmod(path, FILE_MODE)
    except OSError as exc:
        raise DatabaseWriteError(f"cannot open database {target}: {exc.strerror or exc}") from exc


def _create_private(target: str) -> None:
    """Create the missing database file as 0600 (no SQLite connection can have it open yet)."""
    try:
        descriptor = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return  # created meanwhile by another process: the chmod after this fixes its mode
    os.fchmod(descriptor, FILE_MODE)
    os.close(descriptor)


def _read_version(conn: sqlite3.Connection, target: str) -> int:
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise database_error(exc, target, opening=True) from exc


def database_path(db: sqlite_utils.Database) -> str:
    """The file `db` was opened from (":memory:" for an in-memory store)."""
    return guard_of(db).path


def database_error(exc: sqlite3.DatabaseError, target: str, *, opening: bool = False) -> StorageError:
    """One-line StorageError for damage or an unwritable file; other errors are programming errors."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    detail = " ".join(str(exc).split())
    if opening:
        detail = f"cannot open database {target}: {detail}"
    if primary in _CORRUPT_CODES or (primary is None and type(exc) is sqlite3.DatabaseError):
        if opening:
            return CorruptDatabaseError(f"{detail} (corrupt, or not a camel-bot database): {RESTORE_HINT}")
        return CorruptDatabaseError(f"database {target} is corrupt ({detail}): {RESTORE_HINT}")
    if opening:
        return StorageError(detail)
    if primary in _UNWRITABLE_CODES:
        return DatabaseWriteError(f"cannot write database {target} ({_UNWRITABLE_CODES[primary]}: {detail})")
    return StorageError(f"database {target}: {detail}")


def _is_translated(exc: sqlite3.DatabaseError) -> bool:
    """IntegrityError and ProgrammingError are bugs or constraint checks: they stay as they are."""
    return not isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError))


def quick_check(db: sqlite_utils.Database) -> list[str]:
    """PRAGMA quick_check: [] when the file is sound, else SQLite's findings (at most 20)."""
    try:
        with _lock(db):
            found = [str(row[0]) for row in db.conn.execute("PRAGMA quick_check(20)").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [" ".join(str(exc).split())]
    return [] if found == ["ok"] else found


def quick_check_file(path: str | Path) -> list[str]:
    """PRAGMA quick_check on a read-only connection of its own: [] when the file is sound, else
    SQLite's findings. Nothing is written to the file whatever it holds (no migration, no journal
    mode, no checkpoint on close), so a command can check before it opens the store for writing.
    StorageError when the file cannot be opened even for reading."""
    target = Path(path).absolute()
    try:
        conn = sqlite3.connect(f"{target.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.DatabaseError as exc:
        raise database_error(exc, str(target), opening=True) from exc
    try:
        found = [str(row[0]) for row in conn.execute("PRAGMA quick_check(20)").fetchall()]
    except sqlite3.DatabaseError as exc:
        error = database_error(exc, str(target), opening=True)
        if isinstance(error, CorruptDatabaseError):
            return [" ".join(str(exc).split())]
        raise error from exc
    finally:
        conn.close()
    return [] if found == ["ok"] else found


def require_healthy_file(path: str | Path) -> None:
    """Raise CorruptDatabaseError (with how to restore) unless the file at `path` passes
    quick_check, read-only: commands that write call this before opening the store, so a damaged
    file is refused with not one byte written. A missing file passes (there is nothing to damage)."""
    if str(path) == ":memory:" or not Path(path).is_file():
        return
    _refuse_corrupt(path, quick_check_file(path))


def require_healthy(db: sqlite_utils.Database) -> None:
    """Raise CorruptDatabaseError (with how to restore) unless quick_check passes; writing
    commands call this first so they never add rows to a damaged file."""
    _refuse_corrupt(database_path(db), quick_check(db))


def _refuse_corrupt(path: str | Path, problems: list[str]) -> None:
    """CorruptDatabaseError naming the first of quick_check's findings and how to restore, if any."""
    if problems:
        raise CorruptDatabaseError(
            f"database {path} is corrupt ({problems[0]}{'; ...' if len(problems) > 1 else ''}): {RESTORE_HINT}"
        )


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL is crash-safe in WAL mode (a killed process never corrupts or half-commits);
    # only a power cut can lose the last few commits, and it makes each commit ~10x cheaper.
    # The inbox's insert, which Slack's 200 promises, runs FULL (see `synchronous`).
    conn.execute(f"PRAGMA synchronous = {STORE_SYNCHRONOUS}")
    conn.execute("PRAGMA foreign_keys = ON")
    # Deleted rows are overwritten with zeros, so erased text does not linger in free pages.
    conn.execute("PRAGMA secure_delete = ON")


@contextmanager
def synchronous(db: sqlite_utils.Database, level: str) -> Iterator[None]:
    """Run the enclosed write transaction with PRAGMA synchronous = `level` (FULL: the WAL is
    synced to disk at its commit, so it survives an OS crash or power loss, not only a killed
    process), then give the connection back at the store's NORMAL. Holds the connection's lock
    throughout, so no other thread's write commits under the borrowed level. SQLite refuses to
    change the level inside a transaction, so this cannot join one (StorageError)."""
    if level not in SYNCHRONOUS_LEVELS:
        raise InvalidValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, got {level!r}")
    guard = guard_of(db)
    with guard.lock:
        if level == STORE_SYNCHRONOUS:
            yield
            return
        if guard.depth or db.conn.in_transaction:
            raise StorageError(f"synchronous = {level} cannot be set inside an open transaction")
        db.conn.execute(f"PRAGMA synchronous = {level}")
        try:
            yield
        finally:
            db.conn.execute(f"PRAGMA synchronous = {STORE_SYNCHRONOUS}")


def checkpoint_wal(db: sqlite_utils.Database) -> bool:
    """Copy the WAL into the database and truncate it to zero bytes, so text that was deleted is
    not left in old WAL frames. False if a reader kept part of it (try again later), or when
    called inside a transaction (the outermost caller checkpoints after its commit)."""
    with _lock(db):
        if db.conn.in_transaction:
            return False
        try:
            busy, _log, _done = db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, database_path(db)) from exc
    return int(busy) == 0


def _migrate(db: sqlite_utils.Database, found: int) -> None:
    for version in range(found + 1, SCHEMA_VERSION + 1):
        with transaction(db) as conn:
            # Another process may have migrated while we waited for the write lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                continue
            MIGRATIONS[version - 1](conn)
            conn.execute(f"PRAGMA user_version = {version}")


def schema_version(db: sqlite_utils.Database) -> int:
    row = one(db, "PRAGMA user_version")
    return int(row[0]) if row else 0


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
        self.path = "the database"  # for error messages: which file failed


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
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, database_path(db)) from exc
        guard.depth = 1
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            _rollback(conn)
            if _is_translated(exc):
                raise database_error(exc, database_path(db)) from exc
            raise
        except BaseException:
            _rollback(conn)
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                _rollback(conn)
                raise database_error(exc, database_path(db)) from exc
        finally:
            guard.depth = 0


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass  # the original error says more; SQLite rolls back on close anyway


def rows(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    """Run a read and fetch every row while holding the connection's lock."""
    with _lock(db):
        cursor = db.conn.cursor()
        cursor.row_factory = sqlite3.Row
        try:
            return cursor.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            if _is_translated(exc):
                raise database_error(exc, database_path(db)) from exc
            raise


def rows_as_tuples(db: sqlite_utils.Database, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Like `rows` but plain tuples: several times cheaper for the 100k-row scans."""
    with _lock(db):
        try:
            return db.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            if _is_translated(exc):
                raise database_error(exc, database_path(db)) from exc
            raise


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
