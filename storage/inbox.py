"""The durable inbox of acknowledged Slack events.

An event is inserted here (one row, one statement, its commit synced to disk) before Slack gets
its HTTP 200, so an acknowledged event survives a crash, an OS crash or a power loss; the unique
`event_id` makes the row the de-duplication mark as well. Workers claim due rows, then finish
them (the text is blanked, the row stays as the mark until it expires) or put them back with a
not-before time. After a crash, `release_claims` hands rows that were being worked on back to
the queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlite_utils

from storage.db import one, rows, to_iso, transaction, utc_now
from storage.db import synchronous as synchronous_level
from storage.errors import InvalidValueError
from storage.records import InboxItem

DONE_ROWS_KEPT_S = 3600.0  # Slack retries an event for about an hour; the mark must outlive that


def enqueue_event(
    db: sqlite_utils.Database,
    *,
    event_id: str,
    kind: str,
    body: str,
    channel: str | None = None,
    user: str | None = None,
    synchronous: str = "FULL",
) -> bool:
    """Insert the event; False when its id is already in the inbox (a redelivery).

    Slack's 200 follows this insert and promises the event is kept, so by default its commit is
    synced to disk (FULL): it survives an OS crash or power loss, not only a killed process.
    "NORMAL" (the store's level) is for measuring what that costs."""
    if not event_id or not kind:
        raise InvalidValueError("an inbox event needs an event id and a kind")
    now = utc_now()
    with synchronous_level(db, synchronous), transaction(db) as conn:
        cursor = conn.execute(
            """INSERT INTO inbox (event_id, kind, channel, user, body, received_at, not_before)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING""",
            (event_id, kind, channel, user, body, now, now),
        )
    return cursor.rowcount == 1


def claim_next(db: sqlite_utils.Database) -> InboxItem | None:
    """Take the oldest due, unclaimed, unfinished event, or None when nothing is due."""
    now = utc_now()
    with transaction(db) as conn:
        row = conn.execute(
            """UPDATE inbox SET claimed_at = ?, attempts = attempts + 1
               WHERE id = (SELECT id FROM inbox WHERE done_at IS NULL AND claimed_at IS NULL
                           AND not_before <= ? ORDER BY not_before, id LIMIT 1)
               RETURNING id, event_id, kind, channel, body, received_at, attempts""",
            (now, now),
        ).fetchone()
    if row is None:
        return None
    return InboxItem(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]))


def finish(db: sqlite_utils.Database, item_id: int, outcome: str) -> None:
    """Mark the event handled; its text leaves the inbox, the row stays as the de-dup mark."""
    with transaction(db) as conn:
        conn.execute(
            "UPDATE inbox SET done_at = ?, outcome = ?, body = '', claimed_at = NULL WHERE id = ?",
            (utc_now(), outcome, item_id),
        )


def requeue(db: sqlite_utils.Database, item_id: int, *, delay_s: float) -> None:
    """Put the event back, due again in `delay_s` seconds (no worker waits for it)."""
    due = to_iso(datetime.now(timezone.utc) + timedelta(seconds=max(0.0, delay_s)))
    with transaction(db) as conn:
        conn.execute("UPDATE inbox SET claimed_at = NULL, not_before = ? WHERE id = ?", (due, item_id))


def release_claims(db: sqlite_utils.Database) -> int:
    """After a restart: events claimed by the dead process are due again. Returns how many."""
    with transaction(db) as conn:
        return conn.execute(
            "UPDATE inbox SET claimed_at = NULL WHERE done_at IS NULL AND claimed_at IS NOT NULL"
        ).rowcount


def purge_done(db: sqlite_utils.Database, *, older_than_s: float = DONE_ROWS_KEPT_S) -> int:
    """Delete finished rows whose de-dup mark has outlived Slack's retries."""
    cutoff = to_iso(datetime.now(timezone.utc) - timedelta(seconds=older_than_s))
    with transaction(db) as conn:
        return conn.execute("DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < ?", (cutoff,)).rowcount


def count_unfinished(db: sqlite_utils.Database) -> int:
    found = one(db, "SELECT COUNT(*) AS n FROM inbox WHERE done_at IS NULL")
    return int(found["n"]) if found is not None else 0


def outcomes(db: sqlite_utils.Database) -> dict[str, int]:
    """How many finished events ended each way (for tests, `doctor` and the load bench)."""
    found = rows(db, "SELECT outcome, COUNT(*) AS n FROM inbox WHERE done_at IS NOT NULL GROUP BY outcome")
    return {str(r["outcome"]): int(r["n"]) for r in found}


def probe_write(db: sqlite_utils.Database) -> None:
    """A small real write (a row in and out of the inbox); raises while the disk is full."""
    with transaction(db) as conn:
        conn.execute(
            "INSERT INTO inbox (event_id, kind, body, received_at, not_before, done_at) "
            "VALUES (?, 'probe', ?, ?, ?, ?)",
            ("__probe__", "x" * 4096, utc_now(), utc_now(), utc_now()),
        )
        conn.execute("DELETE FROM inbox WHERE event_id = '__probe__'")
