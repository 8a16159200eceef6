"""Label descriptions: from the settings file, from `/camel describe` (admins), shown by `/camel labels`."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import storage
from bot.demo.local_slack import FakeSlackAPI
from bot.settings import SettingsValueError, load_settings
from tests.bot.conftest import (
    default_tasks,
    running_bot,
    ADMIN,
    SUPPORT_CHANNEL,
    USER,
    BotUnderTest,
)
from tests.bot.test_commands import _ask

CARD = "my new card has not come yet"


@pytest.fixture()
def described_bot(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> Iterator[BotUnderTest]:
    tasks = default_tasks(descriptions={"card_arrival": CARD})
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, tasks=tasks) as running:
        yield running


def test_configured_descriptions_are_stored_and_listed(described_bot: BotUnderTest) -> None:
    assert storage.tasks.get_task(described_bot.db, "support").descriptions == {"card_arrival": CARD}
    answer = _ask(described_bot, "labels")
    assert f"`card_arrival` - {CARD}" in answer and "`refund`\n" in answer


def test_describe_is_for_admins_and_is_stored_audited_and_listed(described_bot: BotUnderTest) -> None:
    bot = described_bot
    assert "Only admins can describe a label" in _ask(bot, "describe refund money back", user=USER)
    assert "needs a label and a one-line description" in _ask(bot, "describe refund", user=ADMIN)
    assert "`nope` is not a label" in _ask(bot, "describe nope money back", user=ADMIN)
    assert "at most 200" in _ask(bot, "describe refund " + "x" * 201, user=ADMIN)
    assert storage.tasks.get_task(bot.db, "support").descriptions == {"card_arrival": CARD}
    answer = _ask(bot, "describe refund  money   back for a charge", user=ADMIN)
    assert "`refund` now means: money back for a charge" in answer
    assert storage.tasks.get_task(bot.db, "support").descriptions["refund"] == "money back for a charge"
    entry = next(e for e in storage.events.list_audit(bot.db) if e.action == "slack.describe")
    assert entry.actor == ADMIN and entry.detail == {
        "via": "slack",
        "channel": SUPPORT_CHANNEL,
        "task": "support",
        "label": "refund",
    }
    assert "`refund` - money back for a charge" in _ask(bot, "labels")
    assert "describe <label>" in _ask(bot, "help")


def test_descriptions_in_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "camel-bot.toml"
    path.write_text(
        '[[tasks]]\nname = "support"\nlabels = ["card_arrival", "refund"]\n'
        'descriptions = { card_arrival = "where is my card" }\n'
    )
    assert load_settings(str(path), env={}).tasks[0].descriptions == {"card_arrival": "where is my card"}
    path.write_text('[[tasks]]\nname = "support"\nlabels = ["a", "b"]\ndescriptions = { c = "x" }\n')
    with pytest.raises(SettingsValueError, match=r"descriptions.c: 'c' is not one of the task's labels"):
        load_settings(str(path), env={})
    path.write_text(f'[[tasks]]\nname = "support"\nlabels = ["a", "b"]\ndescriptions = {{ a = "{"x" * 201}" }}\n')
    with pytest.raises(SettingsValueError, match="one line of 1 to 200 characters"):
        load_settings(str(path), env={})
    path.write_text('[[tasks]]\nname = "support"\nlabels = ["a", "b"]\ndescriptions = { a = 3 }\n')
    with pytest.raises(SettingsValueError, match="dict"):
        load_settings(str(path), env={})


def test_setup_of_an_untrained_task_points_at_describe(described_bot: BotUnderTest) -> None:
    answer = _ask(described_bot, "setup mood", user=ADMIN, channel="C0ELSEWHERE")
    assert "is now bound to task *mood*" in answer and "/camel describe <label> <one line>" in answer
    assert "no description yet: `negative`, `neutral`, `positive`" in answer
    # a task a trained adapter serves needs no hint
    assert "describe" not in _ask(described_bot, "setup support", user=ADMIN, channel="C0ELSEWHERE2")
