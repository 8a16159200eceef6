"""The optional daily digest for admins, posted in each of the task's channels with
only that channel's disputed messages, the week's most confused labels and a coverage chart."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import storage
from tests.bot.conftest import (
    SUPPORT_CHANNEL,
    SUPPORT_LABELS,
    USER,
    BotUnderTest,
    default_tasks,
    running_bot,
    wait_until,
)

OTHER = "C0OTHER"


@pytest.fixture()
def digest_bot(tmp_path: Path, fake_slack, tiny_bert_dir: Path, support_adapter_dir: Path) -> Iterator[BotUnderTest]:
    with running_bot(
        tmp_path,
        fake_slack,
        tiny_bert_dir,
        support_adapter_dir,
        with_learning=True,
        tasks=default_tasks(digest=True),
    ) as running:
        yield running


def _posted(bot: BotUnderTest, text: str, ts: str, channel: str = SUPPORT_CHANNEL) -> storage.StoredPrediction:
    bot.send_message(text, ts, channel=channel)
    message = wait_until(lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=channel, ts=ts))
    return wait_until(lambda: storage.messages.latest_prediction(bot.db, message.id, "support"))


def _dispute(bot: BotUnderTest, message_id: int) -> None:
    for user, label in ((USER, SUPPORT_LABELS[0]), ("U0BOB", SUPPORT_LABELS[1])):
        storage.corrections.add_correction(
            bot.db, message_id=message_id, task="support", label=label, source="menu", user=user
        )


def test_digest_posts_confusions_this_channels_disputes_and_a_chart(digest_bot: BotUnderTest) -> None:
    bot = digest_bot
    job = bot.runtime.loop.triggers.scheduler.get_job("digest", jobstore="volatile")
    assert job is not None and str(job.trigger).startswith("cron[")  # posted every morning
    storage.tasks.bind_channel(bot.db, "support", OTHER)
    wrong = _posted(bot, "refund charged twice", "1700000900.000100")
    truth = next(label for label in SUPPORT_LABELS if label != wrong.label)
    storage.corrections.add_correction(
        bot.db, message_id=wrong.message_id, task="support", label=truth, source="menu", user=USER
    )
    _dispute(bot, _posted(bot, "where is my new card", "1700000901.000100").message_id)
    _dispute(bot, _posted(bot, "SECRET other channel fee", "1700000902.000100", channel=OTHER).message_id)
    bot.fake.wait_for("chat.postMessage", 3)  # the bot's own answers to the three messages
    before = len(bot.fake.calls_of("chat.postMessage"))

    assert bot.runtime.loop.digest_now() == [SUPPORT_CHANNEL, OTHER]
    posts = [c for c in bot.fake.wait_for("chat.postMessage", before + 2) if "daily digest" in c.params["text"]]
    here = next(c.params["text"] for c in posts if c.params["channel"] == SUPPORT_CHANNEL)
    there = next(c.params["text"] for c in posts if c.params["channel"] == OTHER)
    assert f"`{truth}` -> `{wrong.label}`: " in here  # disputed messages have a winning label too
    assert "where is my new card" in here and "SECRET" not in here  # never another channel's text
    assert "SECRET other channel fee" in there and "where is my new card" not in there
    assert "v1: answered" in here
    bot.fake.wait_for("files.completeUploadExternal", 2)
    assert all(body.startswith(b"\x89PNG") for body in bot.fake.uploads.values())


def test_no_digest_unless_configured(bot_with_learning: BotUnderTest) -> None:
    assert bot_with_learning.runtime.loop.digest_now() == []
