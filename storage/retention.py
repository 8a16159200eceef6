"""Retention: what the nightly job removes so the data folder stops growing without bound.

Old predictions go (they hold no text), old unlabelled text is erased (through the deletion
list, so the feature cache drops it too), run logs older than N days are listed for the bot to
delete, and adapter versions beyond the active one, its parent and the newest N are listed for
pruning. Labelled messages and their corrections are never removed here: learning uses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import sqlite_utils

from storage.adapters import get_adapter, list_adapters
from storage.db import checkpoint_wal, rows, to_iso, transaction, utc_now
from storage.errors import InvalidValueError, UnknownAdapterError
from storage.events import audit
from storage.privacy import check_days, purge_unlabelled
from storage.records import AdapterVersion, DeletionReport
from storage.tasks import list_tasks, require_task


@dataclass(frozen=True)
class RetentionReport:
    predictions: int
    erased: DeletionReport
    expired_runs: list[int] = field(default_factory=list)
    prunable: dict[str, list[AdapterVersion]] = field(default_factory=dict)


def _cutoff(name: str, days: float) -> str:
    return to_iso(datetime.now(timezone.utc) - timedelta(days=check_days(name, days)))


def delete_old_predictions(db: sqlite_utils.Database, *, older_than_days: float) -> int:
    """Delete predictions made more than N days ago; returns how many."""
    cutoff = _cutoff("older_than_days", older_than_days)
    with transaction(db) as conn:
        return int(conn.execute("DELETE FROM predictions WHERE created_at < ?", (cutoff,)).rowcount)


def expired_runs(db: sqlite_utils.Database, *, older_than_days: float) -> list[int]:
    """Ids of finished runs that ended more than N days ago: their runs/run-NNNNNN.* files may go.
    The run rows stay (adapter versions refer to them, and they are small)."""
    cutoff = _cutoff("older_than_days", older_than_days)
    found = rows(db, "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY id", (cutoff,))
    return [int(r["id"]) for r in found]


def pruned_versions(db: sqlite_utils.Database, task: str) -> list[int]:
    found = rows(db, "SELECT version FROM adapters WHERE task = ? AND pruned_at IS NOT NULL ORDER BY version", (task,))
    return [int(r["version"]) for r in found]


def adapter_versions_to_prune(db: sqlite_utils.Database, task: str, *, keep_newest: int) -> list[AdapterVersion]:
    """Versions whose folders may be removed: all but the active one, its parent, the newest
    `keep_newest` of the others, and candidates (a round may be deciding on one right now)."""
    if isinstance(keep_newest, bool) or not isinstance(keep_newest, int) or keep_newest < 0:
        raise InvalidValueError(f"keep_newest must be a whole number >= 0, got {keep_newest!r}")
    known = require_task(db, task)
    versions = list_adapters(db, task)
    protected: set[int] = set()
    if known.active_version is not None:
        protected.add(known.active_version)
        active = get_adapter(db, task, known.active_version)
        if active is not None and active.parent_version is not None:
            protected.add(active.parent_version)
    pruned = set(pruned_versions(db, task))
    others = [v for v in versions if v.version not in protected and v.status != "candidate" and v.version not in pruned]
    others.sort(key=lambda v: v.version, reverse=True)
    return sorted(others[keep_newest:], key=lambda v: v.version)


def mark_adapter_pruned(db: sqlite_utils.Database, task: str, version: int) -> None:
    """Record that a version's folder was removed; it is listed for pruning no more."""
    with transaction(db) as conn:
        cursor = conn.execute(
            "UPDATE adapters SET pruned_at = ? WHERE task = ? AND version = ? AND status != 'active'",
            (utc_now(), task, version),
        )
        if cursor.rowcount == 0:
            raise UnknownAdapterError(f"task {task!r} has no prunable adapter version {version}")


def apply_retention(
    db: sqlite_utils.Database,
    *,
    prediction_days: float,
    unlabelled_days: float,
    run_log_days: float,
    keep_versions: int,
    actor: str,
    prefix_lengths: Iterable[int] = (),
) -> RetentionReport:
    """One nightly pass over the policy; the bot then deletes `expired_runs` files, the folders of
    `prunable` versions (calling mark_adapter_pruned for each), and compacts the feature cache
    with `erased.text_hashes` and its byte cap."""
    for name, days in (
        ("prediction_days", prediction_days),
        ("unlabelled_days", unlabelled_days),
        ("run_log_days", run_log_days),
    ):
        check_days(name, days)
    with transaction(db):
        predictions = delete_old_predictions(db, older_than_days=prediction_days)
        erased = purge_unlabelled(db, older_than_days=unlabelled_days, actor=actor, prefix_lengths=prefix_lengths)
        runs = expired_runs(db, older_than_days=run_log_days)
        prunable = {t.name: adapter_versions_to_prune(db, t.name, keep_newest=keep_versions) for t in list_tasks(db)}
        audit(
            db,
            actor=actor,
            action="retention",
            detail={
                "predictions": predictions,
                "unlabelled_texts": erased.messages,
                "run_logs": len(runs),
                "prunable_versions": {task: [v.version for v in found] for task, found in prunable.items() if found},
            },
        )
    checkpointed = checkpoint_wal(db)
    erased = DeletionReport(
        messages=erased.messages,
        predictions=0,
        corrections=0,
        text_hashes=erased.text_hashes,
        checkpointed=checkpointed,
    )
    return RetentionReport(predictions=predictions, erased=erased, expired_runs=runs, prunable=prunable)
