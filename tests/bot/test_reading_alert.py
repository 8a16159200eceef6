"""Admins are told once, by direct message, when the base model cannot read a channel."""

from __future__ import annotations

import storage
from bot.loop import reading_alert
from tests.bot.conftest import ADMIN, SUPPORT_CHANNEL, BotUnderTest

CHINESE = ["我的卡还没到，什么时候能收到？", "退款失败了，钱被扣了两次", "<@U0BOB> 请帮我查一下新卡 :pray:"]


def _store(bot: BotUnderTest, texts: list[str], first_ts: int = 1700000500) -> None:
    for i, text in enumerate(texts):
        storage.messages.record_message(
            bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts=f"{first_ts + i}.000100", text=text, user="U0A"
        )


def _dms(bot: BotUnderTest) -> list[str]:
    opened = bot.fake.calls_of("conversations.open")
    ims = {c.response["channel"]["id"] for c in opened if c.response.get("ok", True) and "channel" in c.response}
    return [str(c.params["text"]) for c in bot.fake.calls_of("chat.postMessage") if c.params["channel"] in ims]


def test_admins_get_one_direct_message_per_unreadable_channel(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    loop = bot.runtime.loop
    assert loop is not None
    job = loop.triggers.scheduler.get_job("reading")
    assert job is not None and job.trigger.interval.total_seconds() == reading_alert.CHECK_EVERY_S
    _store(bot, ["where is my new card", "refund charged twice"])
    assert loop.reading_now() == [] and _dms(bot) == []  # English: the tiny English base reads it

    _store(bot, CHINESE * 2, first_ts=1700000600)
    assert loop.reading_now() == [SUPPORT_CHANNEL]
    assert {c.params["users"] for c in bot.fake.calls_of("conversations.open")} == {ADMIN}
    [text] = _dms(bot)
    assert f"<#{SUPPORT_CHANNEL}>" in text and "task *support*" in text
    assert "characters unknown to the base (Han" in text and "above the alert of 10%" in text
    assert "[model] unknown_chars_alert" in text and "README.md#teams-writing-other-languages" in text
    # Sent once: the next hourly check (and a restart: it is in the database) stays silent.
    assert loop.reading_now() == [] and len(_dms(bot)) == 1
    kind = reading_alert.notice_kind(bot.predictors.base())
    assert storage.notices.notice_sent(bot.db, kind, "support", SUPPORT_CHANNEL)
    # No message of the channel is quoted to the admins, only the share and scripts.
    assert not any(fragment in text for fragment in ("卡还没到", "退款"))


def test_a_notice_slack_did_not_deliver_is_sent_at_the_next_check(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    loop = bot.runtime.loop
    assert loop is not None
    _store(bot, CHINESE * 2)
    bot.fake.refuse_next("conversations.open", "ratelimited")
    assert loop.reading_now() == []
    kind = reading_alert.notice_kind(bot.predictors.base())
    assert not storage.notices.notice_sent(bot.db, kind, "support", SUPPORT_CHANNEL)
    assert loop.reading_now() == [SUPPORT_CHANNEL] and len(_dms(bot)) == 1


def test_a_channel_with_little_text_is_shown_but_not_messaged_about(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    assert bot.runtime.loop is not None
    _store(bot, ["你好"])
    assert bot.runtime.loop.reading_now() == [] and _dms(bot) == []
