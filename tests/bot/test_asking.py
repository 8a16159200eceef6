"""Asking in the thread, sparingly (ask_per_day): the most useful of the last day's
messages first, never more than the budget per channel per day, never twice about one message;
answers are corrections with source "ask". The real loop, Bolt app and fake Web API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

import storage
from tests.bot.published import menu_options
from bot.loop.asking import margin_usefulness
from storage import db as storage_db
from tests.bot.conftest import USER, BotUnderTest, corrections, default_tasks, running_bot, wait_until

TEXTS = ["refund charged twice", "where is my new card", "great love happy", "fee money failed", "card come yet"]


@pytest.fixture()
def asking_bot(tmp_path: Path, fake_slack, tiny_bert_dir: Path, support_adapter_dir: Path) -> Iterator[BotUnderTest]:
    with running_bot(
        tmp_path,
        fake_slack,
        tiny_bert_dir,
        support_adapter_dir,
        with_learning=True,
        tasks=default_tasks(ask_per_day=2),
    ) as running:
        yield running


def _post_all(bot: BotUnderTest) -> dict[int, float]:
    """Post the texts; returns message id -> usefulness of its stored prediction."""
    usefulness = {}
    for i, text in enumerate(TEXTS):
        ts = f"17000008{i:02d}.000100"
        bot.send_message(text, ts)
        message = wait_until(
            lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel="C0SUPPORT", ts=ts)
        )
        stored = wait_until(lambda: storage.messages.latest_prediction(bot.db, message.id, "support"))
        usefulness[message.id] = margin_usefulness(stored.top3)
    bot.fake.wait_for("chat.postMessage", len(TEXTS))
    return usefulness


def test_asks_the_most_useful_within_the_daily_budget_and_never_twice(asking_bot: BotUnderTest) -> None:
    bot, loop = asking_bot, asking_bot.runtime.loop
    assert loop.triggers.scheduler.get_job("ask", jobstore="volatile") is not None  # the hourly pass
    usefulness = _post_all(bot)
    first = loop.ask_now()
    ranked = sorted(usefulness, key=lambda m: (-usefulness[m], m))
    assert first == ranked[:2]
    questions = bot.fake.calls_of("chat.postMessage")[len(TEXTS) :]
    assert len(questions) == 2
    for call, message_id in zip(questions, first):
        message = storage.messages.get_message(bot.db, message_id)
        assert call.params["thread_ts"] == message.ts and call.params["channel"] == "C0SUPPORT"
        assert call.params["blocks"][1]["block_id"] == f"camel_msg_{message_id}"
    assert loop.ask_now() == []  # the channel's budget for today is spent

    # A day later: the budget is back, but the messages already asked are never asked again.
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1, minutes=1)).isoformat()
    with storage_db.transaction(bot.db) as conn:
        conn.execute("UPDATE asked SET asked_at = ?", (yesterday,))
    second = loop.ask_now()
    assert second == ranked[2:4] and not set(second) & set(first)

    # Answering the question is a correction with source "ask".
    call = questions[0]
    menu = call.params["blocks"][1]["elements"][-1]
    offered = menu_options(bot, call.params["blocks"], "C0SUPPORT", str(call.response["ts"]))
    bot.send_action(
        {
            "action_id": menu["action_id"],
            "block_id": call.params["blocks"][1]["block_id"],
            "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": offered[0]},
        },
        message_ts=str(call.response["ts"]),
    )
    stored = wait_until(lambda: corrections(bot.db, source="ask"), what="ask correction")
    assert (stored[0]["message_id"], stored[0]["user"]) == (first[0], USER)


def test_no_questions_when_ask_per_day_is_off(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    assert bot.runtime.loop.triggers.scheduler.get_job("ask", jobstore="volatile") is None
    _post_all(bot)
    assert bot.runtime.loop.ask_now() == []
    assert len(bot.fake.calls_of("chat.postMessage")) == len(TEXTS)
