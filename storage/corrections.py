"""Corrections: the append-only trail of what users said a message's label is.

Rows are never updated except to stamp `withdrawn_at` (a removed reaction) and to follow a
label renamed or merged in Slack (`storage.labels`: the name first stored stays in
`original_label`), and never deleted except by a privacy request (`delete_user_data`).
"""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from storage.db import one, to_iso, transaction, utc_now
from storage.errors import InvalidValueError
from storage.messages import latest_prediction, require_message
from storage.tasks import require_label, require_task

SOURCES = ("reaction", "menu", "command", "import", "confirm", "reject", "review", "ask")


def _label_to_store(
    db: sqlite_utils.Database, message_id: int, task: str, label: str | None, source: str
) -> str | None:
    """A confirmation stores the label it confirms; a rejection may name the label it rejects."""
    if source == "confirm" and not label:
        prediction = latest_prediction(db, message_id, task)
        if prediction is None:
            raise InvalidValueError(f"message {message_id} has no {task!r} prediction to confirm")
        label = prediction.label
    if source == "reject":
        return label or None
    if not label:
        raise InvalidValueError(f"a {source!r} correction needs a label")
    return label


def add_correction(
    db: sqlite_utils.Database,
    *,
    message_id: int,
    task: str,
    label: str | None,
    source: str,
    user: str,
    is_admin: bool = False,
) -> int:
    """Append one correction; "confirm" with no label confirms the latest prediction."""
    if source not in SOURCES:
        raise InvalidValueError(f"correction source must be one of {', '.join(SOURCES)}, got {source!r}")
    if not user:
        raise InvalidValueError("a correction needs a user")
    with transaction(db) as conn:
        known = require_task(db, task)
        require_message(db, message_id)
        stored = _label_to_store(db, message_id, task, label, source)
        if stored is not None:
            require_label(known, stored)
        cursor = conn.execute(
            """INSERT INTO corrections (message_id, task, label, source, user, is_admin, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (message_id, task, stored, source, user, int(is_admin), utc_now()),
        )
    return int(cursor.lastrowid or 0)


def withdraw_correction(
    db: sqlite_utils.Database,
    *,
    message_id: int,
    task: str,
    user: str,
    source: str,
    label: str | None = None,
) -> int:
    """Mark a user's live corrections of this source (and label, if given) withdrawn."""
    sql = """UPDATE corrections SET withdrawn_at = ?
             WHERE message_id = ? AND task = ? AND user = ? AND source = ? AND withdrawn_at IS NULL"""
    params: list[object] = [utc_now(), message_id, task, user, source]
    if label is not None:
        sql += " AND label = ?"
        params.append(label)
    with transaction(db) as conn:
        return conn.execute(sql, params).rowcount


def count_user_corrections_since(db: sqlite_utils.Database, user: str, since: datetime | str) -> int:
    """How many corrections a user made since a time (withdrawn ones count: they still cost)."""
    row = one(
        db,
        "SELECT COUNT(*) FROM corrections WHERE user = ? AND created_at >= ?",
        (user, to_iso(since)),
    )
    return int(row[0]) if row else 0
