"""The audit log of admin actions.

(Slack events are de-duplicated by the durable inbox, `storage.inbox`: its unique event id is the mark.)"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from storage.db import rows, to_iso, transaction
from storage.errors import InvalidValueError
from storage.records import AuditEntry


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
