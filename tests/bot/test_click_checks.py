"""A click is checked against its message, since a click's payload is the sender's to write: the
task, the message and the channel of the click must agree, and a click on a message that is not
stored tells the user."""

from __future__ import annotations

import storage
from bot.slack import blocks
from tests.bot.conftest import MOOD_CHANNEL, SUPPORT_CHANNEL, TEAM, USER, BotUnderTest, corrections
from tests.bot.published import send_click


def _menu(message_id: int, task: str, label: str) -> dict:
    return {
        "type": "static_select",
        "action_id": blocks.CORRECT_MENU,
        "block_id": blocks.block_id_for(message_id),
        "selected_option": {"value": blocks.encode_value(task, label)},
        "action_ts": "1700000200.000100",
    }


def _support_message(bot: BotUnderTest) -> int:
    return storage.messages.record_message(
        bot.db, workspace=TEAM, channel=SUPPORT_CHANNEL, ts="1700000200.000100", text="where is my card", user=USER
    )


def _answer(bot: BotUnderTest) -> dict:
    answer = bot.fake.wait_for("response_url")[0].params
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    return answer


def test_a_mood_click_from_the_mood_channel_on_a_support_message_is_refused(bot: BotUnderTest) -> None:
    message_id = _support_message(bot)
    assert (
        send_click(bot, _menu(message_id, "mood", "positive"), user=USER, channel=MOOD_CHANNEL, message_ts="1.2") == 200
    )
    assert "does not belong to this message" in _answer(bot)["text"]
    assert corrections(bot.db) == []
    assert bot.fake.calls_of("chat.update") == []


def test_a_support_click_sent_from_another_channel_is_refused(bot: BotUnderTest) -> None:
    message_id = _support_message(bot)
    assert (
        send_click(bot, _menu(message_id, "support", "refund"), user=USER, channel=MOOD_CHANNEL, message_ts="1.2")
        == 200
    )
    assert "does not belong to this message" in _answer(bot)["text"]
    assert corrections(bot.db) == []


def test_a_click_that_agrees_is_stored(bot: BotUnderTest) -> None:
    message_id = _support_message(bot)
    assert (
        send_click(bot, _menu(message_id, "support", "refund"), user=USER, channel=SUPPORT_CHANNEL, message_ts="1.2")
        == 200
    )
    bot.fake.wait_for("chat.update")
    assert [(r["message_id"], r["label"]) for r in corrections(bot.db)] == [(message_id, "refund")]


def test_a_click_on_a_message_that_is_not_stored_tells_the_user(bot: BotUnderTest) -> None:
    assert (
        send_click(bot, _menu(999_999, "support", "refund"), user=USER, channel=SUPPORT_CHANNEL, message_ts="1.2")
        == 200
    )
    assert "no longer stored" in _answer(bot)["text"]
    assert corrections(bot.db) == []
