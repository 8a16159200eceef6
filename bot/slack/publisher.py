"""Posts the learning loop's reports in Slack: the rendered message, then its chart as a file.

`bot.runtime` hands a `SlackPublisher` to the loop, which sees it only as its `Publisher`
protocol (`bot.loop.publisher`), so neither room imports the other.
"""

from __future__ import annotations

from slack_sdk import WebClient

from bot import reports
from bot.slack import blocks


class SlackPublisher:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def publish(self, channel: str, report: reports.Report) -> None:
        """Post `report` in `channel`; a Slack error is raised to the loop, which logs it."""
        message = blocks.message(report)
        self.client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks, thread_ts=message.thread_ts
        )
        chart = report.chart if isinstance(report, (reports.RoundReport, reports.Digest)) else None
        if chart is not None:
            self.client.files_upload_v2(channel=channel, content=chart.png, filename=chart.filename, title=chart.title)
