"""Slack event de-duplication and the audit log of admin actions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from storage.db import rows, to_iso, transaction
from storage.errors import InvalidValueError
from storage.records import AuditEntry


def claim_event(db: sqlite_utils.Database, event_id: str, *, ttl_s: float = 3600) -> bool:
    """True the first time `event_id` is seen within its ttl; Slack retries get False."""
    if not event_id:
        raise InvalidValueError("an event id must not be empty")
    now = datetime.now(timezone.utc)
    with transaction(db) as conn:
        # Expired ids are purged here rather than by a job: the table stays small on its own.
        conn.execute("DELETE FROM processed_events WHERE expires_at <= ?", (to_iso(now),))
        cursor = conn.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, claimed_at, expires_at) VALUES (?, ?, ?)",
            (event_id, to_iso(now), to_iso(now + timedelta(seconds=ttl_s))),
        )
    return cursor.rowcount == 1


def audit(db: sqlite_utils.Database, *, actor: str, action: str, detail: dict[str, Any] | None = None) -> None:
    if not actor or not action:
        raise InvalidValueError("an audit entry needs an actor and an action")
    with transaction(db) as conn:
        conn.execute(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
            (
                to_iso(datetime.now(timezone.utc)),
                actor,
                action,
                json.dumps(detail, default=str) if detail is not None else None,
            ),
        )


def list_audit(db: sqlite_utils.Database, limit: int = 50) -> list[AuditEntry]:
    found = rows(db, "SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,))
    return [
        AuditEntry(r["id"], r["at"], r["actor"], r["action"], json.loads(r["detail"]) if r["detail"] else None)
        for r in found
    ]
