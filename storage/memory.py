"""The team's memory in the store: labelled messages found again by their text's key.

A message's `text_key` is its text as it compares for meaning (the bot computes it: folded
Unicode, case and whitespace, Slack markup as placeholders; storage cannot import the folding).
The key is derived data of the text: a trigger drops it whenever the text changes or is blanked
(an edit, a deletion in Slack, a purge, retention), and deleting the row (a user's erasure)
takes it along, so the memory never answers from a text that was erased. The bot fills missing
keys with `set_text_keys` (`unkeyed_labelled` lists the ones it needs).

What the memory says for a key (`labels_by_key`) is read from the live corrections each time,
with the same resolution policy as training (`storage.resolution.resolve_messages`), so a
withdrawn reaction or a new correction counts at once, before any round.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import sqlite_utils

from storage.db import one, rows_as_tuples, transaction
from storage.records import KeyLabel
from storage.resolution import resolve_messages

# SQLite's default limit of host parameters is 999 in old builds; stay well below it.
_CHUNK = 500


def change_mark(db: sqlite_utils.Database) -> tuple[int, int]:
    """Grows whenever a correction is added or a text is erased or edited (the deletion list):
    the bot re-reads the labelled keys only when this moved."""
    corrections = one(db, "SELECT MAX(id) FROM corrections")
    deleted = one(db, "SELECT MAX(id) FROM deleted_texts")
    return (int(corrections[0] or 0) if corrections else 0, int(deleted[0] or 0) if deleted else 0)


def unkeyed_labelled(db: sqlite_utils.Database, task: str) -> list[tuple[int, str]]:
    """(message id, text) of the task's corrected messages that have a text but no key yet."""
    found = rows_as_tuples(
        db,
        """SELECT id, text FROM messages WHERE text_key IS NULL AND text != ''
           AND id IN (SELECT message_id FROM corrections WHERE task = ?) ORDER BY id""",
        (task,),
    )
    return [(int(row[0]), str(row[1])) for row in found]


def set_text_keys(db: sqlite_utils.Database, keyed: Iterable[tuple[int, str, str]]) -> int:
    """Store (message id, the text the key was computed from, key); a row whose text changed in
    the meantime keeps no key (the next pass computes it from the new text). Returns rows keyed."""
    changed = 0
    with transaction(db) as conn:
        for message_id, text, key in keyed:
            changed += conn.execute(
                "UPDATE messages SET text_key = ? WHERE id = ? AND text = ? AND text != ''", (key, message_id, text)
            ).rowcount
    return changed


def keyed_labelled(db: sqlite_utils.Database, task: str) -> list[tuple[int, str]]:
    """(message id, key) of every corrected message of the task that has a key (the near-duplicate
    index is built from these)."""
    found = rows_as_tuples(
        db,
        """SELECT id, text_key FROM messages WHERE text_key IS NOT NULL
           AND id IN (SELECT message_id FROM corrections WHERE task = ? AND withdrawn_at IS NULL) ORDER BY id""",
        (task,),
    )
    return [(int(row[0]), str(row[1])) for row in found]


def labels_by_key(
    db: sqlite_utils.Database, task: str, keys: Sequence[str], *, admin_weight: float = 1.0
) -> dict[str, KeyLabel]:
    """The team's label for each key that labelled messages of the task have (keys nobody labelled
    are absent).

    Policy: each message with the key is resolved on its own as for training; if any of them is
    disputed (votes for several labels, or a rejection), the key is disputed and has no label
    (an admin decides, the model answers meanwhile). Otherwise, when messages with the same text
    got different labels over time, the latest resolution wins: the team changed its mind.
    """
    wanted = sorted(set(keys))
    by_key: dict[str, list[int]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        for message_id, key in rows_as_tuples(
            db,
            f"""SELECT m.id, m.text_key FROM messages AS m WHERE m.text_key IN ({marks})
                AND EXISTS (SELECT 1 FROM corrections AS c
                            WHERE c.message_id = m.id AND c.task = ? AND c.withdrawn_at IS NULL)""",
            (*chunk, task),
        ):
            by_key.setdefault(str(key), []).append(int(message_id))
    all_ids = [message_id for ids in by_key.values() for message_id in ids]
    verdicts = {}
    for start in range(0, len(all_ids), _CHUNK):
        verdicts.update(resolve_messages(db, task, all_ids[start : start + _CHUNK], admin_weight=admin_weight))
    result: dict[str, KeyLabel] = {}
    for key, ids in by_key.items():
        found = [verdicts[i] for i in ids if i in verdicts]
        disputed = any(v.disputed for v in found)
        decided = [v for v in found if v.label is not None]
        if not decided:
            continue
        newest = max(decided, key=lambda v: (v.resolved_at, v.message_id))
        label = None if disputed else newest.label
        result[key] = KeyLabel(key, label, disputed, sorted(ids), newest.resolved_at)
    return result


def answers_by_source(db: sqlite_utils.Database, task: str, *, since: str) -> dict[str, int]:
    """How many answers each source gave since `since` (ISO time): "adapter", "zero_shot", "memory"."""
    found = rows_as_tuples(
        db, "SELECT source, COUNT(*) FROM predictions WHERE task = ? AND created_at >= ? GROUP BY source", (task, since)
    )
    return {str(source): int(count) for source, count in found}
