"""The learning loop: triggers, training rounds in a child process, the gate, versions on disk,
the serving registry that hot-reloads, and the round report.

Knows nothing of Slack: reports leave through the `post`/`upload` callables `bot.runtime` gives it.
"""

from bot.loop.loop import LearningLoop

__all__ = ["LearningLoop"]
