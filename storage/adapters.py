"""Adapter versions and their lifecycle (training runs are in storage/runs.py).

At most one version per task is "active", and `tasks.active_version` always names it:
every function that changes statuses keeps both in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import sqlite_utils

from storage.db import one, rows, transaction, utc_now
from storage.errors import InvalidValueError, UnknownAdapterError
from storage.records import AdapterVersion, NewAdapterVersion
from storage.tasks import require_task

STATUSES = ("candidate", "active", "rejected", "retired")


def _adapter_from_row(row: sqlite3.Row) -> AdapterVersion:
    return AdapterVersion(
        task=row["task"],
        version=row["version"],
        path=row["path"],
        parent_version=row["parent_version"],
        run_id=row["run_id"],
        metrics=json.loads(row["metrics"]),
        status=row["status"],
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def next_version(db: sqlite_utils.Database, task: str) -> int:
    row = one(db, "SELECT COALESCE(MAX(version), 0) + 1 FROM adapters WHERE task = ?", (task,))
    return int(row[0]) if row else 1


def get_adapter(db: sqlite_utils.Database, task: str, version: int) -> AdapterVersion | None:
    row = one(db, "SELECT * FROM adapters WHERE task = ? AND version = ?", (task, version))
    return _adapter_from_row(row) if row else None


def _require_adapter(db: sqlite_utils.Database, task: str, version: int) -> AdapterVersion:
    found = get_adapter(db, task, version)
    if found is None:
        raise UnknownAdapterError(f"task {task!r} has no adapter version {version}")
    return found


def list_adapters(db: sqlite_utils.Database, task: str) -> list[AdapterVersion]:
    return [_adapter_from_row(r) for r in rows(db, "SELECT * FROM adapters WHERE task = ? ORDER BY version", (task,))]


def register_adapter(db: sqlite_utils.Database, new: NewAdapterVersion) -> AdapterVersion:
    task, version, status = new.task, new.version, new.status
    if status not in STATUSES:
        raise InvalidValueError(f"adapter status must be one of {', '.join(STATUSES)}, got {status!r}")
    with transaction(db) as conn:
        require_task(db, task)
        if get_adapter(db, task, version) is not None:
            raise InvalidValueError(f"task {task!r} already has an adapter version {version}")
        now = utc_now()
        conn.execute(
            """INSERT INTO adapters (task, version, path, parent_version, run_id, metrics, status,
                                     reason, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, 'candidate', ?, ?, ?)""",
            (
                task,
                version,
                str(new.path),
                new.parent_version,
                new.run_id,
                json.dumps(new.metrics),
                new.reason,
                now,
                now,
            ),
        )
        if status != "candidate":
            set_adapter_status(db, task, version, status, new.reason)
    return _require_adapter(db, task, version)


def set_adapter_status(db: sqlite_utils.Database, task: str, version: int, status: str, reason: str = "") -> None:
    if status not in STATUSES:
        raise InvalidValueError(f"adapter status must be one of {', '.join(STATUSES)}, got {status!r}")
    if status == "active":
        activate_adapter(db, task, version, reason=reason)
        return
    with transaction(db) as conn:
        _require_adapter(db, task, version)
        conn.execute(
            "UPDATE adapters SET status = ?, reason = ?, updated_at = ? WHERE task = ? AND version = ?",
            (status, reason, utc_now(), task, version),
        )
        conn.execute("UPDATE tasks SET active_version = NULL WHERE name = ? AND active_version = ?", (task, version))


def activate_adapter(db: sqlite_utils.Database, task: str, version: int, *, reason: str) -> AdapterVersion:
    """Make `version` the one serving `task`; the previously active version becomes retired."""
    with transaction(db) as conn:
        _require_adapter(db, task, version)
        now = utc_now()
        conn.execute(
            """UPDATE adapters SET status = 'retired', reason = ?, updated_at = ?
               WHERE task = ? AND status = 'active' AND version != ?""",
            (f"replaced by version {version}", now, task, version),
        )
        conn.execute(
            "UPDATE adapters SET status = 'active', reason = ?, updated_at = ? WHERE task = ? AND version = ?",
            (reason, now, task, version),
        )
        conn.execute("UPDATE tasks SET active_version = ?, updated_at = ? WHERE name = ?", (version, now, task))
    return _require_adapter(db, task, version)
