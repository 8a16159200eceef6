"""Tells a task's channel what the loop did: round reports with a chart, and reload failures.

Everything leaves as a neutral report (`bot.reports`) through the `Publisher` the loop was given
(see `bot.runtime`), so nothing here knows Slack; a Slack outage is logged and never fails a round.
"""

from __future__ import annotations

import logging

from sqlite_utils import Database

import storage
from bot import reports
from bot.loop.options import RoundSummary, summary_path
from bot.loop.publisher import Publisher
from bot.loop.registry import ReloadNotice
from bot.loop.round_report import build_report, metric_chart
from bot.settings import Settings

log = logging.getLogger(__name__)


class Reporter:
    def __init__(self, settings: Settings, db: Database, publisher: Publisher | None = None) -> None:
        self.settings, self.db, self.publisher = settings, db, publisher
        self._reported: set[str] = set()

    def _channel(self, task: str) -> str | None:
        """The task's first channel whose binding is not paused; None once the app was uninstalled
        (a post would only be refused, again and again)."""
        if storage.lifecycle.list_workspace_stops(self.db):
            return None
        record = storage.tasks.get_task(self.db, task)
        paused = {pause.channel for pause in storage.lifecycle.list_channel_pauses(self.db)}
        return next((c for c in record.channels if c not in paused), None) if record else None

    def summary(self, run: storage.TrainingRun) -> RoundSummary:
        """The child's summary file, or what the database knows when the child left none."""
        try:
            return RoundSummary.read(summary_path(self.settings.data_dir, run.id))
        except (OSError, ValueError, TypeError):
            return RoundSummary.from_run(run)

    def round_done(self, task: str, run: storage.TrainingRun) -> None:
        channel = self._channel(task)
        if not (self.settings.learning.report_to_channel and self.publisher and channel):
            return
        if run.outcome == "skipped":
            return  # a night with nothing new to learn is not news
        try:
            chart = None
            if run.outcome in ("promoted", "rejected"):  # a failed round changed no metric
                png = metric_chart(storage.adapters.list_adapters(self.db, task))
                chart = reports.Chart(png, f"{task}-macro-f1.png", f"{task}: macro-F1 across versions")
            self.publisher.publish(channel, build_report(self.summary(run), chart))
        except Exception:  # Slack being down must not fail the round that already happened
            log.exception("could not post the round report for %s", task)

    def reload_failures(self, notices: list[ReloadNotice]) -> None:
        """Tell each task's channel what it serves after a load failure, in one message, once."""
        for notice in notices:
            if notice.text not in self._reported:
                self._reported.add(notice.text)
                self._tell_admins(notice.task, notice.text)

    def _tell_admins(self, task: str, text: str) -> None:
        channel = self._channel(task)
        if self.publisher and channel and self.settings.learning.report_to_channel:
            try:
                self.publisher.publish(channel, reports.Notice(text))
            except Exception:
                log.exception("could not report a reload failure for %s", task)
