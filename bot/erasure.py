"""Deleting data everywhere it lives: the database rows, the WAL, and the feature cache on disk.

Storage erases the rows (secure_delete), checkpoints the WAL and puts the erased texts' hashes
on its deletion list; the feature cache keys hidden states by a hash of the text, so this module
rewrites its shards without them (`FeatureCache.compact`, under the cache's file lock). A running
bot also drops them from memory when its reload poll sees the deletion list grow
(`bot.loop.LearningLoop.poll`). The CLI, `/camel forget-me` and the retention job all come here.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

import camel
import storage
from bot.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureReport:
    """What one erasure removed: database rows, and feature-cache entries (None: no cache on disk)."""

    deletion: storage.DeletionReport
    cache_entries_removed: int | None

    def summary(self) -> str:
        d = self.deletion
        cache = (
            "no feature cache on disk"
            if self.cache_entries_removed is None
            else f"{self.cache_entries_removed} feature-cache entries"
        )
        wal = (
            "WAL checkpointed" if d.checkpointed else "WAL checkpoint incomplete (a reader was active; retried nightly)"
        )
        return f"{d.messages} messages, {d.predictions} predictions, {d.corrections} corrections, {cache}; {wal}"


def prefix_lengths(settings: Settings) -> list[int]:
    """The bot predicts on the first max_predict_chars characters: the cache holds states of that prefix too."""
    return [settings.max_predict_chars]


def open_cache(settings: Settings) -> camel.FeatureCache | None:
    """The feature cache on disk, or None when there is none (nothing to compact)."""
    folder = Path(settings.feature_cache_dir)
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    base = camel.load_base(settings.model.base_model or camel.default_base_model_path())
    return camel.FeatureCache(base, str(folder))


def compact_cache(
    settings: Settings,
    db: Database,
    cache: camel.FeatureCache | None = None,
    *,
    max_bytes: int | None = None,
    keep_bases: set[str] | None = None,
) -> camel.CompactionReport | None:
    """Rewrite the cache's shards without every text on the deletion list (and within `max_bytes`;
    without the states of bases not in `keep_bases`, when given)."""
    cache = cache if cache is not None else open_cache(settings)
    if cache is None:
        return None
    hashes, _version = storage.deletions.deleted_text_hashes(db)
    return cache.compact(hashes, max_bytes=max_bytes, keep_bases=keep_bases)


def _finish(
    settings: Settings, db: Database, deletion: storage.DeletionReport, cache: camel.FeatureCache | None
) -> ErasureReport:
    removed: int | None = 0  # no new hash on the deletion list: no state to remove
    if deletion.text_hashes:
        compaction = compact_cache(settings, db, cache)
        removed = compaction.entries_removed if compaction is not None else None
    if not deletion.checkpointed:  # a reader held part of the WAL: once more, after the compaction
        deletion = dataclasses.replace(deletion, checkpointed=storage.db.checkpoint_wal(db))
    return ErasureReport(deletion, removed)


def erase_user(
    settings: Settings, db: Database, user: str, *, actor: str, cache: camel.FeatureCache | None = None
) -> ErasureReport:
    """Every message and correction of `user`, and their texts' states in the feature cache."""
    deletion = storage.privacy.erase_user(db, user, actor=actor, prefix_lengths=prefix_lengths(settings))
    return _finish(settings, db, deletion, cache)


def purge(
    settings: Settings, db: Database, *, older_than_days: float, actor: str, cache: camel.FeatureCache | None = None
) -> ErasureReport:
    """The text of unlabelled messages older than N days, and its states in the feature cache."""
    deletion = storage.privacy.purge_unlabelled(
        db, older_than_days=older_than_days, actor=actor, prefix_lengths=prefix_lengths(settings)
    )
    return _finish(settings, db, deletion, cache)


def user_data_counts(db: Database, user: str) -> dict[str, int]:
    """How many of `user`'s messages and corrections are stored (what `/camel my-data` shows)."""
    from storage.db import rows  # the shared connection's locked read

    messages = rows(db, "SELECT COUNT(*) FROM messages WHERE user = ?", (user,))[0][0]
    corrections = rows(db, "SELECT COUNT(*) FROM corrections WHERE user = ?", (user,))[0][0]
    return {"messages": int(messages), "corrections": int(corrections)}
