"""Messages in bound channels: reply in thread, abstain, quiet mode, untrained task, filters."""

from __future__ import annotations

import pytest

import storage
from tests.bot.published import menu_options
from storage import db as storage_db
from bot.settings import ModelSettings
from tests.bot.conftest import (
    MOOD_CHANNEL,
    SUPPORT_CHANNEL,
    SUPPORT_LABELS,
    BotUnderTest,
    edit_event,
    running_bot,
    wait_until,
)


def _action_elements(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _prediction_for(bot: BotUnderTest, ts: str, task: str = "support"):
    message = wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts=ts),
        what="message stored",
    )
    return wait_until(lambda: storage.messages.latest_prediction(bot.db, message.id, task), what="prediction stored")


def test_prediction_is_stored_and_answered_in_thread(bot: BotUnderTest) -> None:
    bot.send_message("where is my new card", "1700000010.000100")
    call = bot.fake.wait_for("chat.postMessage")[0]
    prediction = _prediction_for(bot, "1700000010.000100")
    assert call.params["channel"] == SUPPORT_CHANNEL and call.params["thread_ts"] == "1700000010.000100"
    assert prediction.label in SUPPORT_LABELS and not prediction.abstained
    assert prediction.label in call.params["text"]
    elements = _action_elements(call.params["blocks"])
    offered = menu_options(bot, call.params["blocks"], SUPPORT_CHANNEL, call.response["ts"])
    # the guesses first, then every other label, then "New label…"
    assert offered[0] == f"support|{prediction.label}" and offered[-1] == "support|__new_label__"
    assert sorted(offered[:-1]) == sorted(f"support|{label}" for label in SUPPORT_LABELS)
    assert any(e["type"] == "button" and e["text"]["text"] == "right" for e in elements)
    wait_until(
        lambda: storage.messages.find_prediction_by_reply(
            bot.db, channel=SUPPORT_CHANNEL, reply_ts=call.response["ts"]
        ),
        what="reply linked",
    )


def test_below_threshold_abstains_with_top3_buttons(bot: BotUnderTest) -> None:
    storage.tasks.upsert_task(
        bot.db, storage.TaskSpec("support", kind="intent", labels=SUPPORT_LABELS, abstain_threshold=1.0)
    )
    bot.send_message("refund fee charged twice", "1700000011.000100")
    call = bot.fake.wait_for("chat.postMessage")[0]
    prediction = _prediction_for(bot, "1700000011.000100")
    assert prediction.abstained
    guesses = [e for e in _action_elements(call.params["blocks"]) if e["type"] == "button"]
    assert [e["value"].split("|")[1] for e in guesses] == [label for label, _ in prediction.top3]
    assert len(guesses) == 3 and "Not sure" in call.params["text"]


def test_quiet_task_answers_with_a_reaction_only(bot: BotUnderTest) -> None:
    storage.tasks.upsert_task(
        bot.db,
        storage.TaskSpec(
            "support",
            kind="intent",
            labels=SUPPORT_LABELS,
            quiet=True,
            abstain_threshold=0.0,
            emoji_map={
                "credit_card": "card_arrival",
                "money_with_wings": "refund",
                "heart": "feelings",
                "white_check_mark": "__confirm__",
                "x": "__reject__",
            },
        ),
    )
    bot.send_message("where is my new card", "1700000012.000100")
    reaction = bot.fake.wait_for("reactions.add")[0]
    prediction = _prediction_for(bot, "1700000012.000100")
    expected = {"card_arrival": "credit_card", "refund": "money_with_wings", "feelings": "heart"}[prediction.label]
    assert {k: reaction.params[k] for k in ("channel", "timestamp", "name")} == {
        "channel": SUPPORT_CHANNEL,
        "timestamp": "1700000012.000100",
        "name": expected,
    }
    assert bot.fake.calls_of("chat.postMessage") == []


def test_task_without_adapter_stores_message_and_asks_for_label(
    tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir
) -> None:
    # With zero-shot guesses turned off; with them on, see tests/bot/test_zero_shot_start.py.
    model = ModelSettings(base_model=str(tiny_bert_dir), trainable_layers=1, zero_shot=False)
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, model=model) as bot:
        bot.send_message("i love this app", "1700000013.000100", channel=MOOD_CHANNEL)
        call = bot.fake.wait_for("chat.postMessage")[0]
        assert call.params["channel"] == MOOD_CHANNEL and "Which label" in call.params["text"]
        offered = menu_options(bot, call.params["blocks"], MOOD_CHANNEL, call.response["ts"])
        assert offered == ["mood|negative", "mood|neutral", "mood|positive", "mood|__new_label__"]
        assert storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=MOOD_CHANNEL, ts="1700000013.000100")
        assert storage_db.rows(bot.db, "SELECT count(*) AS n FROM predictions")[0]["n"] == 0


def test_bots_edits_and_unbound_channels_are_ignored(bot: BotUnderTest) -> None:
    bot.send_message("card", "1700000014.000100", extra={"bot_id": "B0OTHER"})
    bot.send_message("card", "1700000015.000100", user="UCAMELBOT")
    bot.send_event(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": SUPPORT_CHANNEL,
            "ts": "1700000016.000200",
            "message": {"user": "U0ALICE", "text": "card", "ts": "1700000016.000100"},
        }
    )
    bot.send_message("card", "1700000017.000100", channel="C0NOTBOUND")
    bot.send_message("where is my card", "1700000018.000100")  # the one that counts
    bot.fake.wait_for("chat.postMessage")
    bot.wait_until_handled()
    assert [c.params["thread_ts"] for c in bot.fake.calls_of("chat.postMessage")] == ["1700000018.000100"]
    assert [r["ts"] for r in storage_db.rows(bot.db, "SELECT ts FROM messages")] == ["1700000018.000100"]


def test_long_message_is_stored_whole_and_truncated_for_prediction(bot: BotUnderTest) -> None:
    text = "refund " * 200  # 1400 characters, max_predict_chars is 40
    bot.send_message(text, "1700000019.000100")
    bot.fake.wait_for("chat.postMessage")
    stored = storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts="1700000019.000100")
    assert stored is not None and stored.text == text
    truncated = bot.predictors.get("support").answer([text[:40]])[0]
    # Calibration rescales in float64 (identity for this adapter), hence approx.
    assert _prediction_for(bot, "1700000019.000100").confidence == pytest.approx(truncated.confidence, abs=1e-6)


def test_rate_limited_reply_is_retried(bot: BotUnderTest) -> None:
    bot.fake.fail_next("chat.postMessage", times=1, retry_after=1)
    bot.send_message("where is my card", "1700000020.000100")
    bot.fake.wait_for("chat.postMessage", timeout=15)
    attempts = [c.status for c in bot.fake.calls if c.method == "chat.postMessage"]
    assert attempts == [429, 200]
    reply_ts = bot.fake.calls_of("chat.postMessage")[0].response["ts"]
    wait_until(lambda: _prediction_for(bot, "1700000020.000100").reply_ts == reply_ts, what="reply ts stored")


def test_edits_are_classified_when_configured(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir) -> None:
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, process_edits=True) as bot:
        bot.send_event(edit_event("refund charged twice", "1700000021.000100", "1700000021.000200"))
        reply = bot.fake.wait_for("chat.postMessage")[0]
        assert reply.params["thread_ts"] == "1700000021.000100"
        assert _prediction_for(bot, "1700000021.000100").label in SUPPORT_LABELS


def test_thread_replies_are_left_alone_unless_configured(
    bot: BotUnderTest, tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir
) -> None:
    reply = {"thread_ts": "1700000022.000100"}
    bot.send_message("thanks, where is my card", "1700000022.000200", extra=reply)
    bot.send_message("where is my card", "1700000023.000100")  # a top-level message, answered
    assert [c.params["thread_ts"] for c in bot.fake.wait_for("chat.postMessage")] == ["1700000023.000100"]
    bot.wait_until_handled()
    assert len(bot.fake.calls_of("chat.postMessage")) == 1

    with running_bot(
        tmp_path / "chatty", fake_slack, tiny_bert_dir, support_adapter_dir, classify_thread_replies=True
    ) as chatty:
        chatty.send_message("thanks, where is my card", "1700000024.000200", extra={"thread_ts": "1700000024.000100"})
        wait_until(lambda: len(fake_slack.calls_of("chat.postMessage")) == 2, what="thread reply answered")
        assert fake_slack.calls_of("chat.postMessage")[1].params["thread_ts"] == "1700000024.000100"
