"""Tasks: a named classification problem with its labels, emoji map and channels.

Labels are added here; renaming, merging and retiring them goes through `storage.labels`, whose
history maps every old name to today's. `upsert_task` (the settings file at every start) follows
that history: a label renamed, merged or retired in Slack is not added back under its old name.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import sqlite_utils

from storage.db import one, rows, transaction, utc_now
from storage.errors import ChannelBoundError, InvalidValueError, UnknownLabelError, UnknownTaskError
from storage.records import Task, TaskSpec

KINDS = ("intent", "sentiment", "other")
# Emoji-map targets that are not labels: they confirm or reject the bot's prediction.
EMOJI_ACTIONS = ("__confirm__", "__reject__")
# A label's description is one line that the base model embeds with the label's name.
MAX_DESCRIPTION_CHARS = 200


def _task_from_row(row: sqlite3.Row) -> Task:
    return Task(
        name=row["name"],
        kind=row["kind"],
        labels=json.loads(row["labels"]),
        emoji_map=json.loads(row["emoji_map"]),
        channels=json.loads(row["channels"]),
        abstain_threshold=float(row["abstain_threshold"]),
        quiet=bool(row["quiet"]),
        active_version=row["active_version"],
        target_precision=float(row["target_precision"]),
        out_of_scope_label=row["out_of_scope_label"],
        descriptions=json.loads(row["descriptions"]),
        new_labels=row["new_labels"],
    )


def get_task(db: sqlite_utils.Database, name: str) -> Task | None:
    row = one(db, "SELECT * FROM tasks WHERE name = ?", (name,))
    return _task_from_row(row) if row else None


def require_task(db: sqlite_utils.Database, name: str) -> Task:
    task = get_task(db, name)
    if task is None:
        known = ", ".join(t.name for t in list_tasks(db)) or "none"
        raise UnknownTaskError(f"unknown task {name!r} (known tasks: {known})")
    return task


def list_tasks(db: sqlite_utils.Database) -> list[Task]:
    return [_task_from_row(r) for r in rows(db, "SELECT * FROM tasks ORDER BY name")]


def task_for_channel(db: sqlite_utils.Database, channel: str) -> Task | None:
    return next((t for t in list_tasks(db) if channel in t.channels), None)


def _clean_labels(labels: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise InvalidValueError(f"labels must be non-empty strings, got {label!r}")
        if label.strip() in EMOJI_ACTIONS:
            raise InvalidValueError(f"{label!r} is reserved and cannot be a label")
        if label.strip() not in cleaned:
            cleaned.append(label.strip())
    return cleaned


def clean_description(label: str, text: str) -> str:
    """One line, whitespace collapsed; empty or too long is an InvalidValueError."""
    line = " ".join(str(text).split())
    if not line:
        raise InvalidValueError(f"the description of {label!r} is empty")
    if len(line) > MAX_DESCRIPTION_CHARS:
        raise InvalidValueError(
            f"the description of {label!r} has {len(line)} characters; at most {MAX_DESCRIPTION_CHARS} fit on one line"
        )
    return line


def _clean_descriptions(descriptions: dict[str, str], labels: list[str]) -> dict[str, str]:
    cleaned = {}
    for label, text in descriptions.items():
        if label not in labels:
            raise UnknownLabelError(f"a description is given for {label!r}, which is not a label of the task")
        cleaned[label] = clean_description(label, text)
    return cleaned


def _check_emoji_map(emoji_map: dict[str, str], labels: list[str]) -> None:
    for emoji, target in emoji_map.items():
        if target not in labels and target not in EMOJI_ACTIONS:
            raise UnknownLabelError(f"emoji :{emoji}: maps to {target!r}, which is not a label of the task")


def _check_channels_free(db: sqlite_utils.Database, name: str, channels: list[str]) -> None:
    for other in list_tasks(db):
        taken = set(channels) & set(other.channels)
        if other.name != name and taken:
            raise ChannelBoundError(f"channel {sorted(taken)[0]} is already bound to task {other.name!r}")


def upsert_task(db: sqlite_utils.Database, spec: TaskSpec) -> Task:
    """Create the task or update it as `spec` says (see `TaskSpec` for what None keeps).
    An out-of-scope label that is not yet a label of the task is added to its labels."""
    name, kind = spec.name, spec.kind
    if not name or not name.strip():
        raise InvalidValueError("a task needs a non-empty name")
    if kind not in KINDS:
        raise InvalidValueError(f"task kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 0.0 <= spec.abstain_threshold <= 1.0:
        raise InvalidValueError(f"abstain_threshold must be between 0 and 1, got {spec.abstain_threshold}")
    _check_target_precision(spec.target_precision)
    with transaction(db) as conn:
        existing = get_task(db, name)
        spec = _followed(conn, spec)
        out_of_scope = (
            spec.out_of_scope_label
            if spec.out_of_scope_label is not None
            else (existing.out_of_scope_label if existing else None)
        )
        merged = _clean_labels(
            [*(existing.labels if existing else []), *spec.labels, *([out_of_scope] if out_of_scope else [])]
        )
        if not merged:
            raise InvalidValueError(f"task {name!r} needs at least one label")
        emoji = dict(spec.emoji_map) if spec.emoji_map is not None else (existing.emoji_map if existing else {})
        bound = (
            list(dict.fromkeys(spec.channels)) if spec.channels is not None else (existing.channels if existing else [])
        )
        described = (
            _clean_descriptions(spec.descriptions, merged)
            if spec.descriptions is not None
            else (existing.descriptions if existing else {})
        )
        _check_emoji_map(emoji, merged)
        _check_channels_free(db, name, bound)
        _write_task(
            conn,
            Task(
                name,
                kind,
                merged,
                emoji,
                bound,
                float(spec.abstain_threshold),
                spec.quiet,
                None,
                float(spec.target_precision),
                out_of_scope.strip() if out_of_scope else None,
                described,
            ),
        )
    return require_task(db, name)


def changed_in_slack(db: sqlite_utils.Database, task: str) -> dict[str, str | None]:
    """Names renamed or merged away in Slack -> today's name, and retired names -> None."""
    return _changed_names(db.conn, task)


def _changed_names(conn: sqlite3.Connection, task: str) -> dict[str, str | None]:
    moves = conn.execute(
        "SELECT old_name, new_name FROM label_events WHERE task = ? AND kind IN ('rename', 'merge') ORDER BY id",
        (task,),
    ).fetchall()
    result: dict[str, str | None] = {}
    for old, new in moves:
        result = {name: (new if target == old else target) for name, target in result.items()}
        result[old] = new
    for (label,) in conn.execute("SELECT label FROM retired_labels WHERE task = ?", (task,)).fetchall():
        result[label] = None
    return result


def _followed(conn: sqlite3.Connection, spec: TaskSpec) -> TaskSpec:
    """The spec with names changed in Slack followed: renamed/merged names become today's, retired
    ones are left out (the settings file is re-read at every start; Slack's change is kept)."""
    changed = _changed_names(conn, spec.name)
    if not changed:
        return spec

    def follow(label: str) -> str | None:
        return changed.get(label.strip(), label) if isinstance(label, str) else label

    labels = [name for name in (follow(label) for label in spec.labels) if name is not None]
    emoji = None
    if spec.emoji_map is not None:
        emoji = {
            k: t for k, t in ((k, follow(v) if v not in EMOJI_ACTIONS else v) for k, v in spec.emoji_map.items()) if t
        }
    descriptions = None
    if spec.descriptions is not None:
        descriptions = {}
        for label, text in spec.descriptions.items():
            name = follow(label)
            # a merged label's description does not replace its target's
            if name is not None and (name == label or name not in spec.descriptions):
                descriptions[name] = text
    out_of_scope = follow(spec.out_of_scope_label) if spec.out_of_scope_label else spec.out_of_scope_label
    return dataclasses.replace(
        spec, labels=labels, emoji_map=emoji, descriptions=descriptions, out_of_scope_label=out_of_scope
    )


def _check_target_precision(value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise InvalidValueError(f"target_precision must be above 0 and at most 1, got {value}")


def set_out_of_scope_label(db: sqlite_utils.Database, task: str, label: str | None) -> Task:
    """Declare `label` the task's "none of my labels" label (added to its labels if new);
    None removes the declaration (the label itself stays: labels are never dropped)."""
    with transaction(db) as conn:
        current = require_task(db, task)
        labels = current.labels
        if label is not None:
            cleaned = _clean_labels([label])
            if not cleaned:
                raise InvalidValueError("an out-of-scope label must be a non-empty string")
            label = cleaned[0]
            labels = _clean_labels([*labels, label])
        conn.execute(
            "UPDATE tasks SET labels = ?, out_of_scope_label = ?, updated_at = ? WHERE name = ?",
            (json.dumps(labels), label, utc_now(), task),
        )
    return require_task(db, task)


def _write_task(conn: sqlite3.Connection, task: Task) -> None:
    """Insert or update every field except the active version, which only adapters change."""
    now = utc_now()
    conn.execute(
        """INSERT INTO tasks (name, kind, labels, emoji_map, channels, abstain_threshold,
                              quiet, target_precision, out_of_scope_label, descriptions, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, labels = excluded.labels,
             emoji_map = excluded.emoji_map, channels = excluded.channels,
             abstain_threshold = excluded.abstain_threshold, quiet = excluded.quiet,
             target_precision = excluded.target_precision, out_of_scope_label = excluded.out_of_scope_label,
             descriptions = excluded.descriptions, updated_at = excluded.updated_at""",
        (
            task.name,
            task.kind,
            json.dumps(task.labels),
            json.dumps(task.emoji_map),
            json.dumps(task.channels),
            task.abstain_threshold,
            int(task.quiet),
            task.target_precision,
            task.out_of_scope_label,
            json.dumps(task.descriptions),
            now,
            now,
        ),
    )


def bind_channel(db: sqlite_utils.Database, task: str, channel: str) -> Task:
    with transaction(db) as conn:
        current = require_task(db, task)
        if channel in current.channels:
            return current
        _check_channels_free(db, task, [channel])
        conn.execute(
            "UPDATE tasks SET channels = ?, updated_at = ? WHERE name = ?",
            (json.dumps([*current.channels, channel]), utc_now(), task),
        )
    return require_task(db, task)


def add_labels(db: sqlite_utils.Database, task: str, labels: Iterable[str]) -> Task:
    with transaction(db) as conn:
        current = require_task(db, task)
        merged = _clean_labels([*current.labels, *labels])
        conn.execute(
            "UPDATE tasks SET labels = ?, updated_at = ? WHERE name = ?",
            (json.dumps(merged), utc_now(), task),
        )
    return require_task(db, task)


def set_description(db: sqlite_utils.Database, task: str, label: str, text: str | None) -> Task:
    """Set (or with None remove) the one-line description of one of the task's labels."""
    with transaction(db) as conn:
        current = require_task(db, task)
        require_label(current, label)
        described = dict(current.descriptions)
        if text is None:
            described.pop(label, None)
        else:
            described[label] = clean_description(label, text)
        conn.execute(
            "UPDATE tasks SET descriptions = ?, updated_at = ? WHERE name = ?",
            (json.dumps(described), utc_now(), task),
        )
    return require_task(db, task)


def config_seed(db: sqlite_utils.Database, task: str) -> dict[str, Any] | None:
    """The task's fields as the settings file last gave them, or None if never recorded."""
    row = one(db, "SELECT config_seed FROM tasks WHERE name = ?", (task,))
    if row is None or row["config_seed"] is None:
        return None
    seed = json.loads(row["config_seed"])
    return seed if isinstance(seed, dict) else None


def set_config_seed(db: sqlite_utils.Database, task: str, seed: dict[str, Any]) -> None:
    with transaction(db) as conn:
        require_task(db, task)
        conn.execute("UPDATE tasks SET config_seed = ? WHERE name = ?", (json.dumps(seed, sort_keys=True), task))


def require_label(task: Task, label: str) -> None:
    if label not in task.labels:
        raise UnknownLabelError(f"{label!r} is not a label of task {task.name!r} (labels: {', '.join(task.labels)})")
