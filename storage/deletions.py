"""The deletion list: sha256 hashes of texts that were erased, for caches of derived data.

The feature cache (camel) keys hidden states by a hash of the text; it never sees this
database, so the bot passes these hashes to `FeatureCache.forget` and `FeatureCache.compact`.
The list holds hashes only, never text. Its `id` only grows: `deletion_version` is the cheap
poll a running process uses to notice new entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import sqlite_utils

from storage.db import one, rows, rows_as_tuples, transaction, utc_now
from storage.transfer import text_sha256


def _erased_strings(texts: Iterable[str], lengths: list[int]) -> set[str]:
    """Each text and its first N characters for each N shorter than it (the bot predicts on a
    truncated text, so the cache also holds states of that prefix)."""
    found: set[str] = set()
    for text in texts:
        if text:
            found.add(text)
            found.update(text[:n] for n in lengths if n < len(text))
    return found


def _still_stored(db: sqlite_utils.Database, strings: set[str], lengths: list[int]) -> set[str]:
    """The strings some remaining message still has as its text or as its first N characters
    (their cached states are not erased data). Matched in SQL, one table scan per kind of match:
    the inbox workers run this on every edit and deletion."""
    if not strings:
        return set()
    held = {
        str(r[0])
        for r in rows_as_tuples(
            db,
            "SELECT DISTINCT text FROM messages WHERE text IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(strings)),),
        )
    }
    for n in lengths:
        of_length = sorted(s for s in strings - held if len(s) == n)
        if of_length:
            held.update(
                str(r[0])
                for r in rows_as_tuples(
                    db,
                    "SELECT DISTINCT substr(text, 1, ?) FROM messages "
                    "WHERE substr(text, 1, ?) IN (SELECT value FROM json_each(?))",
                    (n, n, json.dumps(of_length)),
                )
            )
    return held


def list_erased_texts(
    db: sqlite_utils.Database, texts: Iterable[str], prefix_lengths: Iterable[int] = (), *, reason: str
) -> list[str]:
    """Put on the deletion list the hashes of these texts (and of their first N characters, for
    each N in `prefix_lengths`) that no remaining message holds; returns the new hashes. Call it
    after the texts left the messages table, in the same transaction."""
    lengths = sorted({int(n) for n in prefix_lengths if int(n) > 0})
    erased = _erased_strings(texts, lengths)
    gone = erased - _still_stored(db, erased, lengths)
    return add_deleted_hashes(db, (text_sha256(s) for s in gone), reason=reason)


def add_deleted_hashes(db: sqlite_utils.Database, hashes: Iterable[str], *, reason: str) -> list[str]:
    """Add hashes to the deletion list (joins the caller's transaction); returns the new ones."""
    added: list[str] = []
    with transaction(db) as conn:
        now = utc_now()
        for digest in sorted(set(hashes)):
            cursor = conn.execute(
                "INSERT OR IGNORE INTO deleted_texts (text_sha256, deleted_at, reason) VALUES (?, ?, ?)",
                (digest, now, reason),
            )
            if cursor.rowcount:
                added.append(digest)
    return added


def deletion_version(db: sqlite_utils.Database) -> int:
    """Grows whenever a hash is added: poll it, and fetch only when it changed."""
    row = one(db, "SELECT COALESCE(MAX(id), 0) FROM deleted_texts")
    return int(row[0]) if row else 0


def deleted_text_hashes(db: sqlite_utils.Database, *, after: int = 0) -> tuple[list[str], int]:
    """Hashes added after version `after` (all of them by default), and the version they reach."""
    found = rows(db, "SELECT id, text_sha256 FROM deleted_texts WHERE id > ? ORDER BY id", (after,))
    if not found:
        return [], max(after, deletion_version(db))
    return [r["text_sha256"] for r in found], int(found[-1]["id"])
