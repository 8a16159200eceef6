"""Notices to admins sent once per kind, task and channel (e.g. "the base cannot read #support").

A notice is marked sent only after it left, so one Slack could not deliver is tried again at the
next check; once marked, no restart or later check repeats it.
"""

from __future__ import annotations

import sqlite_utils

from storage.db import one, transaction, utc_now
from storage.errors import InvalidValueError


def notice_sent(db: sqlite_utils.Database, kind: str, task: str, channel: str) -> bool:
    """True once `mark_notice_sent` recorded this notice."""
    return (
        one(db, "SELECT 1 FROM admin_notices WHERE kind = ? AND task = ? AND channel = ?", (kind, task, channel))
        is not None
    )


def mark_notice_sent(db: sqlite_utils.Database, kind: str, task: str, channel: str, detail: str) -> bool:
    """Remember that the notice was sent; False if it already was (the first record is kept)."""
    if not kind or not task or not channel:
        raise InvalidValueError("a notice needs a kind, a task and a channel")
    with transaction(db) as conn:
        inserted = conn.execute(
            "INSERT OR IGNORE INTO admin_notices (kind, task, channel, detail, sent_at) VALUES (?, ?, ?, ?, ?)",
            (kind, task, channel, detail, utc_now()),
        ).rowcount
    return bool(inserted)
