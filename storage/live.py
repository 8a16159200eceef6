"""Live accuracy: how often the bot's stored predictions matched what people resolved."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils

from storage.db import rows, to_iso
from storage.errors import InvalidValueError
from storage.resolution import label_scores, resolve_labels


def _true_and_predicted(db: sqlite_utils.Database, task: str, cutoff: str) -> list[tuple[str, str]]:
    resolved = {item.message_id: item for item in resolve_labels(db, task).labelled}
    judged: dict[int, str] = {}
    predictions = rows(
        db,
        # The team's memory answered with the team's own label: not the model's accuracy.
        """SELECT message_id, label, created_at FROM predictions
           WHERE task = ? AND created_at >= ? AND source != 'memory' ORDER BY id""",
        (task, cutoff),
    )
    for prediction in predictions:
        item = resolved.get(prediction["message_id"])
        if item is not None and prediction["created_at"] <= item.resolved_at:
            judged[item.message_id] = prediction["label"]  # later rows win: the latest before the label
    return [(resolved[message_id].label, predicted) for message_id, predicted in judged.items()]


def live_accuracy(db: sqlite_utils.Database, task: str, *, days: float) -> dict[str, Any]:
    """Accuracy of predictions made in the last `days` on messages that now have a label.

    The prediction judged is the latest one made before the label's deciding vote, i.e. the
    one people saw when they corrected or confirmed it.
    """
    if days <= 0:
        raise InvalidValueError(f"days must be positive, got {days}")
    pairs = _true_and_predicted(db, task, to_iso(datetime.now(timezone.utc) - timedelta(days=days)))
    correct = sum(1 for true, predicted in pairs if true == predicted)
    per_label = label_scores(pairs)
    return {
        "task": task,
        "days": days,
        "n": len(pairs),
        "correct": correct,
        "accuracy": correct / len(pairs) if pairs else None,
        "macro_f1": sum(s["f1"] for s in per_label.values()) / len(per_label) if per_label else None,
        "per_label": per_label,
    }
