"""The settings file seeds tasks and adds to them; what was set in Slack survives a restart,
and a contradiction between the two is logged and shown by `camel-bot doctor`."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import storage
from bot import runtime
from bot.cli.checks import iter_checks
from bot.demo.local_slack import FakeSlackAPI
from bot.settings import Settings, TaskSettings, load_settings
from bot import task_config
from bot.task_config import Conflict, config_conflicts, plan_task
from tests.bot.conftest import ADMIN, FREE_CHANNEL, SECRET, SUPPORT_CHANNEL, SUPPORT_LABELS, BotUnderTest
from tests.bot.test_commands import _ask

ENV = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET}


def write_config(path: Path, data_dir: Path, fake: FakeSlackAPI, tiny_bert_dir: Path, task: str) -> Path:
    path.write_text(
        f'data_dir = "{data_dir}"\nslack_api_url = "{fake.url}"\nhttp_port = 0\nhttp_host = "127.0.0.1"\n'
        f'admins = ["{ADMIN}"]\ntoken_verification_enabled = false\n'
        f'[model]\nbase_model = "{tiny_bert_dir}"\n' + task
    )
    return path


def support_task(labels: list[str], extra: str = "") -> str:
    quoted = ", ".join(f'"{label}"' for label in labels)
    return (
        f'[[tasks]]\nname = "support"\nkind = "intent"\nlabels = [{quoted}]\nchannels = ["{SUPPORT_CHANNEL}"]\n' + extra
    )


def boot(config: Path, fake: FakeSlackAPI) -> BotUnderTest:
    return BotUnderTest(runtime.start(load_settings(str(config), env=ENV), learning=False), fake)


def shut(bot: BotUnderTest) -> None:
    bot.stop()
    bot.db.close()


def task_config_results(config: Path) -> list[str]:
    return [r.line() for r in iter_checks(str(config), ENV) if r.name == "task config"]


def test_what_is_set_in_slack_survives_a_restart_and_doctor_shows_the_conflict(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    first = support_task(SUPPORT_LABELS, 'descriptions = { card_arrival = "where is my card" }\n')
    config = write_config(tmp_path / "camel-bot.toml", data, fake_slack, tiny_bert_dir, first)
    bot = boot(config, fake_slack)
    assert "now means: the new card came by post" in _ask(
        bot, "describe card_arrival the new card came by post", user=ADMIN
    )
    assert "now bound to task *support*" in _ask(bot, "setup support", user=ADMIN, channel=FREE_CHANNEL)
    shut(bot)

    with caplog.at_level(logging.WARNING, logger="bot.task_config"):
        bot = boot(config, fake_slack)  # the same, older settings file
    task = storage.tasks.get_task(bot.db, "support")
    assert task.descriptions == {"card_arrival": "the new card came by post"}
    assert task.channels == [SUPPORT_CHANNEL, FREE_CHANNEL]
    assert "descriptions.card_arrival is 'the new card came by post'" in caplog.text
    assert "`card_arrival` - the new card came by post" in _ask(bot, "labels")
    shut(bot)

    [line] = task_config_results(config)
    assert line.startswith(
        "PROBLEM  task config: task support: descriptions.card_arrival is 'the new card came by post'"
    )
    assert "the settings file says 'where is my card'" in line and "-> fix:" in line

    # The file catches up with Slack: no conflict any more.
    agreed = support_task(SUPPORT_LABELS, 'descriptions = { card_arrival = "the new card came by post" }\n')
    write_config(config, data, fake_slack, tiny_bert_dir, agreed)
    assert task_config_results(config) == ["ok       task config: the settings file agrees with what was set in Slack"]


def test_the_file_still_adds_and_changes_what_slack_left_alone(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path
) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path / "camel-bot.toml", data, fake_slack, tiny_bert_dir, support_task(SUPPORT_LABELS))
    bot = boot(config, fake_slack)
    _ask(bot, "describe refund money back", user=ADMIN)
    shut(bot)
    edited = support_task(
        [*SUPPORT_LABELS, "lost_card"],
        'abstain_threshold = 0.7\nquiet = true\ndescriptions = { lost_card = "my card is gone" }\n',
    ).replace(f'channels = ["{SUPPORT_CHANNEL}"]', f'channels = ["{SUPPORT_CHANNEL}", "C0MORE"]')
    write_config(config, data, fake_slack, tiny_bert_dir, edited)
    bot = boot(config, fake_slack)
    task = storage.tasks.get_task(bot.db, "support")
    assert task.labels == [*SUPPORT_LABELS, "lost_card"]
    assert task.abstain_threshold == 0.7 and task.quiet
    assert task.channels == [SUPPORT_CHANNEL, "C0MORE"]
    assert task.descriptions == {"refund": "money back", "lost_card": "my card is gone"}
    shut(bot)
    assert task_config_results(config)[0].startswith("ok ")


def _settings(**task: object) -> Settings:
    values: dict[str, object] = dict(name="support", kind="intent", labels=["a", "b"], channels=["C1"])
    values.update(task)
    return Settings(data_dir="unused", tasks=[TaskSettings(**values)])  # type: ignore[arg-type]


def test_a_threshold_changed_outside_the_file_is_kept(tmp_path: Path) -> None:
    db = storage.open_store(tmp_path / "camel.db")
    runtime.apply_task_settings(_settings(abstain_threshold=0.5), db)
    # e.g. a command
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["a", "b"], abstain_threshold=0.9))
    tasks = runtime.apply_task_settings(_settings(abstain_threshold=0.5), db)
    assert tasks[0].abstain_threshold == 0.9
    assert config_conflicts(_settings(abstain_threshold=0.5), db) == [
        Conflict("support", "abstain_threshold", 0.9, 0.5)
    ]
    # the file now says what is stored: nothing to report, and a later edit of the file applies again
    runtime.apply_task_settings(_settings(abstain_threshold=0.9), db)
    assert config_conflicts(_settings(abstain_threshold=0.9), db) == []
    assert runtime.apply_task_settings(_settings(abstain_threshold=0.6), db)[0].abstain_threshold == 0.6
    db.close()


def test_a_database_without_a_record_of_the_file_takes_the_file(tmp_path: Path) -> None:
    """Made by a camel-bot that re-applied the file at every start: its values came from the file."""
    stored = storage.Task("support", "intent", ["a", "b"], {}, ["C1"], 0.5, False, None, descriptions={"a": "old"})
    plan = plan_task(
        TaskSettings("support", "intent", ["a", "b"], abstain_threshold=0.8, descriptions={"a": "new"}), stored, None
    )
    assert (
        plan.conflicts == [] and plan.values["abstain_threshold"] == 0.8 and plan.values["descriptions"] == {"a": "new"}
    )


def test_a_channel_bound_to_another_task_in_slack_stays_there(tmp_path: Path) -> None:
    db = storage.open_store(tmp_path / "camel.db")
    # e.g. /camel setup other
    storage.tasks.upsert_task(db, storage.TaskSpec("other", kind="other", labels=["x", "y"], channels=["C1"]))
    tasks = runtime.apply_task_settings(_settings(), db)  # the start does not fail on it
    assert tasks[0].channels == [] and storage.tasks.task_for_channel(db, "C1").name == "other"
    [conflict] = config_conflicts(_settings(), db)
    assert conflict.field == "channels.C1" and conflict.kept == "bound to task other"
    db.close()


def test_an_out_of_scope_label_set_in_slack_survives_a_restart_with_the_file(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=str(tmp_path), tasks=[TaskSettings(name="t", labels=["a", "b", "other"], out_of_scope_label="other")]
    )
    db = storage.open_store(tmp_path / "camel.db")
    task_config.apply_task_settings(settings, db)
    storage.tasks.set_out_of_scope_label(db, "t", "none_of_these")  # /camel setup t --out-of-scope none_of_these
    _tasks, conflicts = task_config.apply_task_settings(settings, db)  # the next start
    task = storage.tasks.get_task(db, "t")
    assert task is not None and task.out_of_scope_label == "none_of_these"
    assert [c.field for c in conflicts] == ["out_of_scope_label"]
    db.close()


def test_labels_changed_in_slack_stay_changed_and_the_file_is_shown_to_disagree() -> None:
    db = storage.open_store(":memory:")
    configured = TaskSettings(
        name="support", kind="intent", labels=["card_arrival", "top_up", "refund"], new_labels="members"
    )
    settings = Settings(tasks=[configured])
    task_config.apply_task_settings(settings, db)
    assert storage.tasks.get_task(db, "support").new_labels == "members"
    storage.labels.change(db, "support", "rename", ADMIN, "card_arrival", "card_delivery")
    storage.labels.change(db, "support", "retire", ADMIN, "refund")
    # the next start re-reads a file that still lists both old names
    tasks, conflicts = task_config.apply_task_settings(settings, db)
    assert tasks[0].labels == ["card_delivery", "top_up"]
    assert {c.field: c.kept for c in conflicts} == {
        "labels.card_arrival": "renamed or merged into 'card_delivery' in Slack",
        "labels.refund": "retired in Slack",
    }
    assert [c.field for c in config_conflicts(settings, db)] == ["labels.card_arrival", "labels.refund"]
