"""Label resolution: from a task's corrections to one training label per message.

Policy (what `resolve_labels` does, in this order):
1. Withdrawn corrections (a removed reaction) do not count.
2. Per (message, user) only that user's latest remaining correction counts; an earlier one
   from the same user is superseded even if the latest is a rejection.
3. "confirm" counts as the label it confirmed: the bot's latest prediction at the time of
   the confirmation, stored on the row by `add_correction`.
4. "reject" says the bot was wrong without saying what is right: it is not a vote for any
   label, but it marks the message as disputed (counted in `Dispute.rejections`).
5. Each remaining correction is a vote of weight 1, or `admin_weight` if made by an admin.
6. The label with the highest total weight wins; a tie goes to the label whose latest vote
   is the most recent (highest correction id, i.e. insertion order).
7. A message with votes for more than one label, or with a rejection, is also returned in
   `disputed` with its vote breakdown, for an admin to review. Messages whose text was
   erased (privacy purge) have nothing to train on and are left out of `labelled`, and so are
   messages whose winning label is retired (`storage.labels`).

`resolved_at` is the time of the latest vote for the winning label, which is what
`count_new_labels_since` compares with a training run's start.

The split is a hash of the message key, so a message never moves between train and held-out
as data grows, and the evaluation gate always measures on data no adapter trained on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlite_utils

from storage.db import rows_as_tuples, to_iso
from storage.errors import InvalidValueError
from storage.records import Dispute, LabelledMessage, MessageVerdict, Resolution
from storage.tasks import require_task

# SQLite's default limit of host parameters is 999 in old builds; stay well below it.
_CHUNK = 500
# One sequential scan in id order (cheaper than an index walk that jumps around the table);
# a later row of the same (message, user) replaces the earlier one in Python.
_LIVE_CORRECTIONS_SQL = """
SELECT id, message_id, user, label, source, is_admin, created_at
FROM corrections WHERE +task = ? AND withdrawn_at IS NULL ORDER BY id
"""
_CORRECTED_MESSAGES_SQL = """
SELECT id, text, workspace, channel, ts FROM messages
WHERE id IN (SELECT message_id FROM corrections WHERE task = ?) ORDER BY id
"""
Vote = tuple[int, int, str, "str | None", str, int, str]


class _Tally:
    """Per message: vote weight per label, each label's latest vote (id, time), rejections."""

    def __init__(self, votes: Iterable[Vote], admin_weight: float) -> None:
        self.weight: dict[int, dict[str, float]] = {}
        self.latest: dict[int, dict[str, tuple[int, str]]] = {}
        self.rejections: dict[int, int] = {}
        weight, latest = self.weight, self.latest  # locals: this loop runs 100k times per call
        for vote_id, message_id, _user, label, source, is_admin, created_at in votes:
            if source == "reject" or label is None:
                self.rejections[message_id] = self.rejections.get(message_id, 0) + 1
                continue
            weights = weight.setdefault(message_id, {})
            weights[label] = weights.get(label, 0.0) + (admin_weight if is_admin else 1.0)
            newest = latest.setdefault(message_id, {})
            if label not in newest or vote_id > newest[label][0]:
                newest[label] = (vote_id, created_at)

    def winner(self, message_id: int) -> str | None:
        weights = self.weight.get(message_id)
        if not weights:
            return None
        if len(weights) == 1:
            return next(iter(weights))
        latest = self.latest[message_id]
        return max(weights, key=lambda name: (round(weights[name], 9), latest[name][0]))


def split_for(workspace: str, channel: str, ts: str, heldout_fraction: float = 0.2) -> str:
    """ "heldout" or "train", from a hash of the message key: stable forever."""
    digest = hashlib.sha256(f"{workspace}/{channel}/{ts}".encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "heldout" if position < heldout_fraction else "train"


def _tally(db: sqlite_utils.Database, task: str, admin_weight: float) -> _Tally:
    votes = rows_as_tuples(db, _LIVE_CORRECTIONS_SQL, (task,))
    latest_per_user = {(vote[1], vote[2]): vote for vote in votes}
    return _Tally(latest_per_user.values(), admin_weight)


def resolve_messages(
    db: sqlite_utils.Database, task: str, message_ids: Sequence[int], *, admin_weight: float = 1.0
) -> dict[int, MessageVerdict]:
    """The same policy as `resolve_labels`, for a few messages only (the ones with live votes)."""
    if admin_weight <= 0:
        raise InvalidValueError(f"admin_weight must be positive, got {admin_weight}")
    ids = sorted(set(message_ids))
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    votes = rows_as_tuples(
        db,
        f"""SELECT id, message_id, user, label, source, is_admin, created_at FROM corrections
            WHERE task = ? AND withdrawn_at IS NULL AND message_id IN ({marks}) ORDER BY id""",
        (task, *ids),
    )
    latest_per_user = {(vote[1], vote[2]): vote for vote in votes}
    tally = _Tally(latest_per_user.values(), admin_weight)
    verdicts: dict[int, MessageVerdict] = {}
    for message_id in {vote[1] for vote in latest_per_user.values()}:
        winner = tally.winner(message_id)
        disputed = len(tally.weight.get(message_id, {})) > 1 or message_id in tally.rejections
        resolved_at = tally.latest[message_id][winner][1] if winner is not None else ""
        verdicts[message_id] = MessageVerdict(message_id, winner, disputed, resolved_at)
    return verdicts


def resolve_labels(
    db: sqlite_utils.Database, task: str, *, admin_weight: float = 1.0, heldout_fraction: float = 0.2
) -> Resolution:
    """One label per corrected message of `task`, plus the disputed messages (see module doc)."""
    require_task(db, task)
    if admin_weight <= 0:
        raise InvalidValueError(f"admin_weight must be positive, got {admin_weight}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise InvalidValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    tally = _tally(db, task, admin_weight)
    # A retired label's messages leave training (its corrections and history stay).
    retired = {label for (label,) in rows_as_tuples(db, "SELECT label FROM retired_labels WHERE task = ?", (task,))}
    labelled: list[LabelledMessage] = []
    disputed: list[Dispute] = []
    for message_id, text, workspace, channel, ts in rows_as_tuples(db, _CORRECTED_MESSAGES_SQL, (task,)):
        winner = tally.winner(message_id)
        if winner is not None and text and winner not in retired:
            split = split_for(workspace, channel, ts, heldout_fraction)
            labelled.append(LabelledMessage(message_id, text, winner, split, tally.latest[message_id][winner][1]))
        votes = tally.weight.get(message_id, {})
        if len(votes) > 1 or message_id in tally.rejections:
            disputed.append(Dispute(message_id, text, winner, dict(votes), tally.rejections.get(message_id, 0)))
    return Resolution(labelled=labelled, disputed=disputed)


def count_new_labels_since(db: sqlite_utils.Database, task: str, since: datetime | str | None) -> int:
    """Resolved labels whose deciding vote came after `since` (None: every resolved label)."""
    if since is None:
        return len(resolve_labels(db, task).labelled)
    cutoff = to_iso(since)
    return _count_resolved_after(db, task, _voted_since(db, task, cutoff), cutoff)


def new_labels_reach(db: sqlite_utils.Database, task: str, since: datetime | str | None, threshold: int) -> bool:
    """`count_new_labels_since(...) >= threshold`, without resolving every label on each call.

    Called on every correction: a label resolved after `since` has its deciding vote after it,
    so only messages with a live vote since then can count, and when fewer than `threshold`
    messages have one the answer is known from one query (before this, each correction resolved
    every label of the task, so a flood of reactions cost more with every correction stored)."""
    cutoff = to_iso(since) if since is not None else ""
    candidates = _voted_since(db, task, cutoff)
    if len(candidates) < threshold:
        return False
    return _count_resolved_after(db, task, candidates, cutoff) >= threshold


def _voted_since(db: sqlite_utils.Database, task: str, cutoff: str) -> list[int]:
    """Messages of `task` with a live correction made after `cutoff` (ISO time; "" for all)."""
    found = rows_as_tuples(
        db,
        "SELECT DISTINCT message_id FROM corrections WHERE task = ? AND withdrawn_at IS NULL AND created_at > ?",
        (task, cutoff),
    )
    return [int(row[0]) for row in found]


def _count_resolved_after(db: sqlite_utils.Database, task: str, message_ids: list[int], cutoff: str) -> int:
    """Of `message_ids`, how many `resolve_labels` would list with `resolved_at` after `cutoff`:
    a winning label that is not retired, on a message whose text is still stored."""
    retired = {label for (label,) in rows_as_tuples(db, "SELECT label FROM retired_labels WHERE task = ?", (task,))}
    count = 0
    for start in range(0, len(message_ids), _CHUNK):
        chunk = message_ids[start : start + _CHUNK]
        marks = ", ".join("?" for _ in chunk)
        with_text = {
            int(row[0])
            for row in rows_as_tuples(db, f"SELECT id FROM messages WHERE id IN ({marks}) AND text != ''", tuple(chunk))
        }
        for message_id, verdict in resolve_messages(db, task, chunk).items():
            if (
                verdict.label is not None
                and verdict.label not in retired
                and message_id in with_text
                and verdict.resolved_at > cutoff
            ):
                count += 1
    return count


def label_scores(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, float]]:
    """Per-label precision, recall, F1 and support from (true, predicted) pairs.

    scikit-learn's, as `camel.evaluate` uses, so live and held-out F1 are the same measure.
    Imported here: only live accuracy needs it, and storage-only commands start faster without.
    """
    from sklearn.metrics import precision_recall_fscore_support

    pairs = list(pairs)
    labels = sorted({true for true, _ in pairs})
    if not labels:
        return {}
    true, predicted = [t for t, _ in pairs], [p for _, p in pairs]
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
