"""Slack messages and the bot's predictions on them."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlite_utils

from storage.db import one, rows_as_tuples, to_iso, transaction, utc_now
from storage.deletions import list_erased_texts
from storage.errors import InvalidValueError, UnknownMessageError
from storage.events import audit
from storage.inbox import scrub_message
from storage.records import Message, NewPrediction, StoredPrediction
from storage.review import delete_review_scores
from storage.tasks import require_task


def _message_from_row(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        workspace=row["workspace"],
        channel=row["channel"],
        ts=row["ts"],
        thread_ts=row["thread_ts"],
        user=row["user"],
        text=row["text"],
        received_at=row["received_at"],
        deleted_at=row["deleted_at"],
    )


# SQLite stores text as UTF-8, which cannot hold a lone UTF-16 surrogate (JSON's "\ud83d" without
# its pair decodes to one); such characters become U+FFFD so the message is stored, not lost.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (the replacement character)."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _prediction_from_row(row: sqlite3.Row) -> StoredPrediction:
    return StoredPrediction(
        id=row["id"],
        message_id=row["message_id"],
        task=row["task"],
        adapter_version=row["adapter_version"],
        label=row["label"],
        confidence=float(row["confidence"]),
        top3=[(str(label), float(p)) for label, p in json.loads(row["top3"])],
        latency_ms=float(row["latency_ms"]),
        abstained=bool(row["abstained"]),
        created_at=row["created_at"],
        reply_channel=row["reply_channel"],
        reply_ts=row["reply_ts"],
    )


def record_message(
    db: sqlite_utils.Database,
    *,
    workspace: str,
    channel: str,
    ts: str,
    text: str,
    user: str | None = None,
    thread_ts: str | None = None,
    received_at: datetime | str | None = None,
) -> int:
    """Store a message once per (workspace, channel, ts); a retried delivery returns the same id."""
    if not workspace or not channel or not ts:
        raise InvalidValueError("a message needs a workspace, a channel and a ts")
    received = to_iso(received_at) if received_at is not None else utc_now()
    with transaction(db) as conn:
        conn.execute(
            """INSERT INTO messages (workspace, channel, ts, thread_ts, user, text, received_at)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (workspace, channel, ts) DO NOTHING""",
            (workspace, channel, ts, thread_ts, user, storable_text(text), received),
        )
        row = conn.execute(
            "SELECT id FROM messages WHERE workspace = ? AND channel = ? AND ts = ?",
            (workspace, channel, ts),
        ).fetchone()
    return int(row[0])


def get_message(db: sqlite_utils.Database, message_id: int) -> Message | None:
    row = one(db, "SELECT * FROM messages WHERE id = ?", (message_id,))
    return _message_from_row(row) if row else None


def require_message(db: sqlite_utils.Database, message_id: int) -> Message:
    message = get_message(db, message_id)
    if message is None:
        raise UnknownMessageError(f"no message with id {message_id}")
    return message


def find_message(db: sqlite_utils.Database, *, workspace: str, channel: str, ts: str) -> Message | None:
    row = one(
        db,
        "SELECT * FROM messages WHERE workspace = ? AND channel = ? AND ts = ?",
        (workspace, channel, ts),
    )
    return _message_from_row(row) if row else None


def record_prediction(db: sqlite_utils.Database, prediction: NewPrediction) -> StoredPrediction:
    """Store a prediction on a message; returns it as stored (its id and time), not yet replied to."""
    p = prediction
    top3 = [(str(name), float(score)) for name, score in p.top3]
    created_at = utc_now()
    with transaction(db) as conn:
        require_task(db, p.task)
        require_message(db, p.message_id)
        cursor = conn.execute(
            """INSERT INTO predictions (message_id, task, adapter_version, label, confidence, top3,
                                        latency_ms, abstained, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                p.message_id,
                p.task,
                p.adapter_version,
                p.label,
                float(p.confidence),
                json.dumps([list(pair) for pair in top3]),
                float(p.latency_ms),
                int(p.abstained),
                created_at,
            ),
        )
    return StoredPrediction(
        id=int(cursor.lastrowid or 0),
        message_id=p.message_id,
        task=p.task,
        adapter_version=p.adapter_version,
        label=p.label,
        confidence=float(p.confidence),
        top3=top3,
        latency_ms=float(p.latency_ms),
        abstained=bool(p.abstained),
        created_at=created_at,
        reply_channel=None,
        reply_ts=None,
    )


def set_prediction_reply(db: sqlite_utils.Database, prediction_id: int, *, channel: str, reply_ts: str) -> None:
    """Remember the bot's reply to a prediction, so reactions on the reply find it."""
    with transaction(db) as conn:
        cursor = conn.execute(
            "UPDATE predictions SET reply_channel = ?, reply_ts = ? WHERE id = ?",
            (channel, reply_ts, prediction_id),
        )
        if cursor.rowcount == 0:
            raise InvalidValueError(f"no prediction with id {prediction_id}")


def find_prediction_by_reply(db: sqlite_utils.Database, *, channel: str, reply_ts: str) -> StoredPrediction | None:
    row = one(
        db,
        "SELECT * FROM predictions WHERE reply_channel = ? AND reply_ts = ? ORDER BY id DESC LIMIT 1",
        (channel, reply_ts),
    )
    return _prediction_from_row(row) if row else None


def latest_prediction(db: sqlite_utils.Database, message_id: int, task: str) -> StoredPrediction | None:
    row = one(
        db,
        "SELECT * FROM predictions WHERE message_id = ? AND task = ? ORDER BY id DESC LIMIT 1",
        (message_id, task),
    )
    return _prediction_from_row(row) if row else None


def update_message_text(
    db: sqlite_utils.Database, *, workspace: str, channel: str, ts: str, text: str, prefix_lengths: Iterable[int] = ()
) -> Message | None:
    """Replace a stored message's text with its edited version; None if it is not stored.

    The old text is overwritten, not kept beside the new one: a person who edits a message to
    redact it must not leave the old text trainable. A deleted message stays deleted.
    """
    with transaction(db) as conn:
        before = find_message(db, workspace=workspace, channel=channel, ts=ts)
        conn.execute(
            """UPDATE messages SET text = ?
               WHERE workspace = ? AND channel = ? AND ts = ? AND deleted_at IS NULL""",
            (storable_text(text), workspace, channel, ts),
        )
        if before is not None and before.deleted_at is None and before.text != storable_text(text):
            list_erased_texts(db, [before.text], prefix_lengths, reason="message_edited")
            delete_review_scores(db, [before.id])  # the stored score and embedding describe the old text
            scrub_message(db, channel=channel, ts=ts, old_text=before.text)  # the edit event's previous_message
        return find_message(db, workspace=workspace, channel=channel, ts=ts)


def forget_message(
    db: sqlite_utils.Database, *, workspace: str, channel: str, ts: str, actor: str, prefix_lengths: Iterable[int] = ()
) -> dict[str, int] | None:
    """A message deleted in Slack: blank its text, delete its corrections, keep a tombstone row,
    and take the text out of the inbox's waiting events (`storage.inbox.scrub_message`).

    Its predictions stay (they hold no text) so the bot's reply is still known; the audit row
    records the counts, never the text. None when the message was never stored.
    """
    with transaction(db) as conn:
        found = find_message(db, workspace=workspace, channel=channel, ts=ts)
        if found is None:
            # The deletion was handled before the message itself (concurrent inbox workers): a
            # tombstone now makes the late message event find it deleted instead of storing its text.
            now = utc_now()
            conn.execute(
                """INSERT INTO messages (workspace, channel, ts, text, received_at, deleted_at)
                   VALUES (?, ?, ?, '', ?, ?) ON CONFLICT (workspace, channel, ts) DO NOTHING""",
                (workspace, channel, ts, now, now),
            )
            scrub_message(db, channel=channel, ts=ts)  # the message event, waiting: it is not handled now
            audit(db, actor=actor, action="message_deleted", detail={"channel": channel, "ts": ts, "stored": False})
            return None
        corrections = conn.execute("DELETE FROM corrections WHERE message_id = ?", (found.id,)).rowcount
        conn.execute("UPDATE messages SET text = '', deleted_at = ? WHERE id = ?", (utc_now(), found.id))
        list_erased_texts(db, [found.text], prefix_lengths, reason="message_deleted")
        delete_review_scores(db, [found.id])  # its embedding is of the text
        # The deletion event itself (previous_message) and any waiting event about the message.
        scrub_message(db, channel=channel, ts=ts)
        counts = {"message_id": found.id, "corrections": corrections}
        audit(db, actor=actor, action="message_deleted", detail={"channel": channel, "ts": ts, **counts})
    return counts


def recent_texts(db: sqlite_utils.Database, channels: Sequence[str], *, limit: int = 1000) -> list[str]:
    """The texts of the newest `limit` stored messages of these channels, newest first (unlabelled
    included: the zero-shot guesser centres on them)."""
    if not channels or limit <= 0:
        return []
    marks = ", ".join("?" for _ in channels)
    found = rows_as_tuples(
        db, f"SELECT text FROM messages WHERE channel IN ({marks}) ORDER BY id DESC LIMIT ?", (*channels, limit)
    )
    return [str(row[0]) for row in found]
