"""What answers for a task right now: one adapter version and the predictor serving it, as one value.

The registry (`bot.loop.registry`) replaces a task's `Serving` whole when another version goes
live, never one half of it. Whoever took a `Serving` answers with exactly that version's adapter
and records exactly that version, even when a hot swap happens while it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

import camel
import storage


@dataclass(frozen=True, eq=False)
class Serving:
    version: int
    predictor: camel.Predictor


def label_view(db: Database, task: str) -> camel.LabelView:
    """The task's labels as stored now (names, history, retired, descriptions), for the predictors."""
    current = storage.tasks.require_task(db, task)
    return camel.LabelView(
        labels=tuple(current.labels),
        renamed=storage.labels.name_map(db, task),
        retired=frozenset(storage.labels.retired(db, task)),
        descriptions=dict(current.descriptions),
        mark=storage.labels.mark(db, task),
    )
