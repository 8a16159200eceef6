"""Adapter versions (with their lifecycle) and training runs.

At most one version per task is "active", and `tasks.active_version` always names it:
every function that changes statuses keeps both in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import sqlite_utils

from storage.db import one, rows, transaction, utc_now
from storage.errors import InvalidValueError, UnknownAdapterError, UnknownRunError
from storage.records import AdapterVersion, TrainingRun
from storage.tasks import require_task

STATUSES = ("candidate", "active", "rejected", "retired")
TRIGGERS = ("schedule", "threshold", "manual")


def _adapter_from_row(row: sqlite3.Row) -> AdapterVersion:
    return AdapterVersion(
        task=row["task"], version=row["version"], path=row["path"], parent_version=row["parent_version"],
        run_id=row["run_id"], metrics=json.loads(row["metrics"]), status=row["status"],
        reason=row["reason"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _run_from_row(row: sqlite3.Row) -> TrainingRun:
    return TrainingRun(**{key: row[key] for key in row.keys()})


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


def register_adapter(
    db: sqlite_utils.Database,
    *,
    task: str,
    version: int,
    path: str,
    parent_version: int | None,
    run_id: int | None,
    metrics: dict[str, Any],
    status: str = "candidate",
    reason: str = "",
) -> AdapterVersion:
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
            (task, version, str(path), parent_version, run_id, json.dumps(metrics), reason, now, now),
        )
        if status != "candidate":
            set_adapter_status(db, task, version, status, reason)
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


def start_run(db: sqlite_utils.Database, task: str, trigger: str) -> int:
    if trigger not in TRIGGERS:
        raise InvalidValueError(f"run trigger must be one of {', '.join(TRIGGERS)}, got {trigger!r}")
    with transaction(db) as conn:
        require_task(db, task)
        cursor = conn.execute(
            "INSERT INTO runs (task, trigger, started_at) VALUES (?, ?, ?)", (task, trigger, utc_now())
        )
    return int(cursor.lastrowid or 0)


def finish_run(
    db: sqlite_utils.Database,
    run_id: int,
    *,
    outcome: str,
    n_train: int = 0,
    n_heldout: int = 0,
    n_new: int = 0,
    version: int | None = None,
    error: str | None = None,
) -> None:
    if not outcome:
        raise InvalidValueError("a finished run needs an outcome")
    with transaction(db) as conn:
        cursor = conn.execute(
            """UPDATE runs SET finished_at = ?, outcome = ?, n_train = ?, n_heldout = ?, n_new = ?,
                              version = ?, error = ? WHERE id = ?""",
            (utc_now(), outcome, n_train, n_heldout, n_new, version, error, run_id),
        )
        if cursor.rowcount == 0:
            raise UnknownRunError(f"no training run with id {run_id}")


def last_run(db: sqlite_utils.Database, task: str) -> TrainingRun | None:
    found = list_runs(db, task, limit=1)
    return found[0] if found else None


def list_runs(db: sqlite_utils.Database, task: str, limit: int = 20) -> list[TrainingRun]:
    found = rows(db, "SELECT * FROM runs WHERE task = ? ORDER BY id DESC LIMIT ?", (task, limit))
    return [_run_from_row(r) for r in found]
