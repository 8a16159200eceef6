"""The one wiring: `bot.runtime` assembles the parts in order and bolts nothing onto Bolt's App."""

from __future__ import annotations

from pathlib import Path

import storage
from bot import runtime
from bot.demo.local_slack import FakeSlackAPI
from tests.bot.conftest import BotUnderTest, make_settings


def test_nothing_is_attached_to_bolts_app(bot: BotUnderTest) -> None:
    # Listeners get their services from Bolt's context, not from attributes set on the App.
    assert [name for name in vars(bot.app) if name.startswith("camel")] == []
    bot.send_command("labels")  # a listener that needs the services answers
    assert "*support* labels" in bot.command_replies()[0]


def test_runtime_hands_the_started_loop_to_the_app(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path
) -> None:
    settings = make_settings(tmp_path / "data", fake_slack, tiny_bert_dir)
    with runtime.start(settings) as bot:
        assert bot.loop is not None and bot.app is not None and bot.server is not None
        assert bot.loop.next_run_time("support") is not None  # started: the nightly job is scheduled
        assert bot.loop.predictors is bot.predictors and bot.predictors.metrics is bot.metrics
        assert bot.loop.db is bot.db  # the runtime's one connection, not one of the loop's own
        assert {t.name for t in storage.tasks.list_tasks(bot.db)} == {"support", "mood"}
        assert storage.tasks.get_task(bot.db, "support").channels == ["C0SUPPORT"]  # type: ignore[union-attr]
    assert bot.server is None and bot.loop.next_run_time("support") is None  # stopped: server, then loop


def test_runtime_without_slack_builds_no_app(tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path) -> None:
    settings = make_settings(tmp_path / "data", fake_slack, tiny_bert_dir)
    bot = runtime.start(settings, slack=False, learning=False)
    try:
        assert bot.app is None and bot.server is None and bot.loop is None and bot.reload_errors == []
    finally:
        bot.stop()
