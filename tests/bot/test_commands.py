"""/camel and each of its subcommands, answered ephemerally through the response_url."""

from __future__ import annotations

import csv
import io

import storage
from tests.bot.conftest import (
    ADMIN,
    FREE_CHANNEL,
    MOOD_CHANNEL,
    SUPPORT_CHANNEL,
    SUPPORT_LABELS,
    USER,
    BotUnderTest,
    corrections,
    wait_until,
)

LINK = "https://camel.slack.com/archives/{channel}/p{digits}"


def _ask(bot: BotUnderTest, text: str, **kw: str) -> str:
    before = len(bot.fake.calls_of("response_url"))
    status, _ = bot.send_command(text, **kw)
    assert status == 200
    answer = bot.fake.wait_for("response_url", before + 1)[before].params
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


def _stored_message(bot: BotUnderTest, ts: str, text: str = "where is my new card") -> int:
    bot.send_message(text, ts)
    return wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts=ts),
        what="message stored",
    ).id


def test_help_and_unknown_subcommand(bot: BotUnderTest) -> None:
    assert "/camel predict <text>" in _ask(bot, "help")
    assert "/camel rollback [version]" in _ask(bot, "")
    answer = _ask(bot, "frobnicate now")
    assert "I don't know `/camel frobnicate`" in answer and "/camel help" in answer


def test_predict(bot: BotUnderTest) -> None:
    answer = _ask(bot, "predict where is my new card")
    expected = bot.predictors.get("support").answer(["where is my new card"])[0]
    assert f"*{expected.label}*" in answer
    assert "not bound to a task" in _ask(bot, "predict hello", channel=FREE_CHANNEL)
    assert "only guessing from the label names" in _ask(bot, "predict i love it", channel=MOOD_CHANNEL)
    assert "needs a text" in _ask(bot, "predict")


def test_label_by_link(bot: BotUnderTest) -> None:
    message_id = _stored_message(bot, "1700000040.000100")
    link = LINK.format(channel=SUPPORT_CHANNEL, digits="1700000040000100")
    assert "Labelled as *refund*" in _ask(bot, f"label <{link}> refund")
    stored = [(r["message_id"], r["label"], r["source"]) for r in corrections(bot.db)]
    assert stored == [(message_id, "refund", "command")]
    assert "not a label of this task" in _ask(bot, f"label {link} shipping")
    assert "is not a Slack message link" in _ask(bot, "label https://example.com/nope refund")
    assert "needs a message link and a label" in _ask(bot, "label refund")
    assert len(corrections(bot.db)) == 1


def test_label_fetches_a_message_the_bot_never_saw(bot: BotUnderTest) -> None:
    bot.fake.add_message(SUPPORT_CHANNEL, "1600000000.000200", "refund charged twice", user="U0BOB")
    link = LINK.format(channel=SUPPORT_CHANNEL, digits="1600000000000200")
    assert "Labelled as *refund*" in _ask(bot, f"label {link} refund")
    found = storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts="1600000000.000200")
    assert found is not None and found.text == "refund charged twice" and found.user == "U0BOB"
    missing = LINK.format(channel=SUPPORT_CHANNEL, digits="1600000000000999")
    assert "can't find that message" in _ask(bot, f"label {missing} refund")


def test_labels(bot: BotUnderTest) -> None:
    answer = _ask(bot, "labels", channel=MOOD_CHANNEL)
    assert "`positive` :smile:" in answer and "`negative` :angry:" in answer
    assert ":white_check_mark: confirms my label" in answer
    assert all(f"`{label}`" in _ask(bot, "labels") for label in SUPPORT_LABELS)


def test_stats_and_history(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    message_id = _stored_message(bot, "1700000041.000100")
    storage.corrections.add_correction(
        bot.db, message_id=message_id, task="support", label="card_arrival", source="menu", user=USER
    )
    stats = _ask(bot, "stats")
    assert "live adapter: v1" in stats and "Labelled messages: 1" in stats
    assert "Live accuracy: 7 days" in stats and "Last training run: never" in stats
    assert "Next training run: 20" in stats  # the nightly job's date
    assert "Base model reading of this channel: 0% of 16 characters unknown to the base (Latin 100%" in stats
    _stored_message(bot, "1700000042.000100", "我的卡还没到 <@U0BOB>")
    stats = _ask(bot, "stats")
    reading = "Base model reading of this channel: 27% of 22 characters unknown to the base (Latin 73%, Han 27%"
    assert reading in stats and "above 10%" in stats and "[model] unknown_chars_alert" in stats
    history = _ask(bot, "history")
    assert "v1 *active*" in history
    fingerprint = bot.predictors.get("support").adapter.base.fingerprint
    assert f", base {bot.predictors.base().path.rsplit('/', 1)[-1]} ({fingerprint[:12]})" in history


def test_retrain_refused_for_non_admin_then_run_by_admin(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    assert "Only admins can start a training run" in _ask(bot, "retrain", user=USER)
    assert storage.runs.last_run(bot.db, "support") is None
    answer = _ask(bot, "retrain", user=ADMIN)
    run = storage.runs.last_run(bot.db, "support")
    assert run is not None and f"Training run {run.id}" in answer and run.trigger == "manual"
    assert any(e.action == "retrain" and e.actor == ADMIN for e in storage.events.list_audit(bot.db))
    finished = wait_until(
        lambda: (r := storage.runs.last_run(bot.db, "support")) and r.finished_at and r,
        timeout=120,
        what="training round finished",
    )
    assert finished.outcome is not None


def test_rollback(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    v1 = storage.adapters.get_adapter(bot.db, "support", 1)
    storage.adapters.register_adapter(
        bot.db,
        storage.NewAdapterVersion(task="support", version=2, path=v1.path, parent_version=1, run_id=None, metrics={}),
    )
    storage.adapters.activate_adapter(bot.db, "support", 2, reason="test")
    assert "Only admins can roll back" in _ask(bot, "rollback", user=USER)
    assert "takes a version number" in _ask(bot, "rollback latest", user=ADMIN)
    assert "now serves adapter v1" in _ask(bot, "rollback", user=ADMIN)
    assert storage.tasks.get_task(bot.db, "support").active_version == 1 and bot.predictors.version("support") == 1
    assert "has no adapter version 7" in _ask(bot, "rollback 7", user=ADMIN)


def test_setup_binds_the_channel_for_admins_only(bot: BotUnderTest) -> None:
    assert "Only admins can bind" in _ask(bot, "setup mood", user=USER, channel=FREE_CHANNEL)
    assert "There is no task `nope`" in _ask(bot, "setup nope", user=ADMIN, channel=FREE_CHANNEL)
    assert storage.tasks.task_for_channel(bot.db, FREE_CHANNEL) is None
    assert f"<#{FREE_CHANNEL}> is now bound to task *mood*" in _ask(bot, "setup mood", user=ADMIN, channel=FREE_CHANNEL)
    assert storage.tasks.task_for_channel(bot.db, FREE_CHANNEL).name == "mood"
    entry = next(e for e in storage.events.list_audit(bot.db) if e.action == "slack.setup")
    assert entry.actor == ADMIN and entry.detail["task"] == "mood" and entry.detail["channel"] == FREE_CHANNEL


def test_admin_by_usergroup(bot: BotUnderTest) -> None:
    from bot.slack.services import AdminDirectory

    bot.fake.usergroups["S0ADMINS"] = ["U0CAROL"]
    directory = AdminDirectory([ADMIN], "S0ADMINS")
    assert directory.is_admin("U0CAROL", bot.app.client) and not directory.is_admin(USER, bot.app.client)
    directory.is_admin("U0DAVE", bot.app.client)
    assert len(bot.fake.calls_of("usergroups.users.list")) == 1  # cached


def test_export_uploads_the_labelled_csv(bot: BotUnderTest) -> None:
    message_id = _stored_message(bot, "1700000042.000100", "refund charged twice")
    storage.corrections.add_correction(
        bot.db, message_id=message_id, task="support", label="refund", source="menu", user=USER
    )
    bot.send_command("export")
    complete = bot.fake.wait_for("files.completeUploadExternal")[0].params
    assert complete["channel_id"] == SUPPORT_CHANNEL and "1 messages" in complete["initial_comment"]
    rows = list(csv.DictReader(io.StringIO(bot.fake.uploads[complete["files"][0]["id"]].decode("utf-8"))))
    assert rows == [{"text": "refund charged twice", "label": "refund", "task": "support"}]


def test_message_links_in_the_forms_slack_writes_them() -> None:
    import pytest

    from bot.slack.listeners.commands import parse_link
    from bot.slack.listeners.invocation import CommandProblem

    plain = "https://camel.slack.com/archives/C0SUPPORT/p1700000040000100"
    for link in (plain, f"<{plain}>", f"<{plain}|message>", f"{plain}?thread_ts=1700000039.000100&cid=C0SUPPORT"):
        assert parse_link(link) == ("C0SUPPORT", "1700000040.000100"), link
    for bad in ("https://camel.slack.com/archives/C0SUPPORT", "p1700000040000100", "https://x/archives/C1/p123"):
        with pytest.raises(CommandProblem, match="is not a Slack message link"):
            parse_link(bad)
