"""`/camel my-data` and `/camel forget-me`, over signed HTTP against the fake
Slack Web API, with the real store and the real feature cache."""

from __future__ import annotations

import camel
import storage
from storage import db as storage_db
from bot.slack.listeners.privacy import FORGET_ME_BUTTON
from tests.bot.conftest import ADMIN, SUPPORT_CHANNEL, USER, BotUnderTest, wait_until


def _stored(bot: BotUnderTest, ts: str, text: str, user: str = USER) -> int:
    bot.send_message(text, ts, user=user)
    return wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts=ts),
        what="stored",
    ).id


def _answers(bot: BotUnderTest, count: int) -> list[dict]:
    return [c.params for c in bot.fake.wait_for("response_url", count)]


def _count(bot: BotUnderTest, sql: str, *params: object) -> int:
    return int(storage_db.rows(bot.db, sql, params)[0][0])


def test_my_data_counts_only_the_persons_own_messages_and_corrections(bot: BotUnderTest) -> None:
    mine = _stored(bot, "1700000101.000100", "refund charged twice")
    _stored(bot, "1700000102.000100", "card come arrival", user="U0BOB")
    storage.corrections.add_correction(
        bot.db, message_id=mine, task="support", label="refund", source="menu", user=USER
    )
    bot.send_command("my-data")
    answer = _answers(bot, 1)[0]
    assert answer["response_type"] == "ephemeral"
    assert "*1* of your messages and *1* of your corrections" in answer["text"]


def test_forget_me_asks_first_then_deletes_everywhere_with_an_audit_row(bot: BotUnderTest) -> None:
    text = "refund charged twice please"
    mine = _stored(bot, "1700000201.000100", text)
    other = _stored(bot, "1700000202.000100", "card come arrival", user="U0BOB")
    storage.corrections.add_correction(
        bot.db, message_id=mine, task="support", label="refund", source="menu", user=USER
    )
    bot.fake.wait_for("chat.postMessage", 2)  # both were predicted: their states are in the cache
    predictor = bot.predictors.get("support")
    assert predictor is not None
    predictor.flush()  # on disk too
    digest = camel.text_digest(text)
    assert any(
        k.startswith(digest) for k in camel.FeatureCache(predictor.cache.base, bot.settings.feature_cache_dir)._on_disk
    )

    bot.send_command("forget-me")
    prompt = _answers(bot, 1)[0]
    assert prompt["response_type"] == "ephemeral" and "*1* messages and *1* corrections" in prompt["text"]
    button = prompt["blocks"][1]["elements"][0]
    assert button["action_id"] == FORGET_ME_BUTTON and button["value"] == USER and "confirm" in button
    assert _count(bot, "SELECT COUNT(*) FROM messages WHERE user = ?", USER) == 1  # nothing deleted yet

    bot.send_action({"action_id": FORGET_ME_BUTTON, "value": USER, "type": "button"}, user=ADMIN, ephemeral=True)
    refused = _answers(bot, 2)[1]
    assert "Only the person who asked" in refused["text"]
    assert _count(bot, "SELECT COUNT(*) FROM messages WHERE user = ?", USER) == 1

    bot.send_action({"action_id": FORGET_ME_BUTTON, "value": USER, "type": "button"}, user=USER, ephemeral=True)
    done = _answers(bot, 3)[2]
    assert done["text"].startswith(":wastebasket: Deleted: 1 messages") and "WAL checkpointed" in done["text"]
    assert _count(bot, "SELECT COUNT(*) FROM messages WHERE user = ?", USER) == 0
    assert _count(bot, "SELECT COUNT(*) FROM corrections WHERE user = ?", USER) == 0
    assert storage.messages.get_message(bot.db, other) is not None
    actions = [(e.action, e.actor) for e in storage.events.list_audit(bot.db, limit=5)]
    assert ("delete_user_data", USER) in actions and ("slack.forget_me", USER) in actions
    on_disk = camel.FeatureCache(predictor.cache.base, bot.settings.feature_cache_dir)._on_disk
    assert not any(k.startswith(digest) for k in on_disk)
    assert not any(k.startswith(digest) for k in predictor.cache._memory)  # the serving process forgot too
    assert any(k.startswith(camel.text_digest("card come arrival")) for k in on_disk)


def test_forget_me_with_nothing_stored_says_so(bot: BotUnderTest) -> None:
    bot.send_command("forget-me", user="U0NOBODY")
    answer = _answers(bot, 1)[0]
    assert "nothing to delete" in answer["text"] and "blocks" not in answer
