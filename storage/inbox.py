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


# The events that carry one message's text: the message itself, an app_mention of it (both by
# `event.ts`), its edits (`event.message.ts`, and `previous_message` for the text before) and its
# deletion (`deleted_ts`, with the deleted text in `previous_message`). A body that is not JSON
# cannot be read for its ts (and is dropped by its worker anyway).
_ABOUT_TS = """CASE WHEN json_valid(body) THEN
                 json_extract(body, '$.event.ts') = :ts OR json_extract(body, '$.event.message.ts') = :ts
                 OR json_extract(body, '$.event.previous_message.ts') = :ts
                 OR json_extract(body, '$.event.deleted_ts') = :ts
               ELSE 0 END"""
_WAITING_ABOUT = f"done_at IS NULL AND body != '' AND channel = :channel AND ({_ABOUT_TS})"


def scrub_message(db: sqlite_utils.Database, *, channel: str, ts: str, old_text: str | None = None) -> int:
    """Take a message's text out of the inbox's waiting events (joins the caller's transaction);
    returns how many bodies changed. Handled events hold no text already (`finish` blanks them).

    `old_text` None: the message was deleted, and every waiting event about it is finished as
    `erased` with its body blanked (the one being handled too: its worker finishes it again).
    Otherwise the message was edited from `old_text`: the text before each edit goes from the
    events about it, and an event that would bring `old_text` back is finished as `erased`.
    """
    now = utc_now()
    params = {"channel": channel, "ts": ts, "now": now, "old": old_text}
    finish_erased = "UPDATE inbox SET body = '', done_at = :now, outcome = 'erased', claimed_at = NULL WHERE "
    with transaction(db) as conn:
        if old_text is None:
            return conn.execute(finish_erased + _WAITING_ABOUT, params).rowcount
        brings_back = """(json_extract(body, '$.event.text') = :old
                          OR json_extract(body, '$.event.message.text') = :old)"""
        finished = conn.execute(f"{finish_erased}{_WAITING_ABOUT} AND {brings_back}", params).rowcount
        trimmed = conn.execute(
            f"""UPDATE inbox SET body = json_remove(body, '$.event.previous_message')
                WHERE {_WAITING_ABOUT} AND json_type(body, '$.event.previous_message') IS NOT NULL""",
            params,
        ).rowcount
    return finished + trimmed


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
