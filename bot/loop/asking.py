"""Asking in the channel, sparingly: per task `ask_per_day` (0 = off).

Once an hour (`ASK_EVERY_S`), for each task that asks, the bot looks at the last 24 hours'
messages it could ask about (a prediction, no live correction, never asked before) and asks in
the thread of the most useful ones: the smallest margin between its two best calibrated
guesses first. `storage.review.record_ask` is the guard: never twice about one message, never more
than `ask_per_day` per channel in any 24 hours. The question is noted before it is posted, so a
failed post means one question fewer, never a repeated one.

The question leaves as data (`bot.reports.Question`) through the loop's `Publisher`; its blocks
are `bot.slack`'s business, so `bot.loop` never knows Slack's wire format.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlite_utils import Database

import storage
from bot import reports
from bot.loop.publisher import Publisher
from bot.settings import Settings

log = logging.getLogger(__name__)
ASK_EVERY_S = 3600.0


def margin_usefulness(top3: list[tuple[str, float]]) -> float:
    """1 - (best - second best) calibrated probability: high when two labels compete."""
    probabilities = sorted((p for _, p in top3), reverse=True) + [0.0, 0.0]
    return 1.0 - (probabilities[0] - probabilities[1])


def ask_pass(db: Database, settings: Settings, publisher: Publisher, now: datetime | None = None) -> list[int]:
    """Ask about the most useful recent messages of every asking task; returns the message ids asked."""
    since = (now or datetime.now(timezone.utc)) - timedelta(days=1)
    asked: list[int] = []
    for configured in settings.tasks:
        if configured.ask_per_day <= 0:
            continue
        task = storage.tasks.get_task(db, configured.name)
        if task is None or task.quiet:  # a quiet task never writes in the channel
            continue
        by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for candidate in storage.review.ask_candidates(db, task.name, since):
            if candidate["channel"] in task.channels:
                by_channel[candidate["channel"]].append(candidate)
        for channel, candidates in by_channel.items():
            if storage.lifecycle.channel_pause(db, channel) is not None:
                continue  # the bot was removed from the channel or it was archived
            candidates.sort(key=lambda c: (-margin_usefulness(c["top3"]), c["message_id"]))
            for candidate in candidates:
                if not storage.review.record_ask(
                    db,
                    task=task.name,
                    message_id=candidate["message_id"],
                    channel=channel,
                    limit_per_day=configured.ask_per_day,
                ):
                    break  # this channel's budget for the day is spent
                question = reports.Question(
                    thread_ts=candidate["thread_ts"] or candidate["ts"],
                    message_id=candidate["message_id"],
                    task=task.name,
                    labels=tuple(task.labels),
                    top3=tuple(candidate["top3"]),
                )
                try:
                    publisher.publish(channel, question)
                except Exception:  # noted as asked: a failed post is one question fewer, never a repeat
                    log.exception("asking about message %s in %s failed", candidate["message_id"], channel)
                    continue
                asked.append(candidate["message_id"])
    return asked
