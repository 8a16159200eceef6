"""A training round's end as one transaction, and the start-up reconciliation of older records.

`finish_round` records the run's end, registers its version and (if promoted) activates it in
one transaction, so a kill at any moment leaves either all of it or none of it. Records written
by an older camel-bot, or a version folder published just before a kill, are made to agree by
`reconcile_task`, which the bot runs at start-up while it holds the task's training lock (an
unfinished run is only "interrupted" if no training child can still be working on it).

Runs are read and written with SQL here rather than through the run functions, so this module
does not depend on which module those live in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from storage.adapters import activate_adapter, get_adapter, register_adapter
from storage.db import one, rows, transaction, utc_now
from storage.errors import InvalidValueError, UnknownRunError
from storage.events import audit
from storage.records import AdapterVersion, NewAdapterVersion, RoundEnd, TrainingRun
from storage.tasks import require_task

OUTCOMES_WITH_VERSION = ("promoted", "rejected")
OUTCOMES_WITHOUT_VERSION = ("skipped", "failed")
INTERRUPTED = "interrupted: the training process died before finishing"
RECOVERY_ACTOR = "recovery"


@dataclass(frozen=True)
class Reconciliation:
    """What `reconcile_task` changed (one line each) and the version folders with no record."""

    task: str
    notes: list[str] = field(default_factory=list)
    orphan_versions: list[int] = field(default_factory=list)


def _get_run(db: sqlite_utils.Database, run_id: int) -> TrainingRun:
    row = one(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    if row is None:
        raise UnknownRunError(f"no training run with id {run_id}")
    return TrainingRun(**{key: row[key] for key in row.keys()})


def finish_round(db: sqlite_utils.Database, run_id: int, end: RoundEnd) -> TrainingRun:
    """Record a round's end; "promoted"/"rejected" also register `end.version` (and activate it if
    promoted) in the same transaction. "skipped"/"failed" take no version."""
    outcome, version = end.outcome, end.version
    if outcome in OUTCOMES_WITH_VERSION and (version is None or not end.path):
        raise InvalidValueError(f"a {outcome} round needs the version and the path it published")
    if outcome in OUTCOMES_WITHOUT_VERSION and version is not None:
        raise InvalidValueError(f"a {outcome} round has no version, got {version}")
    if outcome not in OUTCOMES_WITH_VERSION + OUTCOMES_WITHOUT_VERSION:
        raise InvalidValueError(f"round outcome must be one of promoted, rejected, skipped, failed, got {outcome!r}")
    with transaction(db) as conn:
        run = _get_run(db, run_id)
        if run.finished_at is not None:
            raise InvalidValueError(f"training run {run_id} already finished ({run.outcome})")
        if version is not None and end.path:
            register_adapter(
                db,
                NewAdapterVersion(
                    task=run.task,
                    version=version,
                    path=end.path,
                    parent_version=end.parent_version,
                    run_id=run_id,
                    metrics=end.metrics,
                    status="rejected" if outcome == "rejected" else "candidate",
                    reason=end.reason,
                ),
            )
            if outcome == "promoted":
                activate_adapter(db, run.task, version, reason=end.reason)
        conn.execute(
            """UPDATE runs SET finished_at = ?, outcome = ?, n_train = ?, n_heldout = ?, n_new = ?,
                              version = ?, error = ? WHERE id = ?""",
            (utc_now(), outcome, end.n_train, end.n_heldout, end.n_new, version, end.error, run_id),
        )
    return _get_run(db, run_id)


def reconcile_task(db: sqlite_utils.Database, task: str, *, version_folders: Iterable[int] = ()) -> Reconciliation:
    """Make runs and versions agree after a kill; call it at start-up under the task's training lock.

    - an unfinished run becomes "promoted"/"rejected" if its version was registered as such,
      otherwise "failed" (interrupted), and a candidate it left becomes "rejected";
    - a finished run whose version is active (or was, i.e. retired) is recorded as promoted with
      that version: the version did serve, and the records should say so;
    - `version_folders` (the version numbers found on disk) without a record are returned as
      `orphan_versions`: their round never committed, so the bot can remove those folders.
    Every change is audited in the same transaction.
    """
    notes: list[str] = []
    with transaction(db) as conn:
        require_task(db, task)
        versions_by_run: dict[int, list[Any]] = {}
        for row in rows(db, "SELECT * FROM adapters WHERE task = ? AND run_id IS NOT NULL ORDER BY version", (task,)):
            versions_by_run.setdefault(int(row["run_id"]), []).append(row)
        for row in rows(db, "SELECT * FROM runs WHERE task = ? ORDER BY id", (task,)):
            run_id, finished = int(row["id"]), row["finished_at"] is not None
            versions = versions_by_run.get(run_id, [])
            for candidate in [v for v in versions if v["status"] == "candidate"]:
                conn.execute(
                    "UPDATE adapters SET status = 'rejected', reason = ?, updated_at = ? "
                    "WHERE task = ? AND version = ?",
                    ("round interrupted before the gate finished", utc_now(), task, candidate["version"]),
                )
                notes.append(
                    f"version {candidate['version']} of {task} rejected: its round {run_id} never finished the gate"
                )
            served = [v for v in versions if v["status"] in ("active", "retired")]
            rejected = [v for v in versions if v["status"] in ("rejected", "candidate")]
            if served:
                outcome, version, error = "promoted", int(served[-1]["version"]), None
            elif rejected and (not finished or row["outcome"] != "failed"):
                outcome, version, error = "rejected", int(rejected[-1]["version"]), None
                if any(v["status"] == "candidate" for v in rejected):
                    outcome, error = "failed", INTERRUPTED
            elif not finished:
                outcome, version, error = "failed", None, INTERRUPTED
            else:
                continue
            if finished and (row["outcome"], row["version"]) == (outcome, version):
                continue
            conn.execute(
                "UPDATE runs SET finished_at = COALESCE(finished_at, ?), outcome = ?, version = ?, "
                "error = COALESCE(?, CASE WHEN ? = 'promoted' THEN NULL ELSE error END) WHERE id = ?",
                (utc_now(), outcome, version, error, outcome, run_id),
            )
            was = f"{row['outcome']}" if finished else "unfinished"
            notes.append(
                f"run {run_id} of {task} recorded as {outcome}"
                + (f" with version {version}" if version is not None else "")
                + f" (was {was})"
            )
        known = {int(r[0]) for r in rows(db, "SELECT version FROM adapters WHERE task = ?", (task,))}
        orphans = sorted({int(v) for v in version_folders} - known)
        notes += [f"version folder {v} of {task} has no record (its round never committed)" for v in orphans]
        if notes:
            audit(db, actor=RECOVERY_ACTOR, action="reconcile", detail={"task": task, "notes": notes})
    return Reconciliation(task=task, notes=notes, orphan_versions=orphans)


def record_fallback(
    db: sqlite_utils.Database,
    task: str,
    version: int | None,
    *,
    failures: Sequence[tuple[int, str]],
    other_base: Collection[int] = (),
    actor: str = RECOVERY_ACTOR,
) -> AdapterVersion | None:
    """Record what `camel.load_first_good` found at start-up or on reload, in one transaction:
    `version` (the one that loads) becomes active, each version that failed before it becomes
    "rejected" with the reason, and an "adapter_fallback" audit row lists them. With `version`
    None nothing is marked (when no version loads, the cause is usually shared, such as a
    missing base model, not every folder), but the audit row is still written. Versions in
    `other_base` failed only because they were trained on another base model: their folders are
    fine, so they are not rejected (an active one becomes retired like any replaced version)."""
    with transaction(db) as conn:
        require_task(db, task)
        if version is not None:
            for failed, reason in failures:
                if get_adapter(db, task, failed) is not None and failed != version and failed not in other_base:
                    conn.execute(
                        "UPDATE adapters SET status = 'rejected', reason = ?, updated_at = ? "
                        "WHERE task = ? AND version = ?",
                        (f"does not load: {reason}"[:500], utc_now(), task, failed),
                    )
            conn.execute(
                "UPDATE tasks SET active_version = NULL WHERE name = ? AND active_version IN "
                f"({','.join('?' * len(failures)) or 'NULL'})",
                (task, *[f for f, _ in failures]),
            )
            current = get_adapter(db, task, version)
            if current is None or current.status != "active":
                activate_adapter(db, task, version, reason="fallback: the active version does not load")
        audit(
            db,
            actor=actor,
            action="adapter_fallback",
            detail={
                "task": task,
                "version": version,
                "failed": {str(v): reason for v, reason in failures},
                **({"other_base": sorted(other_base)} if other_base else {}),
            },
        )
    return get_adapter(db, task, version) if version is not None else None
