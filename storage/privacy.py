"""Privacy and retention: erase one user's data, purge old unlabelled text. Both audited.

Erasing reaches every place storage keeps a text: the rows go (secure_delete zeroes their
pages), the WAL is checkpointed and truncated afterwards, and the texts' hashes go on the
deletion list so the bot can make the feature cache drop their hidden states.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from storage.db import checkpoint_wal, to_iso, transaction
from storage.deletions import list_erased_texts
from storage.errors import InvalidValueError
from storage.events import audit
from storage.records import DeletionReport
from storage.review import delete_review_scores

MAX_DAYS = 36_500  # a century: beyond it a "days" argument is a typo, and datetime would overflow


def check_days(name: str, days: float) -> float:
    """A number of days: finite, not negative, at most MAX_DAYS (nan, inf, 1e10 are refused)."""
    try:
        value = float(days)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"{name} must be a number of days, got {days!r}") from exc
    if not math.isfinite(value) or not 0 <= value <= MAX_DAYS:
        raise InvalidValueError(f"{name} must be a number of days from 0 to {MAX_DAYS}, got {days!r}")
    return value


def erase_user(
    db: sqlite_utils.Database, user: str, *, actor: str, prefix_lengths: Iterable[int] = ()
) -> DeletionReport:
    """Delete the user's messages (with their predictions and others' corrections on them) and
    every correction they made; list the erased texts' hashes (and of their first N characters,
    for each N in `prefix_lengths`) for the feature cache; audit; checkpoint the WAL."""
    if not user:
        raise InvalidValueError("erase_user needs a user id")
    with transaction(db) as conn:
        own = "SELECT id FROM messages WHERE user = ?"
        texts = [r[0] for r in conn.execute("SELECT text FROM messages WHERE user = ?", (user,)).fetchall()]
        predictions = conn.execute(f"SELECT COUNT(*) FROM predictions WHERE message_id IN ({own})", (user,)).fetchone()[
            0
        ]
        corrections = conn.execute(
            f"SELECT COUNT(*) FROM corrections WHERE user = ? OR message_id IN ({own})", (user, user)
        ).fetchone()[0]
        # Events still waiting in the inbox hold the user's text too.
        inbox = conn.execute("DELETE FROM inbox WHERE user = ?", (user,)).rowcount
        conn.execute("DELETE FROM corrections WHERE user = ?", (user,))
        # ON DELETE CASCADE removes the predictions and others' corrections on these messages.
        conn.execute("DELETE FROM messages WHERE user = ?", (user,))
        hashes = list_erased_texts(db, texts, prefix_lengths, reason="delete_user")
        counts = {"messages": len(texts), "predictions": int(predictions), "corrections": int(corrections)}
        audit(
            db,
            actor=actor,
            action="delete_user_data",
            detail={"user": user, **counts, "inbox": inbox, "cache_keys": len(hashes)},
        )
    return DeletionReport(user=user, text_hashes=hashes, checkpointed=checkpoint_wal(db), inbox=inbox, **counts)


def delete_user_data(db: sqlite_utils.Database, user: str, *, actor: str) -> dict[str, Any]:
    """`erase_user` with the older dict answer: user, messages, predictions, corrections."""
    if not user:
        raise InvalidValueError("delete_user_data needs a user id")
    report = erase_user(db, user, actor=actor)
    return {
        "user": user,
        "messages": report.messages,
        "predictions": report.predictions,
        "corrections": report.corrections,
        "inbox": report.inbox,
    }


def purge_unlabelled(
    db: sqlite_utils.Database, *, older_than_days: float, actor: str, prefix_lengths: Iterable[int] = ()
) -> DeletionReport:
    """Blank the text of messages older than N days that nobody corrected (rows stay for counts),
    list the texts' hashes for the feature cache, audit, checkpoint the WAL."""
    days = check_days("older_than_days", older_than_days)
    cutoff = to_iso(datetime.now(timezone.utc) - timedelta(days=days))
    unlabelled = """received_at < ? AND text != ''
                    AND NOT EXISTS (SELECT 1 FROM corrections AS c
                                    WHERE c.message_id = messages.id AND c.withdrawn_at IS NULL)"""
    with transaction(db) as conn:
        found = conn.execute(f"SELECT id, text FROM messages WHERE {unlabelled}", (cutoff,)).fetchall()
        purged = conn.execute(f"UPDATE messages SET text = '' WHERE {unlabelled}", (cutoff,)).rowcount
        texts = [r[1] for r in found]
        # The row stays (for counts) but its review score and embedding go with the text.
        delete_review_scores(db, [r[0] for r in found])
        hashes = list_erased_texts(db, texts, prefix_lengths, reason="purge")
        # The inbox keeps no text once an event is handled; an unhandled one past retention goes too.
        inbox = conn.execute("DELETE FROM inbox WHERE received_at < ? AND body != ''", (cutoff,)).rowcount
        audit(
            db,
            actor=actor,
            action="purge_unlabelled_text",
            detail={"older_than_days": older_than_days, "messages": purged, "inbox": inbox},
        )
    return DeletionReport(
        messages=purged, predictions=0, corrections=0, text_hashes=hashes, checkpointed=checkpoint_wal(db), inbox=inbox
    )


def purge_unlabelled_text(db: sqlite_utils.Database, *, older_than_days: float, actor: str) -> int:
    """`purge_unlabelled`, answering only how many texts were erased."""
    return purge_unlabelled(db, older_than_days=older_than_days, actor=actor).messages
