"""Asking for labels: stored review scores, questions asked, coverage per version.

Review scores are computed by the bot in the background for the serving version after each
promotion and read here by `/camel review`, so the command is one indexed query. A score row
is deleted with its message (ON DELETE CASCADE) and when the message's text is purged; a
message with any live correction (labelled, disputed or rejected) is never a candidate.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from collections.abc import Iterable, Sequence
from typing import Any

import sqlite_utils

from storage.db import one, rows, to_iso, transaction, utc_now
from storage.errors import InvalidValueError
from storage.records import Message, ReviewCandidate
from storage.resolution import resolve_labels
from storage.tasks import require_task

# A message nobody has a live correction on, for this task.
_UNLABELLED = """NOT EXISTS (SELECT 1 FROM corrections AS c
                             WHERE c.message_id = m.id AND c.task = ? AND c.withdrawn_at IS NULL)"""


def unlabelled_messages(db: sqlite_utils.Database, task: str) -> list[Message]:
    """Messages of the task's channels with text and no live correction for the task (to score)."""
    channels = require_task(db, task).channels
    if not channels:
        return []
    marks = ", ".join("?" for _ in channels)
    found = rows(
        db,
        f"""SELECT m.* FROM messages AS m WHERE m.channel IN ({marks}) AND m.text != '' AND {_UNLABELLED}
            ORDER BY m.id""",
        (*channels, task),
    )
    fields = Message.__dataclass_fields__  # the row also has columns no record shows (text_key)
    return [Message(**{k: r[k] for k in r.keys() if k in fields}) for r in found]


def store_review_scores(
    db: sqlite_utils.Database,
    task: str,
    adapter_version: int,
    scored: Iterable[tuple[int, float, Sequence[tuple[str, float]], bytes]],
) -> int:
    """Replace the task's stored scores with (message_id, score, top3, embedding) rows of one
    version, in one transaction; rows of messages deleted meanwhile are skipped."""
    now = utc_now()
    count = 0
    with transaction(db) as conn:
        require_task(db, task)
        conn.execute("DELETE FROM review_scores WHERE task = ?", (task,))
        for message_id, score, top3, embedding in scored:
            cursor = conn.execute(
                """INSERT INTO review_scores (task, message_id, adapter_version, score, top3, embedding, computed_at)
                   SELECT ?, id, ?, ?, ?, ?, ? FROM messages WHERE id = ? AND text != ''""",
                (task, adapter_version, float(score), json.dumps([list(t) for t in top3]), embedding, now, message_id),
            )
            count += cursor.rowcount
    return count


def review_candidates(db: sqlite_utils.Database, task: str, channel: str, limit: int) -> list[ReviewCandidate]:
    """The best-scored unlabelled messages of ONE channel of the task, highest score first."""
    if limit < 0:
        raise InvalidValueError(f"limit must be >= 0, got {limit}")
    found = rows(
        db,
        f"""SELECT m.id, m.channel, m.ts, m.workspace, m.text, r.adapter_version, r.score, r.top3, r.embedding
            FROM review_scores AS r JOIN messages AS m ON m.id = r.message_id
            WHERE r.task = ? AND m.channel = ? AND m.text != '' AND {_UNLABELLED}
            ORDER BY r.score DESC, m.id LIMIT ?""",
        (task, channel, task, limit),
    )
    return [
        ReviewCandidate(
            message_id=r["id"],
            channel=r["channel"],
            ts=r["ts"],
            workspace=r["workspace"],
            text=r["text"],
            adapter_version=r["adapter_version"],
            score=r["score"],
            top3=[(str(label), float(p)) for label, p in json.loads(r["top3"])],
            embedding=r["embedding"],
        )
        for r in found
    ]


def delete_review_scores(db: sqlite_utils.Database, message_ids: Iterable[int]) -> int:
    """Drop the stored scores (and embeddings) of these messages, for deletion paths that blank or
    change a message's text instead of deleting its row (deleting the row removes them by cascade).
    Joins the caller's transaction."""
    with transaction(db) as conn:
        return conn.executemany(
            "DELETE FROM review_scores WHERE message_id = ?", [(int(i),) for i in message_ids]
        ).rowcount


def review_scores_version(db: sqlite_utils.Database, task: str) -> int | None:
    """The adapter version the task's stored scores were computed with (None = none stored)."""
    row = one(db, "SELECT MAX(adapter_version) FROM review_scores WHERE task = ?", (task,))
    return int(row[0]) if row and row[0] is not None else None


def count_review_scores(db: sqlite_utils.Database, task: str | None = None) -> int:
    row = one(db, "SELECT COUNT(*) FROM review_scores" + (" WHERE task = ?" if task else ""), (task,) if task else ())
    return int(row[0]) if row else 0


def record_ask(db: sqlite_utils.Database, *, task: str, message_id: int, channel: str, limit_per_day: int) -> bool:
    """Note that the bot asks about a message in its thread; False (nothing noted) if it already
    asked about it, or already asked `limit_per_day` times in this channel in the last 24 hours."""
    since = to_iso(datetime.now(timezone.utc) - timedelta(days=1))
    with transaction(db) as conn:
        if conn.execute("SELECT 1 FROM asked WHERE task = ? AND message_id = ?", (task, message_id)).fetchone():
            return False
        asked = conn.execute(
            "SELECT COUNT(*) FROM asked WHERE channel = ? AND asked_at >= ?", (channel, since)
        ).fetchone()[0]
        if asked >= limit_per_day:
            return False
        conn.execute(
            "INSERT INTO asked (task, message_id, channel, asked_at) VALUES (?, ?, ?, ?)",
            (task, message_id, channel, utc_now()),
        )
    return True


def ask_candidates(db: sqlite_utils.Database, task: str, since: datetime | str) -> list[dict[str, Any]]:
    """Messages of the task received since `since` that the bot could ask about: with text, a
    prediction of the task, no live correction, never asked. Each: message_id, channel, ts,
    thread_ts, top3 (of the latest prediction)."""
    found = rows(
        db,
        f"""SELECT m.id, m.channel, m.ts, m.thread_ts, p.top3 FROM messages AS m
            JOIN predictions AS p ON p.id = (SELECT MAX(id) FROM predictions WHERE message_id = m.id AND task = ?)
            WHERE m.received_at >= ? AND m.text != '' AND {_UNLABELLED}
              AND NOT EXISTS (SELECT 1 FROM asked AS a WHERE a.task = ? AND a.message_id = m.id)
            ORDER BY m.id""",
        (task, to_iso(since), task, task),
    )
    return [
        {
            "message_id": r["id"],
            "channel": r["channel"],
            "ts": r["ts"],
            "thread_ts": r["thread_ts"],
            "top3": [(str(label), float(p)) for label, p in json.loads(r["top3"])],
        }
        for r in found
    ]


def asked_since(db: sqlite_utils.Database, channel: str, since: str) -> int:
    row = one(db, "SELECT COUNT(*) FROM asked WHERE channel = ? AND asked_at >= ?", (channel, since))
    return int(row[0]) if row else 0


def coverage_by_version(db: sqlite_utils.Database, task: str) -> list[dict[str, Any]]:
    """Per adapter version: predictions made, share answered (not abstained), and precision of the
    answered ones on messages that now have a resolved label (latest prediction per message)."""
    resolved = {item.message_id: item.label for item in resolve_labels(db, task).labelled}
    found = rows(
        db,
        """SELECT adapter_version, message_id, label, abstained FROM predictions
           WHERE task = ? AND adapter_version IS NOT NULL ORDER BY id""",
        (task,),
    )
    per_version: dict[int, dict[str, Any]] = {}
    latest: dict[tuple[int, int], tuple[str, bool]] = {}
    for r in found:
        stats = per_version.setdefault(int(r["adapter_version"]), {"predictions": 0, "answered": 0})
        stats["predictions"] += 1
        stats["answered"] += 0 if r["abstained"] else 1
        latest[(int(r["adapter_version"]), int(r["message_id"]))] = (r["label"], bool(r["abstained"]))
    judged: dict[int, list[bool]] = {}
    for (version, message_id), (label, abstained) in latest.items():
        if not abstained and message_id in resolved:
            judged.setdefault(version, []).append(label == resolved[message_id])
    result = []
    for version in sorted(per_version):
        stats = per_version[version]
        hits = judged.get(version, [])
        result.append(
            {
                "version": version,
                "predictions": stats["predictions"],
                "answered": stats["answered"],
                "coverage": stats["answered"] / stats["predictions"] if stats["predictions"] else None,
                "judged": len(hits),
                "precision": sum(hits) / len(hits) if hits else None,
            }
        )
    return result


def confused_pairs_since(db: sqlite_utils.Database, task: str, since: datetime | str) -> list[dict[str, Any]]:
    """[{"true", "predicted", "count"}] of predictions made since `since` that people labelled
    otherwise (the latest prediction per message), most frequent first."""
    resolved = {item.message_id: item.label for item in resolve_labels(db, task).labelled}
    latest: dict[int, str] = {}
    for r in rows(
        db,
        """SELECT message_id, label FROM predictions
           WHERE task = ? AND created_at >= ? AND source != 'memory' ORDER BY id""",
        (task, to_iso(since)),
    ):
        latest[int(r["message_id"])] = r["label"]
    counts: dict[tuple[str, str], int] = {}
    for message_id, predicted in latest.items():
        true = resolved.get(message_id)
        if true is not None and true != predicted:
            counts[(true, predicted)] = counts.get((true, predicted), 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"true": t, "predicted": p, "count": n} for (t, p), n in ordered]


def disputed_in_channel(db: sqlite_utils.Database, task: str, channel: str) -> list[dict[str, Any]]:
    """The task's disputed messages posted in ONE channel: message_id, ts, text, votes, rejections."""
    disputes = resolve_labels(db, task).disputed
    if not disputes:
        return []
    marks = ", ".join("?" for _ in disputes)
    where = {
        int(r["id"]): r["ts"]
        for r in rows(
            db,
            f"SELECT id, ts FROM messages WHERE channel = ? AND id IN ({marks})",
            (channel, *[d.message_id for d in disputes]),
        )
    }
    return [
        {
            "message_id": d.message_id,
            "ts": where[d.message_id],
            "text": d.text,
            "votes": d.votes,
            "rejections": d.rejections,
        }
        for d in disputes
        if d.message_id in where
    ]
