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
   erased (privacy purge) have nothing to train on and are left out of `labelled`.

`resolved_at` is the time of the latest vote for the winning label, which is what
`count_new_labels_since` compares with a training run's start.

The split is a hash of the message key, so a message never moves between train and held-out
as data grows, and the evaluation gate always measures on data no adapter trained on.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
from collections.abc import Iterable
from datetime import datetime

import sqlite_utils

from storage.db import rows, to_iso
from storage.errors import InvalidValueError
from storage.records import Dispute, LabelledMessage, Resolution
from storage.tasks import require_task

_LATEST_VOTES_SQL = """
WITH latest AS (
    SELECT message_id, label, source, is_admin, created_at, id,
           ROW_NUMBER() OVER (PARTITION BY message_id, user ORDER BY id DESC) AS rank
    FROM corrections
    WHERE task = ? AND withdrawn_at IS NULL
)
SELECT l.message_id, l.label, l.source, l.is_admin, l.created_at, l.id,
       m.text, m.workspace, m.channel, m.ts
FROM latest AS l JOIN messages AS m ON m.id = l.message_id
WHERE l.rank = 1
ORDER BY l.message_id
"""


def split_for(workspace: str, channel: str, ts: str, heldout_fraction: float = 0.2) -> str:
    """"heldout" or "train", from a hash of the message key: stable forever."""
    digest = hashlib.sha256(f"{workspace}/{channel}/{ts}".encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "heldout" if position < heldout_fraction else "train"


def resolve_labels(
    db: sqlite_utils.Database, task: str, *, admin_weight: float = 1.0, heldout_fraction: float = 0.2
) -> Resolution:
    """One label per corrected message of `task`, plus the disputed messages (see module doc)."""
    require_task(db, task)
    if admin_weight <= 0:
        raise InvalidValueError(f"admin_weight must be positive, got {admin_weight}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise InvalidValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    labelled: list[LabelledMessage] = []
    disputed: list[Dispute] = []
    votes_by_message = itertools.groupby(rows(db, _LATEST_VOTES_SQL, (task,)), key=lambda r: r["message_id"])
    for message_id, group in votes_by_message:
        _resolve_one(message_id, list(group), admin_weight, heldout_fraction, labelled, disputed)
    return Resolution(labelled=labelled, disputed=disputed)


def _resolve_one(
    message_id: int,
    votes: list[sqlite3.Row],
    admin_weight: float,
    heldout_fraction: float,
    labelled: list[LabelledMessage],
    disputed: list[Dispute],
) -> None:
    weight: dict[str, float] = {}
    latest: dict[str, tuple[int, str]] = {}  # label -> (correction id, created_at) of its latest vote
    rejections = 0
    for vote in votes:
        if vote["source"] == "reject" or vote["label"] is None:
            rejections += 1
            continue
        label = vote["label"]
        weight[label] = weight.get(label, 0.0) + (admin_weight if vote["is_admin"] else 1.0)
        if label not in latest or vote["id"] > latest[label][0]:
            latest[label] = (vote["id"], vote["created_at"])
    first = votes[0]
    winner = max(weight, key=lambda name: (round(weight[name], 9), latest[name][0])) if weight else None
    if winner is not None and first["text"]:
        split = split_for(first["workspace"], first["channel"], first["ts"], heldout_fraction)
        labelled.append(LabelledMessage(message_id, first["text"], winner, split, latest[winner][1]))
    if len(weight) > 1 or rejections:
        disputed.append(Dispute(message_id, first["text"], winner, weight, rejections))


def count_new_labels_since(db: sqlite_utils.Database, task: str, since: datetime | str | None) -> int:
    """Resolved labels whose deciding vote came after `since` (None: every resolved label)."""
    labelled = resolve_labels(db, task).labelled
    if since is None:
        return len(labelled)
    cutoff = to_iso(since)
    return sum(1 for item in labelled if item.resolved_at > cutoff)


def label_scores(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, float]]:
    """Per-label precision, recall, F1 and support from (true, predicted) pairs."""
    true_count: dict[str, int] = {}
    predicted_count: dict[str, int] = {}
    hits: dict[str, int] = {}
    for true, predicted in pairs:
        true_count[true] = true_count.get(true, 0) + 1
        predicted_count[predicted] = predicted_count.get(predicted, 0) + 1
        if true == predicted:
            hits[true] = hits.get(true, 0) + 1
    scores: dict[str, dict[str, float]] = {}
    for label in sorted(true_count):
        precision = hits.get(label, 0) / predicted_count[label] if predicted_count.get(label) else 0.0
        recall = hits.get(label, 0) / true_count[label]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[label] = {"precision": precision, "recall": recall, "f1": f1, "support": true_count[label]}
    return scores
