"""Privacy and retention: erase one user's data, purge old unlabelled text. Both audited."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from storage.db import to_iso, transaction
from storage.errors import InvalidValueError
from storage.events import audit


def delete_user_data(db: sqlite_utils.Database, user: str, *, actor: str) -> dict[str, Any]:
    """Delete the user's messages (with their predictions and corrections) and their corrections."""
    if not user:
        raise InvalidValueError("delete_user_data needs a user id")
    with transaction(db) as conn:
        own = "SELECT id FROM messages WHERE user = ?"
        counts = {
            "messages": conn.execute("SELECT COUNT(*) FROM messages WHERE user = ?", (user,)).fetchone()[0],
            "predictions": conn.execute(f"SELECT COUNT(*) FROM predictions WHERE message_id IN ({own})", (user,)).fetchone()[0],
            "corrections": conn.execute(
                f"SELECT COUNT(*) FROM corrections WHERE user = ? OR message_id IN ({own})", (user, user)
            ).fetchone()[0],
        }
        # Events still waiting in the inbox hold the user's text too.
        counts["inbox"] = conn.execute("DELETE FROM inbox WHERE user = ?", (user,)).rowcount
        conn.execute("DELETE FROM corrections WHERE user = ?", (user,))
        # ON DELETE CASCADE removes the predictions and others' corrections on these messages.
        conn.execute("DELETE FROM messages WHERE user = ?", (user,))
        audit(db, actor=actor, action="delete_user_data", detail={"user": user, **counts})
    return {"user": user, **counts}


def purge_unlabelled_text(db: sqlite_utils.Database, *, older_than_days: float, actor: str) -> int:
    """Blank the text of messages older than N days that nobody corrected; rows stay for counts."""
    if older_than_days < 0:
        raise InvalidValueError(f"older_than_days must not be negative, got {older_than_days}")
    cutoff = to_iso(datetime.now(timezone.utc) - timedelta(days=older_than_days))
    with transaction(db) as conn:
        purged = conn.execute(
            """UPDATE messages SET text = ''
               WHERE received_at < ? AND text != ''
                 AND NOT EXISTS (SELECT 1 FROM corrections AS c
                                 WHERE c.message_id = messages.id AND c.withdrawn_at IS NULL)""",
            (cutoff,),
        ).rowcount
        # The inbox keeps no text once an event is handled; an unhandled one past retention goes too.
        inbox = conn.execute("DELETE FROM inbox WHERE received_at < ? AND body != ''", (cutoff,)).rowcount
        audit(db, actor=actor, action="purge_unlabelled_text",
              detail={"older_than_days": older_than_days, "messages": purged, "inbox": inbox})
    return purged
