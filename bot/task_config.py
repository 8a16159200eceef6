"""The settings file seeds tasks and adds to them; what was set in Slack is never overwritten.

At every start the configured tasks are merged into storage:
- a task the database does not know is created from the file;
- labels and channels only grow: new labels are added, new channels bound;
- a label renamed, merged or retired in Slack stays so (the label history maps the file's old
  name), and is a `Conflict` while the file still lists it;
- a field (kind, abstain threshold, quiet, emoji, new_labels, each label's description) takes the file's
  value when the stored value is still the one the file gave last time (the file was edited),
  or when the database has no record of the file's values (it was made by a camel-bot that
  re-applied the file at every start, so the stored value came from the file);
- a field whose stored value was changed since (in Slack, or by a command) and differs from
  the file is a `Conflict`: the stored value is kept, the start logs it and `camel-bot doctor`
  shows it until the file and the stored value agree again.

The file's values as last applied are the task's `config_seed` in storage (migration 4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlite_utils import Database

import storage
from bot.settings import Settings, TaskSettings

log = logging.getLogger(__name__)
SCALAR_FIELDS = ("kind", "abstain_threshold", "quiet", "emoji", "target_precision", "out_of_scope_label", "new_labels")


@dataclass(frozen=True)
class Conflict:
    """A field set outside the settings file that the file now gives another value."""

    task: str
    field: str  # "abstain_threshold", "descriptions.card_arrival", "channels.C0SUPPORT"
    kept: Any
    configured: Any

    def line(self) -> str:
        return (
            f"task {self.task}: {self.field} is {self.kept!r} (set in Slack or by a command) but the settings file "
            f"says {self.configured!r}; kept {self.kept!r}"
        )


@dataclass
class TaskPlan:
    """What applying one configured task changes: the values to write, and the conflicts."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)  # kind, abstain_threshold, quiet, emoji, descriptions
    conflicts: list[Conflict] = field(default_factory=list)


def seed_of(task: TaskSettings) -> dict[str, Any]:
    """The fields of a configured task that a start may change, as stored in `config_seed`."""
    return {
        "kind": task.kind,
        "abstain_threshold": float(task.abstain_threshold),
        "quiet": bool(task.quiet),
        "emoji": dict(task.emoji),
        "descriptions": {label: " ".join(text.split()) for label, text in task.descriptions.items()},
        "target_precision": float(task.target_precision),
        "out_of_scope_label": task.out_of_scope_label or None,  # "" = the file declares none
        "new_labels": task.new_labels,
    }


def _stored_fields(task: storage.Task) -> dict[str, Any]:
    return {
        "kind": task.kind,
        "abstain_threshold": float(task.abstain_threshold),
        "quiet": bool(task.quiet),
        "emoji": dict(task.emoji_map),
        "descriptions": dict(task.descriptions),
        "target_precision": float(task.target_precision),
        "out_of_scope_label": task.out_of_scope_label,
        "new_labels": task.new_labels,
    }


def _merge(name: str, what: str, stored: Any, configured: Any, last: Any, known: bool) -> tuple[Any, Conflict | None]:
    """(value to keep, conflict or None): the file wins unless the stored value changed since it was applied."""
    if stored == configured or stored is None or not known or stored == last:
        return configured, None
    return stored, Conflict(name, what, stored, configured)


def plan_task(configured: TaskSettings, stored: storage.Task | None, seed: dict[str, Any] | None) -> TaskPlan:
    """The merge of one configured task into its stored record (see the module docstring)."""
    wanted = seed_of(configured)
    plan = TaskPlan(configured.name)
    if stored is None:
        plan.values = wanted
        return plan
    have, known, last = _stored_fields(stored), seed is not None, seed or {}
    for name in SCALAR_FIELDS:
        if name == "out_of_scope_label" and wanted[name] is None:
            plan.values[name] = None  # the file declares none: whatever Slack set is kept, no conflict
            continue
        plan.values[name], conflict = _merge(
            configured.name, name, have[name], wanted[name], last.get(name), known and name in last
        )
        if conflict is not None:
            plan.conflicts.append(conflict)
    descriptions = dict(have["descriptions"])
    for label, text in wanted["descriptions"].items():
        descriptions[label], conflict = _merge(
            configured.name,
            f"descriptions.{label}",
            have["descriptions"].get(label),
            text,
            (last.get("descriptions") or {}).get(label),
            known,
        )
        if conflict is not None:
            plan.conflicts.append(conflict)
    plan.values["descriptions"] = descriptions
    return plan


def _channel_conflicts(db: Database, configured: TaskSettings) -> tuple[list[str], list[Conflict]]:
    """(channels to bind, conflicts): a configured channel bound to another task stays with it."""
    free, conflicts = [], []
    for channel in configured.channels:
        owner = storage.tasks.task_for_channel(db, channel)
        if owner is not None and owner.name != configured.name:
            conflicts.append(
                Conflict(configured.name, f"channels.{channel}", f"bound to task {owner.name}", "bound here")
            )
        else:
            free.append(channel)
    return free, conflicts


def _label_conflicts(db: Database, configured: TaskSettings) -> list[Conflict]:
    """Labels the file lists that were renamed, merged or retired in Slack: Slack's change is kept
    (storage.tasks.upsert_task follows the label history) and shown until the file agrees."""
    if storage.tasks.get_task(db, configured.name) is None:
        return []
    changed = storage.tasks.changed_in_slack(db, configured.name)
    return [
        Conflict(
            configured.name,
            f"labels.{label}",
            f"renamed or merged into {changed[label]!r} in Slack" if changed[label] else "retired in Slack",
            "a label",
        )
        for label in configured.labels
        if label in changed
    ]


def config_conflicts(settings: Settings, db: Database) -> list[Conflict]:
    """What applying the settings file would keep from storage against the file (changes nothing)."""
    found: list[Conflict] = []
    for configured in settings.tasks:
        stored = storage.tasks.get_task(db, configured.name)
        seed = storage.tasks.config_seed(db, configured.name) if stored is not None else None
        found += plan_task(configured, stored, seed).conflicts
        found += _channel_conflicts(db, configured)[1]
        found += _label_conflicts(db, configured)
    return found


def apply_task_settings(settings: Settings, db: Database) -> tuple[list[storage.Task], list[Conflict]]:
    """Seed and add to the configured tasks (one transaction per task); log and return the conflicts."""
    tasks, conflicts = [], []
    for configured in settings.tasks:
        with storage.db.transaction(db):
            stored = storage.tasks.get_task(db, configured.name)
            plan = plan_task(configured, stored, storage.tasks.config_seed(db, configured.name) if stored else None)
            values = plan.values
            storage.tasks.upsert_task(
                db,
                storage.TaskSpec(
                    configured.name,
                    kind=values["kind"],
                    labels=configured.labels,  # added to the stored ones; labels are never dropped
                    emoji_map=values["emoji"],
                    abstain_threshold=values["abstain_threshold"],
                    quiet=values["quiet"],
                    descriptions=values["descriptions"],
                    target_precision=values["target_precision"],
                    # None keeps what is stored: an out-of-scope label set with /camel setup survives restarts.
                    out_of_scope_label=values["out_of_scope_label"],
                ),
            )
            storage.labels.set_policy(db, configured.name, values["new_labels"])
            channels, taken = _channel_conflicts(db, configured)
            for channel in channels:
                storage.tasks.bind_channel(db, configured.name, channel)
            storage.tasks.set_config_seed(db, configured.name, seed_of(configured))
        tasks.append(storage.tasks.get_task(db, configured.name))
        conflicts += plan.conflicts + taken + _label_conflicts(db, configured)
    for conflict in conflicts:
        log.warning("settings file not applied: %s", conflict.line())
    return [task for task in tasks if task is not None], conflicts
