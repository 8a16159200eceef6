"""The learning loop: triggers, training rounds in a child process, the gate, versions on disk,
the serving registry that hot-reloads, and the round report.

Knows nothing of Slack: reports leave as neutral values (`bot.reports`) through the `Publisher`
(`bot.loop.publisher`) that `bot.runtime` gives it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.loop.loop import LearningLoop

__all__ = ["LearningLoop"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the training child (`python -m bot.loop.round`) does not import the
    # scheduler, matplotlib and the rest of the parent's side just to enter this package.
    if name == "LearningLoop":
        from bot.loop.loop import LearningLoop

        return LearningLoop
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
