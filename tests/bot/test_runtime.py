"""The one wiring: `bot.runtime` assembles the parts in order and bolts nothing onto Bolt's App."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

import storage
from bot import runtime
from bot.demo.local_slack import FakeSlackAPI
from bot.loop import scheduler
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
        assert bot.loop.db is bot.db and bot.services is not None and bot.services.db is bot.db  # one connection
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


def test_a_part_that_fails_to_start_stops_the_parts_started_before_it(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(tmp_path / "data", fake_slack, tiny_bert_dir, http_port=port)
        with pytest.raises(OSError):
            runtime.start(settings)  # the server, the last part, cannot bind its port
    # The loop (its scheduler's runner) and the inbox workers started before it are stopped again.
    assert scheduler.runner_key(settings.data_dir) not in scheduler._runners
    assert [t.name for t in threading.enumerate() if t.name.startswith(("camel-inbox", "camel-listener"))] == []
