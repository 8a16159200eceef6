"""Tell admins, once, when the base model cannot read what a channel writes.

Every hour each bound channel's newest messages are read by the base's tokenizer
(`bot.reading`); a channel whose unknown-character share is above `[model] unknown_chars_alert`
gets one direct message to each admin, naming the channel, the share, the setting and the README
section. The notice is remembered in the database under the base's tag (`storage.notices`), so
it is sent once per task, channel and base: no restart or later check repeats it, and a new base
that still cannot read the channel is reported again.
"""

from __future__ import annotations

import logging

from sqlite_utils import Database

import camel
import storage
from bot import reading, reports, texts
from bot.loop.publisher import Publisher
from bot.settings import Settings

log = logging.getLogger(__name__)
CHECK_EVERY_S = 3600.0
# Fewer characters than this say too little about a channel's language to message admins over
# (doctor and /camel stats still show the share).
MIN_CHARACTERS = 30


def notice_kind(base: camel.BaseEncoder) -> str:
    return f"unreadable:{base.fingerprint[:16]}"


def alert_pass(db: Database, settings: Settings, base: camel.BaseEncoder, publisher: Publisher) -> list[str]:
    """Message admins about each channel newly above the alert; returns those channels."""
    if storage.lifecycle.list_workspace_stops(db):
        return []  # the app was uninstalled or its token revoked: nobody can be told
    alert, kind = settings.model.unknown_chars_alert, notice_kind(base)
    told: list[str] = []
    for task in storage.tasks.list_tasks(db):
        for channel in task.channels:
            if storage.notices.notice_sent(db, kind, task.name, channel):
                continue
            found = reading.read_channel(db, base, task.name, channel)
            if found.reading.characters < MIN_CHARACTERS or not found.passes(alert):
                continue
            text = texts.unreadable_channel(task.name, channel, reading.summary(found), alert, reading.HELP_SECTION)
            try:
                reached = publisher.tell_admins(reports.Notice(text))
            except Exception as exc:  # Slack down: the notice is not marked, the next check tries again
                log.warning("could not tell admins that the base cannot read %s: %s", channel, exc)
                continue
            if reached:  # with no admin configured there is nobody to tell yet
                storage.notices.mark_notice_sent(db, kind, task.name, channel, reading.summary(found))
                told.append(channel)
    return told
