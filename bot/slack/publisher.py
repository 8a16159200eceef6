"""Posts the learning loop's reports in Slack: the rendered message, then its chart as a file.

`bot.runtime` hands a `SlackPublisher` to the loop, which sees it only as its `Publisher`
protocol (`bot.loop.publisher`), so neither room imports the other.
"""

from __future__ import annotations

import logging
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import reports
from bot.slack import blocks


log = logging.getLogger(__name__)


class SlackPublisher:
    def __init__(self, client: WebClient, admins: Callable[[], list[str]] | None = None) -> None:
        self.client = client
        self.admins = admins  # the admins' user ids (listed and user group), asked at each use

    def publish(self, channel: str, report: reports.Report) -> None:
        """Post `report` in `channel`; a Slack error is raised to the loop, which logs it."""
        message = blocks.message(report)
        self.client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks, thread_ts=message.thread_ts
        )
        chart = report.chart if isinstance(report, (reports.RoundReport, reports.Digest)) else None
        if chart is not None:
            self.client.files_upload_v2(channel=channel, content=chart.png, filename=chart.filename, title=chart.title)

    def tell_admins(self, report: reports.Report) -> int:
        """A direct message to each admin; one Slack cannot reach does not stop the others. Raises
        when no admin could be reached (the caller tries again later), returns how many were."""
        admins = self.admins() if self.admins is not None else []
        message = blocks.message(report)
        reached, errors = 0, []
        for admin in admins:
            try:
                opened = self.client.conversations_open(users=admin)
                direct = str(opened["channel"]["id"])
                self.client.chat_postMessage(channel=direct, text=message.text, blocks=message.blocks)
                reached += 1
            except SlackApiError as exc:
                errors.append(str(exc.response.get("error")))
                log.warning("could not tell admin %s: %s", admin, exc.response.get("error"))
        if admins and not reached:
            raise RuntimeError(f"no admin could be reached: {', '.join(errors)}")
        return reached
