"""The deletion list: sha256 hashes of texts that were erased, for caches of derived data.

The feature cache (camel) keys hidden states by a hash of the text; it never sees this
database, so the bot passes these hashes to `FeatureCache.forget` and `FeatureCache.compact`.
The list holds hashes only, never text. Its `id` only grows: `deletion_version` is the cheap
poll a running process uses to notice new entries.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlite_utils

from storage.db import one, rows, transaction, utc_now
from storage.transfer import text_sha256


def hashes_of(texts: Iterable[str], prefix_lengths: Iterable[int] = ()) -> set[str]:
    """Hashes of each text and of its first N characters for each N (the bot predicts on a
    truncated text, so the cache also holds states of that prefix)."""
    lengths = sorted({int(n) for n in prefix_lengths if int(n) > 0})
    found: set[str] = set()
    for text in texts:
        if not text:
            continue
        found.add(text_sha256(text))
        found.update(text_sha256(text[:n]) for n in lengths if n < len(text))
    return found


def still_stored(db: sqlite_utils.Database, candidates: set[str], prefix_lengths: Iterable[int] = ()) -> set[str]:
    """The candidate hashes that some remaining message still has (its states are not erased data)."""
    if not candidates:
        return set()
    remaining: set[str] = set()
    lengths = list(prefix_lengths)
    for (text,) in (tuple(r) for r in rows(db, "SELECT DISTINCT text FROM messages WHERE text != ''")):
        remaining |= hashes_of([text], lengths) & candidates
    return remaining


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
