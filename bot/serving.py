"""What answers for a task right now: one adapter version and the predictor serving it, as one value.

The registry (`bot.loop.registry`) replaces a task's `Serving` whole when another version goes
live, never one half of it. Whoever took a `Serving` answers with exactly that version's adapter
and records exactly that version, even when a hot swap happens while it answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import camel


@dataclass(frozen=True, eq=False)
class Serving:
    version: int
    predictor: camel.Predictor
