"""What a message event means, sent as Slack publishes these payloads:
lone surrogates, deletions, thread broadcasts, edits, Slack Connect users of another organisation."""

from __future__ import annotations

import json
from pathlib import Path

import storage
from storage import db as storage_db
from tests.bot.conftest import (
    default_tasks,
    running_bot,
    SUPPORT_CHANNEL,
    TEAM,
    USER,
    BotUnderTest,
    corrections,
    wait_until,
)
from tests.bot.published import send_event
from tests.slack_fixtures import load_payload

OTHER_ORG = "T0OTHERORG"


def _message(bot: BotUnderTest, ts: str, text: str, event_id: str, **replace: object) -> None:
    values = dict(channel=SUPPORT_CHANNEL, user=USER, team=TEAM, ts=ts, event_ts=ts, text=text)
    values.update(replace)
    assert send_event(bot, "message", event_id, **values) == 200


def _stored(bot: BotUnderTest, ts: str) -> storage.Message:
    return wait_until(
        lambda: storage.messages.find_message(bot.db, workspace=TEAM, channel=SUPPORT_CHANNEL, ts=ts),
        what="message stored",
    )


def test_text_with_a_lone_surrogate_is_stored_with_a_replacement_character_and_answered(bot: BotUnderTest) -> None:
    _message(bot, "1700000300.000100", "where is my card \ud83d", "EvSURROGATE")
    reply = bot.fake.wait_for("chat.postMessage")[0]
    assert reply.params["thread_ts"] == "1700000300.000100"
    assert _stored(bot, "1700000300.000100").text == "where is my card \ufffd"


def test_a_deleted_message_leaves_training_and_an_audit_row_stays(bot: BotUnderTest) -> None:
    _message(bot, "1700000301.000100", "refund charged twice", "EvDELBEFORE")
    message_id = _stored(bot, "1700000301.000100").id
    storage.corrections.add_correction(
        bot.db, message_id=message_id, task="support", label="refund", source="menu", user=USER
    )
    status = send_event(bot, "message_deleted", "EvDELETED", channel=SUPPORT_CHANNEL, deleted_ts="1700000301.000100")
    assert status == 200
    wait_until(lambda: storage.messages.get_message(bot.db, message_id).deleted_at, what="message deleted")
    assert storage.messages.get_message(bot.db, message_id).text == "" and corrections(bot.db) == []
    assert storage.resolution.resolve_labels(bot.db, "support").labelled == []
    entry = next(e for e in storage.events.list_audit(bot.db) if e.action == "message_deleted")
    assert entry.detail["message_id"] == message_id and "refund charged" not in json.dumps(entry.detail)


def test_a_thread_broadcast_is_classified_in_its_thread(bot: BotUnderTest) -> None:
    status = send_event(
        bot,
        "thread_broadcast",
        "EvBROADCAST",
        channel=SUPPORT_CHANNEL,
        user=USER,
        ts="1700000302.000200",
        event_ts="1700000302.000200",
        thread_ts="1700000302.000100",
        text="where is my card",
    )
    assert status == 200
    reply = bot.fake.wait_for("chat.postMessage")[0]
    assert reply.params["thread_ts"] == "1700000302.000100"
    assert _stored(bot, "1700000302.000200").text == "where is my card"


def test_an_edit_replaces_the_stored_text_even_with_process_edits_off(bot: BotUnderTest) -> None:
    assert bot.settings.process_edits is False
    _message(bot, "1700000303.000100", "my password is hunter2 refund", "EvEDITBEFORE")
    message_id = _stored(bot, "1700000303.000100").id
    bot.fake.wait_for("chat.postMessage")
    storage.corrections.add_correction(
        bot.db, message_id=message_id, task="support", label="refund", source="menu", user=USER
    )
    status = send_event(
        bot,
        "message_changed",
        "EvEDITED",
        channel=SUPPORT_CHANNEL,
        user=USER,
        team=TEAM,
        ts="1700000303.000100",
        text="refund please",
        is_ext_shared_channel=False,
    )
    assert status == 200
    wait_until(lambda: storage.messages.get_message(bot.db, message_id).text == "refund please", what="text replaced")
    assert [m.text for m in storage.resolution.resolve_labels(bot.db, "support").labelled] == ["refund please"]
    bot.wait_until_handled()
    assert len(bot.fake.calls_of("chat.postMessage")) == 1  # not answered again: process_edits is off


def _external_message(bot: BotUnderTest, ts: str, event_id: str) -> int:
    # Every Events API envelope carries is_ext_shared_channel (https://api.slack.com/apis/events-api,
    # "Callback fields"); the published message sample predates the field, so it is set here.
    body = load_payload(
        "message", team_id=TEAM, event_id=event_id, channel=SUPPORT_CHANNEL, user="W0GUEST", team=OTHER_ORG, ts=ts
    )
    body["is_ext_shared_channel"] = True
    status, _ = bot.post(json.dumps(body).encode(), "application/json")
    return status


def test_slack_connect_users_of_another_organisation_are_neither_stored_nor_answered(bot: BotUnderTest) -> None:
    assert _external_message(bot, "1700000304.000100", "EvEXTERNAL") == 200
    _message(bot, "1700000304.000200", "where is my card", "EvINTERNAL")  # ours, in the same channel
    assert [c.params["thread_ts"] for c in bot.fake.wait_for("chat.postMessage")] == ["1700000304.000200"]
    bot.wait_until_handled()
    assert [r["ts"] for r in storage_db.rows(bot.db, "SELECT ts FROM messages")] == ["1700000304.000200"]


def test_a_task_can_enable_external_users(tmp_path: Path, fake_slack, tiny_bert_dir, support_adapter_dir) -> None:
    tasks = default_tasks(external_users=True)
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, tasks=tasks) as bot:
        assert _external_message(bot, "1700000305.000100", "EvEXTERNAL2") == 200
        assert bot.fake.wait_for("chat.postMessage")[0].params["thread_ts"] == "1700000305.000100"
        assert _stored(bot, "1700000305.000100").user == "W0GUEST"
