"""/camel export never posts one channel's text in another: its members may not be the same people."""

from __future__ import annotations

import csv
import io

import storage
from tests.bot.conftest import ADMIN, SUPPORT_CHANNEL, TEAM, USER, BotUnderTest, wait_until
from tests.bot.published import send_command

PRIVATE_CHANNEL = "G0PRIVATE"  # a private channel bound to the same task


def _labelled(bot: BotUnderTest, channel: str, ts: str, text: str, label: str) -> None:
    message_id = storage.messages.record_message(bot.db, workspace=TEAM, channel=channel, ts=ts, text=text, user=USER)
    storage.corrections.add_correction(
        bot.db, message_id=message_id, task="support", label=label, source="menu", user=USER
    )


def _setup(bot: BotUnderTest) -> None:
    storage.tasks.bind_channel(bot.db, "support", PRIVATE_CHANNEL)
    _labelled(bot, SUPPORT_CHANNEL, "1700000100.000100", "refund charged twice", "refund")
    _labelled(bot, PRIVATE_CHANNEL, "1700000100.000200", "secret salary talk refund", "refund")


def _uploaded_rows(bot: BotUnderTest, complete: dict) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(bot.fake.uploads[complete["files"][0]["id"]].decode("utf-8"))))


def test_a_member_exports_only_the_channel_where_they_typed_it(bot: BotUnderTest) -> None:
    _setup(bot)
    assert send_command(bot, "export", user=USER, channel=SUPPORT_CHANNEL) == 200
    complete = bot.fake.wait_for("files.completeUploadExternal")[0].params
    assert complete["channel_id"] == SUPPORT_CHANNEL
    assert _uploaded_rows(bot, complete) == [{"text": "refund charged twice", "label": "refund", "task": "support"}]
    assert bot.fake.calls_of("conversations.open") == []


def test_an_admin_export_goes_to_the_admin_by_direct_message(bot: BotUnderTest) -> None:
    _setup(bot)
    assert send_command(bot, "export", user=ADMIN, channel=SUPPORT_CHANNEL) == 200
    complete = bot.fake.wait_for("files.completeUploadExternal")[0].params
    opened = bot.fake.calls_of("conversations.open")[0]
    assert opened.params["users"] == ADMIN
    assert complete["channel_id"] == opened.response["channel"]["id"] != SUPPORT_CHANNEL
    texts = sorted(row["text"] for row in _uploaded_rows(bot, complete))
    assert texts == ["refund charged twice", "secret salary talk refund"]
    answer = bot.fake.wait_for("response_url")[0].params
    assert answer["response_type"] == "ephemeral" and "direct message" in answer["text"]
    # Nothing of the private channel reached the channel where the command was typed.
    assert len(bot.fake.calls_of("files.completeUploadExternal")) == 1
    wait_until(lambda: any(e.action == "slack.export" for e in storage.events.list_audit(bot.db)), what="audited")


def test_storage_export_filters_by_channel(tmp_path) -> None:
    db = storage.open_store(":memory:")
    storage.tasks.upsert_task(db, storage.TaskSpec("t", labels=["a", "b"], channels=["C1", "C2"]))
    for channel, ts, text in (("C1", "1.1", "one"), ("C2", "1.2", "two")):
        message_id = storage.messages.record_message(db, workspace="T", channel=channel, ts=ts, text=text)
        storage.corrections.add_correction(db, message_id=message_id, task="t", label="a", source="menu", user="U")
    assert storage.transfer.export_labelled(db, "t", tmp_path / "all.csv") == 2
    assert storage.transfer.export_labelled(db, "t", tmp_path / "c2.csv", channel="C2") == 1
    assert "two" in (tmp_path / "c2.csv").read_text() and "one" not in (tmp_path / "c2.csv").read_text()
