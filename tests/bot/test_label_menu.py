"""The label menu: an external_select whose options the bot serves in the acknowledgement of
Slack's block_suggestion (the published payload, signed), for any number of labels; clicks on
replies posted before a rename or merge are stored under today's name."""

from __future__ import annotations

import json

import storage
from bot.slack import blocks
from tests.bot.conftest import ADMIN, SUPPORT_CHANNEL, SUPPORT_LABELS, USER, BotUnderTest, corrections, wait_until
from tests.bot.published import send_suggestion

MANY = [f"intent_{i:03d}" for i in range(150)]


def _reply(bot: BotUnderTest, ts: str, text: str = "where is my new card") -> tuple[int, str, dict]:
    """Post a message and wait for the bot's reply: (message id, reply ts, the reply's actions block)."""
    bot.send_message(text, ts)
    reply = bot.fake.wait_for("chat.postMessage")[-1]
    message = wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts=ts),
        what="message stored",
    )
    wait_until(lambda: storage.messages.latest_prediction(bot.db, message.id, "support"), what="prediction")
    block = next(b for b in reply.params["blocks"] if b["type"] == "actions")
    return message.id, str(reply.response["ts"]), block


def _ask(bot: BotUnderTest, block: dict, reply_ts: str, value: str, user: str = USER, channel: str = SUPPORT_CHANNEL):
    status, answer = send_suggestion(
        bot,
        action_id=blocks.CORRECT_MENU,
        block_id=block["block_id"],
        value=value,
        user=user,
        channel=channel,
        message_ts=reply_ts,
    )
    assert status == 200
    return answer["options"]


def test_every_one_of_150_labels_can_be_found_within_slacks_limits(bot: BotUnderTest) -> None:
    storage.tasks.add_labels(bot.db, "support", MANY)
    storage.tasks.set_description(bot.db, "support", "intent_149", "crypto withdrawal " + "x" * 150)
    _, reply_ts, block = _reply(bot, "1700000200.000100")
    menu = next(e for e in block["elements"] if e["action_id"] == blocks.CORRECT_MENU)
    assert menu["type"] == "external_select" and menu["min_query_length"] == 0 and "options" not in menu

    opened = _ask(bot, block, reply_ts, "")
    assert len(opened) == 100 and opened[-1]["value"] == "support|__new_label__"
    assert opened[-1]["text"]["text"] == "New label…"
    for option in opened:
        assert len(option["text"]["text"]) <= 75 and len(option["value"]) <= 150
    # typed: the 150th label, found by name and by a word of its description
    assert [o["value"] for o in _ask(bot, block, reply_ts, "intent_149")][0] == "support|intent_149"
    by_description = _ask(bot, block, reply_ts, "crypto withdr")
    assert by_description[0]["value"] == "support|intent_149"
    assert len(by_description[0]["description"]["text"]) == 75
    assert [o["value"] for o in _ask(bot, block, reply_ts, "no such thing")] == ["support|__new_label__"]


def test_a_request_from_another_channel_gets_no_options(bot: BotUnderTest) -> None:
    _, reply_ts, block = _reply(bot, "1700000201.000100")
    assert _ask(bot, block, reply_ts, "", channel="C0ELSEWHERE") == []


def test_new_label_is_offered_only_to_those_the_task_lets_create_labels(bot: BotUnderTest) -> None:
    storage.labels.set_policy(bot.db, "support", "admins")
    _, reply_ts, block = _reply(bot, "1700000202.000100")
    assert "support|__new_label__" not in [o["value"] for o in _ask(bot, block, reply_ts, "")]
    assert _ask(bot, block, reply_ts, "", user=ADMIN)[-1]["value"] == "support|__new_label__"


def test_old_buttons_and_menus_follow_a_rename_and_a_retired_label_is_refused(bot: BotUnderTest) -> None:
    message_id, reply_ts, block = _reply(bot, "1700000203.000100")
    old, gone = SUPPORT_LABELS[0], SUPPORT_LABELS[1]
    storage.labels.change(bot.db, "support", "rename", ADMIN, old, "renamed_one")
    storage.labels.change(bot.db, "support", "retire", ADMIN, gone)
    offered = [o["value"] for o in _ask(bot, block, reply_ts, "")]
    assert "support|renamed_one" in offered and f"support|{old}" not in offered and f"support|{gone}" not in offered
    click = {"action_id": blocks.CORRECT_MENU, "block_id": block["block_id"]}
    bot.send_action({**click, "selected_option": {"value": f"support|{old}"}}, message_ts=reply_ts)
    stored = wait_until(lambda: corrections(bot.db, source="menu"), what="correction")
    assert (stored[0]["message_id"], stored[0]["label"]) == (message_id, "renamed_one")
    bot.send_action({**click, "selected_option": {"value": f"support|{gone}"}}, message_ts=reply_ts)
    answer = bot.fake.wait_for("response_url")[0].params
    assert "out of date" in json.dumps(answer)
