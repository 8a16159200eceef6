"""Labels that change after a task starts: add, rename, merge, retire and bring back.

Every change is previewed first (`preview`: how many messages and corrections move), applied in
one transaction (`apply`), written to the label history (`label_events`) and audited. The
history is what maps an old name to today's: an adapter trained before a rename or merge, a
button posted before it, an import naming an old label. So a name renamed or merged away is
never reused (it would map to two labels); a retired name keeps its history and can come back.

Rename and merge move the stored corrections and predictions to the new name (a correction keeps
the name it was first stored under in `original_label`), so counts, metrics and the next round
see today's names. Retired labels leave the task's label list: nothing predicts them and their
messages leave training (`storage.resolution` skips them); their description and emoji come
back with them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from storage.db import one, rows, transaction, utc_now
from storage.errors import InvalidValueError, UnknownLabelError
from storage.events import audit
from storage.records import Task
from storage.tasks import EMOJI_ACTIONS, changed_in_slack, clean_description, require_task

KINDS = ("add", "rename", "merge", "retire", "unretire")
POLICIES = ("admins", "members", "propose")
# A menu option's value is "task|label" and Slack allows 150 characters; a label name also has
# to fit an option's 75-character text. 64 leaves room for the task's name.
MAX_LABEL_CHARS = 64
MAX_OPTION_VALUE = 150


@dataclass(frozen=True)
class LabelEvent:
    id: int
    task: str
    kind: str
    old_name: str | None
    new_name: str | None
    actor: str
    created_at: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelChange:
    """One change as previewed: what it does and how much moves. `mark` is the last history event
    when it was previewed; `apply` refuses a change whose preview is out of date."""

    kind: str
    task: str
    old_name: str | None  # the label changed (None for add)
    new_name: str | None  # the name it gets, the label merged into, the added label (None for retire)
    messages: int = 0  # messages whose corrections move (or leave training, for retire)
    corrections: int = 0
    description: str | None = None
    mark: int = 0


@dataclass(frozen=True)
class LabelProposal:
    id: int
    task: str
    label: str
    description: str
    proposer: str
    message_id: int | None
    status: str
    decided_by: str | None
    decided_at: str | None
    admin_messages: list[tuple[str, str]]
    created_at: str


def mark(db: sqlite_utils.Database, task: str) -> int:
    """The task's last label event id (0: none): what changed since a mark was taken."""
    row = one(db, "SELECT MAX(id) AS id FROM label_events WHERE task = ?", (task,))
    return int(row["id"]) if row is not None and row["id"] is not None else 0


def history(
    db: sqlite_utils.Database, task: str, *, since: str | None = None, until: str | None = None
) -> list[LabelEvent]:
    """The task's label events in order, optionally those with since < created_at <= until."""
    sql, params = "SELECT * FROM label_events WHERE task = ?", [task]
    if since is not None:
        sql, params = sql + " AND created_at > ?", [*params, since]
    if until is not None:
        sql, params = sql + " AND created_at <= ?", [*params, until]
    return [_event(r) for r in rows(db, sql + " ORDER BY id", params)]


def name_map(db: sqlite_utils.Database, task: str) -> dict[str, str]:
    """Every name renamed or merged away -> the label it is called today (chains followed)."""
    return {old: new for old, new in changed_in_slack(db, task).items() if new is not None}


def current_name(db: sqlite_utils.Database, task: str, name: str) -> str | None:
    """Today's name of `name` (itself if current); None if it is retired or was never a label."""
    current = require_task(db, task)
    resolved = name_map(db, task).get(name, name)
    return resolved if resolved in current.labels else None


def retired(db: sqlite_utils.Database, task: str) -> list[str]:
    return [r["label"] for r in rows(db, "SELECT label FROM retired_labels WHERE task = ? ORDER BY label", (task,))]


def name_problem(db: sqlite_utils.Database, task: str, name: str) -> str | None:
    """Why `name` cannot become a new label of `task` (one sentence), or None if it can."""
    if name != name.strip() or not name:
        return "A label name cannot be empty or start or end with spaces."
    if any(ch.isspace() for ch in name):
        return "A label name cannot contain spaces: use `_` or `-`, e.g. `crypto_withdrawal`."
    if "|" in name:
        return "A label name cannot contain `|` (the bot's buttons use it to separate task and label)."
    if name in EMOJI_ACTIONS:
        return f"`{name}` is reserved for the emoji map's confirm and reject actions."
    if name.startswith("__"):
        return "Names starting with `__` are kept for the bot's own actions (its menus and emoji map use them)."
    limit = min(MAX_LABEL_CHARS, MAX_OPTION_VALUE - len(task) - 1)
    if len(name) > limit:
        return f"A label name has at most {limit} characters (Slack's menus carry it); this one has {len(name)}."
    current = require_task(db, task)
    if name in current.labels:
        return f"`{name}` is already a label of {task}."
    if name in retired(db, task):
        return f"`{name}` is a retired label of {task}: bring it back with `/camel labels unretire {task} {name}`."
    gone = name_map(db, task).get(name)
    if gone is not None:
        return (
            f"`{name}` was a label of {task} and now means `{gone}` (renamed or merged); a name used before "
            "cannot be reused, because old buttons and versions map it there. Pick another name."
        )
    return None


def preview(
    db: sqlite_utils.Database,
    task: str,
    kind: str,
    old_name: str | None = None,
    new_name: str | None = None,
    description: str | None = None,
) -> LabelChange:
    """What a change would do, checked as `apply` checks it (InvalidValueError/UnknownLabelError if
    it cannot be made), without changing anything."""
    if kind not in KINDS:
        raise InvalidValueError(f"a label change is one of {', '.join(KINDS)}, got {kind!r}")
    current = require_task(db, task)
    if kind == "add":
        name = _checked_new_name(db, task, new_name)
        line = clean_description(name, description) if description else None
        return LabelChange(kind, task, None, name, description=line, mark=mark(db, task))
    if kind == "unretire":
        if old_name not in retired(db, task):
            raise UnknownLabelError(f"`{old_name}` is not a retired label of {task}")
        messages, corrections = _counts(db, task, str(old_name))
        return LabelChange(kind, task, old_name, old_name, messages, corrections, mark=mark(db, task))
    _require_current(current, old_name)
    assert old_name is not None
    if kind == "rename":
        name = _checked_new_name(db, task, new_name)
        messages, corrections = _counts(db, task, old_name)
        return LabelChange(kind, task, old_name, name, messages, corrections, mark=mark(db, task))
    if kind == "merge":
        _check_merge(db, current, old_name, new_name)
        messages, corrections = _counts(db, task, old_name)
        return LabelChange(kind, task, old_name, new_name, messages, corrections, mark=mark(db, task))
    _check_retire(current, old_name)
    messages, corrections = _counts(db, task, old_name)
    return LabelChange(kind, task, old_name, None, messages, corrections, mark=mark(db, task))


def apply(db: sqlite_utils.Database, change: LabelChange, actor: str) -> LabelEvent:
    """Make a previewed change (checked again, in one transaction with its history event and audit).
    A change previewed before another label change of the task is refused: preview it again."""
    if not actor:
        raise InvalidValueError("a label change needs an actor")
    with transaction(db) as conn:
        if mark(db, change.task) != change.mark:
            raise InvalidValueError(
                f"the labels of {change.task} changed since this preview was made: preview the change again"
            )
        fresh = preview(db, change.task, change.kind, change.old_name, change.new_name, change.description)
        detail = _APPLY[change.kind](conn, require_task(db, change.task), fresh)
        detail = {**detail, "messages": fresh.messages, "corrections": fresh.corrections}
        cursor = conn.execute(
            "INSERT INTO label_events (task, kind, old_name, new_name, actor, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (change.task, change.kind, fresh.old_name, fresh.new_name, actor, json.dumps(detail), utc_now()),
        )
        audit(
            db,
            actor=actor,
            action=f"label_{change.kind}",
            detail={"task": change.task, "old": fresh.old_name, "new": fresh.new_name, **detail},
        )
        event_id = int(cursor.lastrowid or 0)
    found = one(db, "SELECT * FROM label_events WHERE id = ?", (event_id,))
    assert found is not None
    return _event(found)


def change(
    db: sqlite_utils.Database,
    task: str,
    kind: str,
    actor: str,
    old_name: str | None = None,
    new_name: str | None = None,
    description: str | None = None,
) -> LabelEvent:
    """Preview and apply in one go (for callers that showed no preview: the settings file, tests)."""
    with transaction(db):
        return apply(db, preview(db, task, kind, old_name, new_name, description), actor)


def set_policy(db: sqlite_utils.Database, task: str, policy: str) -> Task:
    """Who may create labels from Slack: "admins", "members" or "propose" (admins approve members')."""
    if policy not in POLICIES:
        raise InvalidValueError(f"new_labels must be one of {', '.join(POLICIES)}, got {policy!r}")
    with transaction(db) as conn:
        require_task(db, task)
        conn.execute("UPDATE tasks SET new_labels = ?, updated_at = ? WHERE name = ?", (policy, utc_now(), task))
    return require_task(db, task)


# --- proposals: a member's new label waiting for an admin ---------------------------------------


def propose(
    db: sqlite_utils.Database, task: str, name: str, description: str, proposer: str, message_id: int | None
) -> LabelProposal:
    """Store a member's proposed label (with the message it would correct) until an admin decides."""
    problem = name_problem(db, task, name)
    if problem:
        raise InvalidValueError(problem)
    line = clean_description(name, description)
    pending = one(
        db, "SELECT id FROM label_proposals WHERE task = ? AND label = ? AND status = 'pending'", (task, name)
    )
    if pending is not None:
        raise InvalidValueError(f"`{name}` is already proposed for {task} and waits for an admin")
    with transaction(db) as conn:
        cursor = conn.execute(
            "INSERT INTO label_proposals (task, label, description, proposer, message_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (task, name, line, proposer, message_id, utc_now()),
        )
    return require_proposal(db, int(cursor.lastrowid or 0))


def get_proposal(db: sqlite_utils.Database, proposal_id: int) -> LabelProposal | None:
    row = one(db, "SELECT * FROM label_proposals WHERE id = ?", (proposal_id,))
    return _proposal(row) if row is not None else None


def require_proposal(db: sqlite_utils.Database, proposal_id: int) -> LabelProposal:
    found = get_proposal(db, proposal_id)
    if found is None:
        raise InvalidValueError(f"no label proposal {proposal_id}")
    return found


def set_proposal_messages(db: sqlite_utils.Database, proposal_id: int, messages: list[tuple[str, str]]) -> None:
    """The (channel, ts) of the direct messages that asked the admins, to update them once decided."""
    with transaction(db) as conn:
        conn.execute(
            "UPDATE label_proposals SET admin_messages = ? WHERE id = ?",
            (json.dumps([list(m) for m in messages]), proposal_id),
        )


def decide(db: sqlite_utils.Database, proposal_id: int, admin: str, approve: bool) -> tuple[LabelProposal, bool]:
    """Record an admin's decision; the first decision wins. Returns the proposal and whether this
    call decided it (False: someone decided first, the proposal says who and what). Approving
    adds the label (history and audit as any add)."""
    with transaction(db) as conn:
        proposal = require_proposal(db, proposal_id)
        if proposal.status != "pending":
            return proposal, False
        if approve:
            apply(db, preview(db, proposal.task, "add", None, proposal.label, proposal.description), admin)
        else:
            audit(
                db,
                actor=admin,
                action="label_proposal_rejected",
                detail={"task": proposal.task, "label": proposal.label},
            )
        conn.execute(
            "UPDATE label_proposals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?",
            ("approved" if approve else "rejected", admin, utc_now(), proposal_id),
        )
    return require_proposal(db, proposal_id), True


# --- the changes themselves ---------------------------------------------------------------------


def _checked_new_name(db: sqlite_utils.Database, task: str, name: str | None) -> str:
    problem = name_problem(db, task, name or "")
    if problem:
        raise InvalidValueError(problem)
    assert name is not None
    return name


def _require_current(task: Task, name: str | None) -> None:
    if name not in task.labels:
        raise UnknownLabelError(f"`{name}` is not a label of {task.name} (labels: {', '.join(task.labels)})")


def _check_merge(db: sqlite_utils.Database, task: Task, source: str, target: str | None) -> None:
    if target in retired(db, task.name):
        raise InvalidValueError(f"`{target}` is retired: bring it back before merging `{source}` into it")
    _require_current(task, target)
    if source == target:
        raise InvalidValueError("a label cannot be merged into itself")
    if source == task.out_of_scope_label:
        raise InvalidValueError(f"`{source}` is the out-of-scope label of {task.name}: merge another label into it")


def _check_retire(task: Task, label: str) -> None:
    if label == task.out_of_scope_label:
        raise InvalidValueError(f"`{label}` is the out-of-scope label of {task.name}: unset it before retiring it")
    if len(task.labels) <= 2:
        raise InvalidValueError(f"{task.name} needs at least 2 labels; retiring `{label}` would leave one")


def _counts(db: sqlite_utils.Database, task: str, label: str) -> tuple[int, int]:
    row = one(
        db,
        "SELECT COUNT(DISTINCT message_id) AS messages, COUNT(*) AS corrections FROM corrections "
        "WHERE task = ? AND label = ? AND withdrawn_at IS NULL",
        (task, label),
    )
    return (int(row["messages"]), int(row["corrections"])) if row is not None else (0, 0)


def _write_labels(conn: sqlite3.Connection, task: Task, labels: list[str], **fields: Any) -> None:
    descriptions = fields.get("descriptions", task.descriptions)
    emoji = fields.get("emoji_map", task.emoji_map)
    out_of_scope = fields.get("out_of_scope_label", task.out_of_scope_label)
    conn.execute(
        "UPDATE tasks SET labels = ?, descriptions = ?, emoji_map = ?, out_of_scope_label = ?, updated_at = ? "
        "WHERE name = ?",
        (json.dumps(labels), json.dumps(descriptions), json.dumps(emoji), out_of_scope, utc_now(), task.name),
    )


def _add(conn: sqlite3.Connection, task: Task, change: LabelChange) -> dict[str, Any]:
    name = str(change.new_name)
    descriptions = {**task.descriptions, **({name: change.description} if change.description else {})}
    _write_labels(conn, task, [*task.labels, name], descriptions=descriptions)
    return {"description": change.description} if change.description else {}


def _move(conn: sqlite3.Connection, task: str, old: str, new: str) -> None:
    """Stored corrections, predictions and review scores of `old` now say `new`."""
    conn.execute(
        "UPDATE corrections SET original_label = COALESCE(original_label, label), label = ? "
        "WHERE task = ? AND label = ?",
        (new, task, old),
    )
    conn.execute("UPDATE predictions SET label = ? WHERE task = ? AND label = ?", (new, task, old))
    needle = f"%{json.dumps(old)}%"
    for table, key in (("predictions", "id"), ("review_scores", "message_id")):
        for row_key, top3 in conn.execute(
            f"SELECT {key}, top3 FROM {table} WHERE task = ? AND top3 LIKE ?", (task, needle)
        ).fetchall():
            conn.execute(
                f"UPDATE {table} SET top3 = ? WHERE task = ? AND {key} = ?",
                (json.dumps(_renamed_top3(json.loads(top3), old, new)), task, row_key),
            )


def _renamed_top3(top3: list[list[Any]], old: str, new: str) -> list[list[Any]]:
    """Top 3 with `old` called `new`; when both were there (a merge) their shares add up."""
    summed: dict[str, float] = {}
    for label, share in top3:
        name = new if label == old else label
        summed[name] = summed.get(name, 0.0) + float(share)
    return [[label, share] for label, share in sorted(summed.items(), key=lambda item: -item[1])]


def _rename(conn: sqlite3.Connection, task: Task, change: LabelChange) -> dict[str, Any]:
    old, new = str(change.old_name), str(change.new_name)
    descriptions = {(new if k == old else k): v for k, v in task.descriptions.items()}
    emoji = {k: (new if v == old else v) for k, v in task.emoji_map.items()}
    out_of_scope = new if task.out_of_scope_label == old else task.out_of_scope_label
    labels = [new if label == old else label for label in task.labels]
    _write_labels(conn, task, labels, descriptions=descriptions, emoji_map=emoji, out_of_scope_label=out_of_scope)
    _move(conn, task.name, old, new)
    return {}


def _merge(conn: sqlite3.Connection, task: Task, change: LabelChange) -> dict[str, Any]:
    source, target = str(change.old_name), str(change.new_name)
    descriptions = {k: v for k, v in task.descriptions.items() if k != source}
    emoji = {k: (target if v == source else v) for k, v in task.emoji_map.items()}
    labels = [label for label in task.labels if label != source]
    _write_labels(conn, task, labels, descriptions=descriptions, emoji_map=emoji)
    _move(conn, task.name, source, target)
    return {"description": task.descriptions.get(source)} if source in task.descriptions else {}


def _retire(conn: sqlite3.Connection, task: Task, change: LabelChange) -> dict[str, Any]:
    label = str(change.old_name)
    emoji = sorted(k for k, v in task.emoji_map.items() if v == label)
    conn.execute(
        "INSERT OR REPLACE INTO retired_labels (task, label, description, emoji, retired_at) VALUES (?, ?, ?, ?, ?)",
        (task.name, label, task.descriptions.get(label), json.dumps(emoji), utc_now()),
    )
    _write_labels(
        conn,
        task,
        [name for name in task.labels if name != label],
        descriptions={k: v for k, v in task.descriptions.items() if k != label},
        emoji_map={k: v for k, v in task.emoji_map.items() if v != label},
    )
    return {"emoji": emoji}


def _unretire(conn: sqlite3.Connection, task: Task, change: LabelChange) -> dict[str, Any]:
    label = str(change.old_name)
    row = conn.execute(
        "SELECT description, emoji FROM retired_labels WHERE task = ? AND label = ?", (task.name, label)
    ).fetchone()
    description, emoji = (row[0], json.loads(row[1])) if row is not None else (None, [])
    # An emoji given to another label meanwhile stays there.
    back = {name: label for name in emoji if name not in task.emoji_map}
    _write_labels(
        conn,
        task,
        [*task.labels, label],
        descriptions={**task.descriptions, **({label: description} if description else {})},
        emoji_map={**task.emoji_map, **back},
    )
    conn.execute("DELETE FROM retired_labels WHERE task = ? AND label = ?", (task.name, label))
    return {"emoji": sorted(back)}


_APPLY = {"add": _add, "rename": _rename, "merge": _merge, "retire": _retire, "unretire": _unretire}


def _event(row: sqlite3.Row) -> LabelEvent:
    return LabelEvent(
        row["id"],
        row["task"],
        row["kind"],
        row["old_name"],
        row["new_name"],
        row["actor"],
        row["created_at"],
        json.loads(row["detail"] or "{}"),
    )


def _proposal(row: sqlite3.Row) -> LabelProposal:
    return LabelProposal(
        row["id"],
        row["task"],
        row["label"],
        row["description"],
        row["proposer"],
        row["message_id"],
        row["status"],
        row["decided_by"],
        row["decided_at"],
        [(str(c), str(t)) for c, t in json.loads(row["admin_messages"])],
        row["created_at"],
    )
