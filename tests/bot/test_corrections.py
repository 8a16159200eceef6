"""Corrections by reaction, menu and buttons; withdrawal; the per-user hourly cap."""

from __future__ import annotations

import storage
from bot.slack import blocks
from tests.bot.conftest import ADMIN, MOOD_CHANNEL, SUPPORT_CHANNEL, USER, BotUnderTest, corrections, wait_until


def _predicted(bot: BotUnderTest, ts: str, text: str = "where is my new card") -> tuple[int, str, str]:
    """Post a message, wait for the bot's reply; (message id, predicted label, reply ts)."""
    bot.send_message(text, ts)
    reply = bot.fake.wait_for("chat.postMessage")[-1]
    message = storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts=ts)
    prediction = wait_until(
        lambda: storage.messages.find_prediction_by_reply(
            bot.db, channel=SUPPORT_CHANNEL, reply_ts=reply.response["ts"]
        ),
        what="reply linked",
    )
    return message.id, prediction.label, reply.response["ts"]


def _menu_action(message_id: int, label: str, task: str = "support") -> dict:
    return {
        "type": "external_select",
        "action_id": blocks.CORRECT_MENU,
        "block_id": blocks.block_id_for(message_id),
        "selected_option": {"value": blocks.encode_value(task, label)},
    }


def test_reaction_added_then_removed_withdraws(bot: BotUnderTest) -> None:
    bot.send_message("i love this app", "1700000030.000100", channel=MOOD_CHANNEL)
    bot.fake.wait_for("chat.postMessage")
    bot.send_reaction("smile", MOOD_CHANNEL, "1700000030.000100")
    row = wait_until(lambda: corrections(bot.db, source="reaction"), what="correction stored")[0]
    assert (row["task"], row["label"], row["user"], row["withdrawn_at"]) == ("mood", "positive", USER, None)
    bot.send_reaction("smile", MOOD_CHANNEL, "1700000030.000100", kind="reaction_removed")
    wait_until(lambda: corrections(bot.db, source="reaction")[0]["withdrawn_at"], what="withdrawn")
    assert storage.resolution.resolve_labels(bot.db, "mood").labelled == []


def test_check_mark_on_the_reply_confirms_the_label(bot: BotUnderTest) -> None:
    message_id, label, reply_ts = _predicted(bot, "1700000031.000100")
    bot.send_reaction("white_check_mark::skin-tone-3", SUPPORT_CHANNEL, reply_ts)
    row = wait_until(lambda: corrections(bot.db, source="confirm"), what="confirmation")[0]
    assert (row["message_id"], row["label"]) == (message_id, label)


def test_cross_rejects_and_sends_the_menu_to_that_user_alone(bot: BotUnderTest) -> None:
    message_id, label, _ = _predicted(bot, "1700000032.000100")
    bot.send_reaction("x", SUPPORT_CHANNEL, "1700000032.000100")
    prompt = bot.fake.wait_for("chat.postEphemeral")[0].params
    assert prompt["user"] == USER and prompt["channel"] == SUPPORT_CHANNEL
    assert prompt["blocks"][1]["block_id"] == blocks.block_id_for(message_id)
    assert corrections(bot.db, source="reject")[0]["label"] == label
    # Choosing from that ephemeral menu answers through its response_url, not chat.update.
    bot.send_action(_menu_action(message_id, "refund"), ephemeral=True)
    answer = bot.fake.wait_for("response_url")[0].params
    assert answer["replace_original"] is True and "refund" in answer["text"]
    assert corrections(bot.db, source="menu")[0]["label"] == "refund"


def test_menu_choice_stores_correction_and_updates_the_reply(bot: BotUnderTest) -> None:
    message_id, _, reply_ts = _predicted(bot, "1700000033.000100")
    bot.send_action(_menu_action(message_id, "feelings"), message_ts=reply_ts)
    update = bot.fake.wait_for("chat.update")[0].params
    assert (update["channel"], update["ts"]) == (SUPPORT_CHANNEL, reply_ts)
    assert update["text"].startswith(f"Corrected to *feelings* by <@{USER}>")
    row = corrections(bot.db, source="menu")[0]
    assert (row["message_id"], row["label"], row["is_admin"]) == (message_id, "feelings", 0)


def test_right_button_and_guess_button(bot: BotUnderTest) -> None:
    message_id, label, reply_ts = _predicted(bot, "1700000034.000100")
    bot.send_action(
        {
            "type": "button",
            "action_id": blocks.CONFIRM_BUTTON,
            "block_id": blocks.block_id_for(message_id),
            "value": blocks.encode_value("support", label),
        },
        message_ts=reply_ts,
        user=ADMIN,
    )
    assert "confirmed by" in bot.fake.wait_for("chat.update")[0].params["text"]
    bot.send_action(
        {
            "type": "button",
            "action_id": f"{blocks.GUESS_BUTTON}_2",
            "block_id": blocks.block_id_for(message_id),
            "value": "support|refund",
        },
        message_ts=reply_ts,
    )
    bot.fake.wait_for("chat.update", 2)
    rows = corrections(bot.db)
    assert [(r["source"], r["label"], r["is_admin"]) for r in rows] == [("confirm", label, 1), ("menu", "refund", 0)]


def test_stale_choice_gets_an_ephemeral_notice(bot: BotUnderTest) -> None:
    bot.send_action(_menu_action(999, "not_a_label"), message_ts="1.2")
    assert "out of date" in bot.fake.wait_for("response_url")[0].params["text"]
    assert corrections(bot.db) == []


def test_hourly_cap_stores_nothing_beyond_it(bot: BotUnderTest) -> None:
    message_id, _, reply_ts = _predicted(bot, "1700000035.000100")
    for i in range(5):  # corrections_per_hour = 5
        bot.send_action(_menu_action(message_id, ["refund", "feelings"][i % 2]), message_ts=reply_ts)
        bot.fake.wait_for("chat.update", i + 1)
    bot.send_action(_menu_action(message_id, "card_arrival"), message_ts=reply_ts)
    notice = bot.fake.wait_for("response_url")[0].params
    assert notice["response_type"] == "ephemeral" and "5 corrections this hour" in notice["text"]
    bot.send_reaction("white_check_mark", SUPPORT_CHANNEL, reply_ts)
    assert "5 corrections this hour" in bot.fake.wait_for("chat.postEphemeral")[0].params["text"]
    assert len(corrections(bot.db)) == 5
    assert len(bot.fake.calls_of("chat.update")) == 5
    bot.send_action(_menu_action(message_id, "card_arrival"), message_ts=reply_ts, user=ADMIN)  # others still can
    bot.fake.wait_for("chat.update", 6)
    assert len(corrections(bot.db)) == 6


def test_a_correction_tells_the_learning_loop(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir) -> None:
    """With a threshold of one label, the first correction schedules a debounced round."""
    from datetime import datetime, timedelta, timezone

    from bot.settings import LearningSettings
    from tests.bot.conftest import running_bot

    with running_bot(
        tmp_path,
        fake_slack,
        tiny_bert_dir,
        support_adapter_dir,
        with_learning=True,
        learning=LearningSettings(threshold_new_labels=1, debounce_s=600),
    ) as bot:
        loop = bot.runtime.loop
        assert loop is not None
        nightly = loop.next_run_time("support")
        message_id, _, reply_ts = _predicted(bot, "1700000036.000100")
        bot.send_action(_menu_action(message_id, "refund"), message_ts=reply_ts)
        bot.fake.wait_for("chat.update")
        soon = datetime.now(timezone.utc) + timedelta(seconds=601)
        wait_until(lambda: loop.next_run_time("support") < min(nightly, soon), what="threshold round scheduled")


def test_reaction_on_a_reply_not_yet_linked_waits_for_the_link(bot: BotUnderTest) -> None:
    # The bot posts its reply, then stores the reply's ts: a fast reaction can land in between.
    message_id = storage.messages.record_message(
        bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts="1700000039.000100", text="where is my card", user=USER
    )
    prediction_id = storage.messages.record_prediction(
        bot.db,
        storage.NewPrediction(
            message_id=message_id,
            task="support",
            adapter_version=1,
            label="card_arrival",
            confidence=0.9,
            top3=[("card_arrival", 0.9)],
            latency_ms=5.0,
        ),
    ).id
    bot.send_reaction("white_check_mark", SUPPORT_CHANNEL, "1700000039.000900")
    storage.messages.set_prediction_reply(bot.db, prediction_id, channel=SUPPORT_CHANNEL, reply_ts="1700000039.000900")
    row = wait_until(lambda: corrections(bot.db, source="confirm"), what="confirmation")[0]
    assert (row["message_id"], row["label"]) == (message_id, "card_arrival")
