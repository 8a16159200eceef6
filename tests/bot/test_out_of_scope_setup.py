"""Declaring a task's out-of-scope label in Slack (kept across restarts) or in the config;
corrections to it are ordinary training labels."""

from __future__ import annotations

from dataclasses import replace
import pytest

import storage
from bot import runtime
from bot.settings import Settings, SettingsValueError, TaskSettings
from tests.bot.conftest import ADMIN, MOOD_LABELS, SUPPORT_CHANNEL, USER, BotUnderTest


def _ask(bot: BotUnderTest, text: str, user: str = ADMIN) -> str:
    before = len(bot.fake.calls_of("response_url"))
    bot.send_command(text, user=user)
    return str(bot.fake.wait_for("response_url", before + 1)[before].params["text"])


def test_setup_declares_an_out_of_scope_label_that_survives_a_restart(bot: BotUnderTest) -> None:
    assert "Only admins" in _ask(bot, "setup support --out-of-scope other", user=USER)
    assert "optionally `--out-of-scope <label>`" in _ask(bot, "setup support --out-of-scope")
    answer = _ask(bot, "setup support --out-of-scope other")
    assert "`other` now means" in answer
    task = storage.tasks.get_task(bot.db, "support")
    assert task.out_of_scope_label == "other" and "other" in task.labels
    entry = next(e for e in storage.events.list_audit(bot.db) if e.action == "slack.setup")
    assert entry.detail["out_of_scope_label"] == "other"
    # A restart applies the configured tasks again (out_of_scope_label = ""): the Slack setting stays.
    runtime.apply_task_settings(bot.settings, bot.db)
    assert storage.tasks.get_task(bot.db, "support").out_of_scope_label == "other"
    # Its corrections are ordinary labels, resolved for training.
    mid = storage.messages.record_message(
        bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts="1.5", text="weather"
    )
    storage.corrections.add_correction(bot.db, message_id=mid, task="support", label="other", source="menu", user=USER)
    labelled = storage.resolution.resolve_labels(bot.db, "support").labelled
    assert [(m.message_id, m.label) for m in labelled] == [(mid, "other")]
    assert "no out-of-scope label now" in _ask(bot, "setup support --no-out-of-scope")
    assert storage.tasks.get_task(bot.db, "support").out_of_scope_label is None


def test_configured_out_of_scope_label_is_stored(bot: BotUnderTest) -> None:
    mood = replace(bot.settings.tasks[1], labels=[*MOOD_LABELS, "off_topic"], out_of_scope_label="off_topic")
    settings = replace(bot.settings, tasks=[bot.settings.tasks[0], mood])
    runtime.apply_task_settings(settings, bot.db)
    assert storage.tasks.get_task(bot.db, "mood").out_of_scope_label == "off_topic"


def test_new_task_settings_are_validated() -> None:
    with pytest.raises(SettingsValueError, match="out_of_scope_label must be one of the task's labels"):
        Settings(tasks=[TaskSettings(name="t", labels=["a", "b"], out_of_scope_label="c")])
    with pytest.raises(SettingsValueError, match="target_precision"):
        Settings(tasks=[TaskSettings(name="t", labels=["a", "b"], target_precision=0.0)])
    with pytest.raises(SettingsValueError, match="ask_per_day"):
        Settings(tasks=[TaskSettings(name="t", labels=["a", "b"], ask_per_day=-1)])
