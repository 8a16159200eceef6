"""The one way a text leaves the disk: a message deleted or edited in Slack, a purge, a user
deleted by an admin, `/camel forget-me` and the nightly retention pass all come here.

A text lives in the message row, in the inbox rows of the events that carried it, in old frames
of the WAL, in the feature cache (hidden states keyed by the text's hash, and by the hash of the
prefix the bot predicted on) and in the memory of running processes. Every erasure has two steps:

1. storage takes the text out of its rows and out of the inbox's waiting events in one
   transaction, and puts its hashes on the deletion list (`storage.messages.forget_message`,
   `update_message_text`, `storage.privacy.erase_user`, `purge_unlabelled`,
   `storage.retention.apply_retention`);
2. `erase_derived` reaches what is kept by hash: the feature cache forgets the texts and rewrites
   only the shards holding their entries (`FeatureCache.erase`: serving goes on meanwhile), then
   the WAL is checkpointed and truncated, after the blanking commit, so no old frame keeps a text.

Step 2 runs at once in the process that erased (an inbox worker, the CLI, forget-me) and again on
a running bot's reload poll (`sweep`, every `reload_poll_s`): the poll catches an erasure made by
another process (the CLI while the bot runs: this process's memory and unflushed entries), a
shard a training child wrote with a text after it was erased, and a checkpoint a reader blocked.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from sqlite_utils import Database

import camel
import storage
from bot.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class HashStore(Protocol):
    """Something a running process keeps of texts (the interim refit's features by hash, the team's
    memory's near-duplicate index by message): `forget` drops what it holds of erased texts and
    messages, after storage's transaction committed."""

    def forget(self, text_hashes: Sequence[str]) -> int: ...


@dataclass(frozen=True)
class Derived:
    """What step 2 reached: the texts' hashes, the cache entries removed (None: no cache on disk)
    and the shards rewritten, and whether the WAL is truncated (False: a reader held it; the poll
    tries again)."""

    text_hashes: int
    cache_entries_removed: int | None
    cache_shards_rewritten: int
    checkpointed: bool


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
            "WAL checkpointed"
            if d.checkpointed
            else "WAL checkpoint incomplete (a reader was active; the running bot retries it)"
        )
        return f"{d.messages} messages, {d.predictions} predictions, {d.corrections} corrections, {cache}; {wal}"


def prefix_lengths(settings: Settings) -> list[int]:
    """The bot predicts on the first max_predict_chars characters: the cache holds states of that prefix too."""
    return [settings.max_predict_chars]


def open_cache(settings: Settings) -> camel.FeatureCache | None:
    """The feature cache on disk, or None when there is none (nothing to erase from)."""
    folder = Path(settings.feature_cache_dir)
    if not folder.is_dir() or not any(folder.iterdir()):
        return None
    base = camel.load_base(settings.model.base_model or camel.default_base_model_path())
    return camel.FeatureCache(base, str(folder))


Caches = camel.FeatureCache | Sequence[camel.FeatureCache] | None


def _cache_list(cache: Caches) -> list[camel.FeatureCache]:
    if cache is None:
        return []
    return [cache] if isinstance(cache, camel.FeatureCache) else list(cache)


def erase_derived(
    settings: Settings,
    db: Database,
    text_hashes: Sequence[str],
    cache: Caches = None,
    stores: Sequence[HashStore] = (),
) -> Derived:
    """Step 2 of every erasure (see the module's docstring): what is kept by the erased texts'
    hashes, then the WAL. Call it after storage's transaction committed. `cache`: this process's
    cache, or every base's (a bot serving tasks on two bases while they migrate holds one per
    base), else the one on disk is opened when there are hashes.

    Keys start with the text's digest whatever their base, so one cache's `erase` rewrites the
    shards of every base in the shared folder; each further cache forgets the texts in its memory."""
    removed: int | None = 0
    rewritten = 0
    caches = _cache_list(cache)
    if not caches and text_hashes:
        opened = open_cache(settings)
        caches = [opened] if opened is not None else []
        removed = None if opened is None else 0
    for each in caches:
        # With no new hash this still rewrites shards written since with an erased text's entry.
        report = each.erase(text_hashes)
        removed = (removed or 0) + report.entries_removed
        rewritten += report.shards_before
    # Other stores that keep a text, or data derived from it, by its hash erase it here, before
    # the checkpoint below (which must follow their last write).
    # Called even with no new hash: a store kept by message (the team's memory) must drop an erased
    # message whose text another message still holds (its hash is then not listed).
    for store in stores:
        store.forget(text_hashes)
    checkpointed = storage.db.checkpoint_wal(db)
    if not checkpointed:
        log.warning("WAL checkpoint after an erasure was incomplete (a reader was active); the next poll retries")
    return Derived(len(text_hashes), removed, rewritten, checkpointed)


def _erase(
    settings: Settings,
    db: Database,
    remove: Callable[[], T],
    cache: Caches,
    stores: Sequence[HashStore] = (),
) -> tuple[T, Derived]:
    """Step 1 (`remove`, storage's transaction), then step 2 for every hash it put on the list.

    The hashes are read back from the deletion list rather than from `remove`'s answer, so that
    every kind of erasure is finished the same way; a hash another thread added meanwhile is
    erased too, which is what it needs anyway."""
    seen = storage.deletions.deletion_version(db)
    result = remove()
    hashes, _version = storage.deletions.deleted_text_hashes(db, after=seen)
    return result, erase_derived(settings, db, hashes, cache, stores)


def _report(deletion: storage.DeletionReport, derived: Derived) -> ErasureReport:
    deletion = dataclasses.replace(deletion, checkpointed=derived.checkpointed)
    return ErasureReport(deletion, derived.cache_entries_removed)


def forget_message(
    settings: Settings,
    db: Database,
    *,
    workspace: str,
    channel: str,
    ts: str,
    actor: str,
    cache: Caches = None,
    stores: Sequence[HashStore] = (),
) -> tuple[dict[str, int] | None, Derived]:
    """A message deleted in Slack: its text leaves the row, the inbox, the cache and the WAL."""
    return _erase(
        settings,
        db,
        lambda: storage.messages.forget_message(
            db, workspace=workspace, channel=channel, ts=ts, actor=actor, prefix_lengths=prefix_lengths(settings)
        ),
        cache,
        stores,
    )


def replace_text(
    settings: Settings,
    db: Database,
    *,
    workspace: str,
    channel: str,
    ts: str,
    text: str,
    cache: Caches = None,
    stores: Sequence[HashStore] = (),
) -> tuple[storage.Message | None, Derived]:
    """A message edited in Slack: the new text is stored and the old one leaves like a deleted one."""
    return _erase(
        settings,
        db,
        lambda: storage.messages.update_message_text(
            db, workspace=workspace, channel=channel, ts=ts, text=text, prefix_lengths=prefix_lengths(settings)
        ),
        cache,
        stores,
    )


def drop_late_delivery(settings: Settings, db: Database, *, channel: str, ts: str, cache: Caches = None) -> Derived:
    """A message event delivered after its message was deleted in Slack (a retry, or concurrent
    workers): the message stays deleted, and the text this delivery carried leaves the inbox
    (its own row, finished as `erased`) and the WAL."""
    storage.inbox.scrub_message(db, channel=channel, ts=ts)
    return erase_derived(settings, db, [], cache)


def erase_user(settings: Settings, db: Database, user: str, *, actor: str, cache: Caches = None) -> ErasureReport:
    """Every message and correction of `user`, and everything kept of their texts."""
    deletion, derived = _erase(
        settings,
        db,
        lambda: storage.privacy.erase_user(db, user, actor=actor, prefix_lengths=prefix_lengths(settings)),
        cache,
    )
    return _report(deletion, derived)


def purge(
    settings: Settings, db: Database, *, older_than_days: float, actor: str, cache: camel.FeatureCache | None = None
) -> ErasureReport:
    """The text of unlabelled messages older than N days, and everything kept of it."""
    deletion, derived = _erase(
        settings,
        db,
        lambda: storage.privacy.purge_unlabelled(
            db, older_than_days=older_than_days, actor=actor, prefix_lengths=prefix_lengths(settings)
        ),
        cache,
    )
    return _report(deletion, derived)


def retention(
    settings: Settings, db: Database, cache: camel.FeatureCache | None = None
) -> tuple[storage.retention.RetentionReport, Derived]:
    """The nightly pass's storage part (old predictions, old unlabelled text), finished like every erasure."""
    policy = settings.retention
    return _erase(
        settings,
        db,
        lambda: storage.retention.apply_retention(
            db,
            prediction_days=policy.prediction_days,
            unlabelled_days=policy.unlabelled_text_days,
            run_log_days=policy.run_log_days,
            keep_versions=policy.keep_versions,
            actor="retention",
            prefix_lengths=prefix_lengths(settings),
        ),
        cache,
    )


@dataclass
class Sweeper:
    """A running bot's part of step 2, on each reload poll: hashes another process put on the
    deletion list since the last poll, shards written since with an erased text, and a WAL
    checkpoint that a reader blocked until it succeeds."""

    settings: Settings
    db: Database
    stores: Sequence[HashStore] = ()  # this process's other stores kept by hash
    version: int = 0  # the deletion list's version this process has erased up to
    checkpoint_due: bool = False

    def sweep(self, cache: Caches) -> Derived | None:
        """None when there was nothing to do. Without a cache yet nothing is read: once one is
        made, the next poll hands it the whole list. `cache`: every base's, when there are two."""
        caches = _cache_list(cache)
        if not caches:
            return None
        hashes, version = storage.deletions.deleted_text_hashes(self.db, after=self.version)
        if not hashes and not self.checkpoint_due and not any(each.holders() for each in caches):
            return None
        derived = erase_derived(self.settings, self.db, hashes, caches, self.stores)
        self.version = version
        self.checkpoint_due = not derived.checkpointed
        if derived.cache_entries_removed:
            log.info(
                "erased %d feature-cache entries of %d erased texts from %d shards",
                derived.cache_entries_removed,
                derived.text_hashes,
                derived.cache_shards_rewritten,
            )
        return derived


def compact_cache(
    settings: Settings,
    db: Database,
    cache: camel.FeatureCache | None = None,
    *,
    max_bytes: int | None = None,
    keep_bases: set[str] | None = None,
) -> camel.CompactionReport | None:
    """Rewrite the cache's shards without every text on the deletion list, within `max_bytes` on
    disk (and without the states of bases not in `keep_bases`, when given)."""
    cache = cache if cache is not None else open_cache(settings)
    if cache is None:
        return None
    hashes, _version = storage.deletions.deleted_text_hashes(db)
    return cache.compact(hashes, max_bytes=max_bytes, keep_bases=keep_bases)


def user_data_counts(db: Database, user: str) -> dict[str, int]:
    """How many of `user`'s messages and corrections are stored (what `/camel my-data` shows)."""
    from storage.db import rows  # the shared connection's locked read

    messages = rows(db, "SELECT COUNT(*) FROM messages WHERE user = ?", (user,))[0][0]
    corrections = rows(db, "SELECT COUNT(*) FROM corrections WHERE user = ?", (user,))[0][0]
    return {"messages": int(messages), "corrections": int(corrections)}
