"""Training runs: one row per round, started by the bot and finished by the round (or by recovery)."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from storage.db import one, rows, transaction, utc_now
from storage.errors import InvalidValueError, UnknownRunError
from storage.records import TrainingRun
from storage.tasks import require_task

TRIGGERS = ("schedule", "threshold", "manual")


def _run_from_row(row: sqlite3.Row) -> TrainingRun:
    return TrainingRun(**{key: row[key] for key in row.keys()})


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


def get_run(db: sqlite_utils.Database, run_id: int) -> TrainingRun | None:
    row = one(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    return _run_from_row(row) if row is not None else None
