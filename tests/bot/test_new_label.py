"""A new label from the correction: "New label…" opens a modal (views.open with the click's
trigger_id), the published view_submission is answered in the ack (errors for bad names), and
by the task's new_labels the label is created at once or proposed to the admins."""

from __future__ import annotations

import json
from typing import Any

import storage
from bot.slack import blocks
from tests.bot.conftest import ADMIN, SUPPORT_CHANNEL, SUPPORT_LABELS, USER, BotUnderTest, corrections, wait_until
from tests.bot.published import send_view_submission


def _reply(bot: BotUnderTest, ts: str) -> tuple[int, str, dict]:
    bot.send_message("where is my new card", ts)
    reply = bot.fake.wait_for("chat.postMessage")[-1]
    message = wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts=ts),
        what="message stored",
    )
    wait_until(lambda: storage.messages.latest_prediction(bot.db, message.id, "support"), what="prediction")
    block = next(b for b in reply.params["blocks"] if b["type"] == "actions")
    return message.id, str(reply.response["ts"]), block


def _open_modal(bot: BotUnderTest, block: dict, reply_ts: str, user: str = USER, count: int = 1) -> dict[str, Any]:
    bot.send_action(
        {
            "action_id": blocks.CORRECT_MENU,
            "block_id": block["block_id"],
            "selected_option": {"value": blocks.encode_value("support", blocks.NEW_LABEL)},
        },
        user=user,
        message_ts=reply_ts,
    )
    call = bot.fake.wait_for("views.open", count)[count - 1]
    assert call.params["trigger_id"] == "1.2.3"  # the click's own trigger id
    view = call.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["type"] == "modal" and view["callback_id"] == blocks.NEW_LABEL_VIEW
    assert len(view["title"]["text"]) <= 24
    return view


def _typed(name: str, description: str = "sending coins out of the account") -> dict[str, dict[str, str]]:
    return {
        blocks.NAME_BLOCK: {blocks.NAME_INPUT: name},
        blocks.DESCRIPTION_BLOCK: {blocks.DESCRIPTION_INPUT: description},
    }


def test_a_member_creates_a_label_while_correcting_and_the_bot_predicts_it_at_once(bot: BotUnderTest) -> None:
    storage.labels.set_policy(bot.db, "support", "members")
    message_id, reply_ts, block = _reply(bot, "1700000300.000100")
    view = _open_modal(bot, block, reply_ts)
    status, answer = send_view_submission(bot, view, _typed("crypto_withdrawal"), user=USER)
    assert status == 200 and answer == {}  # the modal closes
    task = storage.tasks.get_task(bot.db, "support")
    assert task.labels[-1] == "crypto_withdrawal"
    assert task.descriptions["crypto_withdrawal"] == "sending coins out of the account"
    stored = wait_until(lambda: corrections(bot.db, source="menu"), what="correction")
    assert (stored[0]["message_id"], stored[0]["label"], stored[0]["user"]) == (message_id, "crypto_withdrawal", USER)
    # the serving version predicts it now: a prototype row, no round, no restart
    serving = bot.runtime.predictors.serving("support")
    assert serving is not None and serving.predictor.label_plan().labels[-1] == "crypto_withdrawal"
    update = bot.fake.wait_for("chat.update")[-1].params
    assert update["ts"] == reply_ts and "crypto_withdrawal" in update["text"]
    assert [e.kind for e in storage.labels.history(bot.db, "support")] == ["add"]

    # the same modal submitted twice: nothing happens twice
    status, answer = send_view_submission(bot, view, _typed("crypto_withdrawal"), user=USER)
    assert status == 200 and answer == {}
    assert len(storage.labels.history(bot.db, "support")) == 1 and len(corrections(bot.db, source="menu")) == 1


def test_bad_names_are_answered_in_the_modal(bot: BotUnderTest) -> None:
    storage.labels.set_policy(bot.db, "support", "members")
    storage.labels.change(bot.db, "support", "rename", ADMIN, SUPPORT_LABELS[0], "renamed_one")
    _, reply_ts, block = _reply(bot, "1700000301.000100")
    view = _open_modal(bot, block, reply_ts)
    cases = {
        "crypto withdrawal": "spaces",
        "a|b": "|",
        "__reject__": "reserved",
        "x" * 65: "at most",
        "renamed_one": "already a label",
        SUPPORT_LABELS[0]: "cannot be reused",
        "__mine": "kept for the bot's own actions",
    }
    for name, reason in cases.items():
        status, answer = send_view_submission(bot, view, _typed(name), user=USER)
        assert status == 200 and answer["response_action"] == "errors", name
        assert reason in answer["errors"][blocks.NAME_BLOCK], (name, answer)
    status, answer = send_view_submission(bot, view, _typed("fine_name", "  "), user=USER)
    assert answer["response_action"] == "errors" and blocks.DESCRIPTION_BLOCK in answer["errors"]
    assert [e.kind for e in storage.labels.history(bot.db, "support")] == ["rename"]


def test_a_proposed_label_waits_for_the_first_admin(bot: BotUnderTest) -> None:
    bot.runtime.services.admins.admins.add("U0ADMIN2")  # two admins, both asked
    message_id, reply_ts, block = _reply(bot, "1700000302.000100")
    view = _open_modal(bot, block, reply_ts)
    status, answer = send_view_submission(bot, view, _typed("crypto_withdrawal"), user=USER)
    assert status == 200 and answer == {}
    assert "crypto_withdrawal" not in storage.tasks.get_task(bot.db, "support").labels
    asked = bot.fake.wait_for("chat.postMessage", 3)[1:3]
    assert {c.params["channel"] for c in asked} == {"DU0ADMIN", "DU0ADMIN2"}
    buttons = asked[0].params["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == [blocks.PROPOSAL_APPROVE, blocks.PROPOSAL_REJECT]
    waiting = bot.fake.wait_for("chat.postEphemeral")[-1].params
    assert waiting["user"] == USER and "waits" in waiting["text"]
    assert corrections(bot.db, source="menu") == []

    approve = {"action_id": blocks.PROPOSAL_APPROVE, "block_id": "p", "value": buttons[0]["value"]}
    reject = {"action_id": blocks.PROPOSAL_REJECT, "block_id": "p", "value": buttons[1]["value"]}
    first_dm, second_dm = asked[0].response, asked[1].response
    bot.send_action(approve, user="U0ADMIN2", channel=str(second_dm["channel"]), message_ts=str(second_dm["ts"]))
    stored = wait_until(lambda: corrections(bot.db, source="menu"), what="the member's correction")
    assert (stored[0]["message_id"], stored[0]["label"], stored[0]["user"]) == (message_id, "crypto_withdrawal", USER)
    assert storage.labels.history(bot.db, "support")[0].actor == "U0ADMIN2"
    updates = wait_until(lambda: [c for c in bot.fake.calls_of("chat.update") if "approved by" in c.params["text"]])
    assert {(u.params["channel"], u.params["ts"]) for u in updates} == {
        (first_dm["channel"], first_dm["ts"]),
        (second_dm["channel"], second_dm["ts"]),
    }
    # the other admin rejects later: the first decision stands and their message says so
    bot.send_action(reject, user=ADMIN, channel=str(first_dm["channel"]), message_ts=str(first_dm["ts"]))
    late = wait_until(lambda: [c for c in bot.fake.calls_of("chat.update") if "decided first" in c.params["text"]])
    assert "approved by <@U0ADMIN2>" in late[0].params["text"]
    assert "crypto_withdrawal" in storage.tasks.get_task(bot.db, "support").labels
    # a member cannot decide
    assert len(storage.labels.history(bot.db, "support")) == 1


def test_approving_a_name_taken_meanwhile_says_why_and_changes_nothing(bot: BotUnderTest) -> None:
    _, reply_ts, block = _reply(bot, "1700000303.000100")
    view = _open_modal(bot, block, reply_ts)
    send_view_submission(bot, view, _typed("crypto_withdrawal"), user=USER)
    asked = bot.fake.wait_for("chat.postMessage", 2)[1]
    storage.labels.change(bot.db, "support", "add", ADMIN, new_name="crypto_withdrawal", description="by hand")
    approve = asked.params["blocks"][1]["elements"][0]
    bot.send_action(
        {"action_id": blocks.PROPOSAL_APPROVE, "block_id": "p", "value": approve["value"]},
        user=ADMIN,
        channel=str(asked.response["channel"]),
        message_ts=str(asked.response["ts"]),
    )
    answer = bot.fake.wait_for("response_url")[0].params
    assert "already a label" in answer["text"]
    assert storage.labels.require_proposal(bot.db, int(approve["value"])).status == "pending"
    assert corrections(bot.db, source="menu") == []
