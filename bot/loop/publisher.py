"""How the learning loop speaks to a channel: the one interface between the loop and Slack.

The loop emits neutral reports (`bot.reports`: round reports, digests, notices, questions) and
knows nothing of how they look; `bot.runtime` gives it a `bot.slack.publisher.SlackPublisher`.
"""

from __future__ import annotations

from typing import Protocol

from bot import reports


class Publisher(Protocol):
    def publish(self, channel: str, report: reports.Report) -> None:
        """Show `report` in `channel` (with its chart, if any); raises when the channel's service fails."""
        ...

    def tell_admins(self, report: reports.Report) -> int:
        """Send `report` to each admin directly (never into a channel); returns how many it reached."""
        ...
