"""In the bot: 0700 folders and 0600 files whatever the umask, and a warning
for a secrets file others may read."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest

import storage
from bot import runtime
from bot.loop.options import summary_path
from tests.loop.conftest import TASK, make_settings


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_serving_makes_the_data_folder_private_whatever_the_umask(tmp_path: Path, tiny_bert_dir, loose_umask) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "stray.txt").write_text("left by an operator with umask 022")
    settings = make_settings(data, tiny_bert_dir)
    bot = runtime.start(settings, learning=True, slack=False)
    try:
        assert bot.loop is not None
        run = bot.loop.run_round(TASK, "manual")  # too little data: skipped, but files are written
        assert run.outcome == "skipped"
    finally:
        bot.stop()
    assert _mode(data) == 0o700 and _mode(data / "stray.txt") == 0o600
    assert storage.files.loose_permissions(data) == []  # also what start-up itself made (locks, job store)
    assert _mode(settings.db_path) == 0o600 and _mode(settings.scheduler_db_path) == 0o600
    summary = summary_path(settings.data_dir, run.id)
    assert _mode(summary.parent) == 0o700
    assert _mode(summary) == 0o600 and _mode(summary.with_suffix(".log")) == 0o600
    bot.db.close()


def test_a_secrets_file_others_can_read_is_warned_about_at_start(
    tmp_path: Path, tiny_bert_dir, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('SLACK_BOT_TOKEN = "xoxb-x"\n')
    secrets.chmod(0o644)
    settings = replace(make_settings(tmp_path / "data", tiny_bert_dir), secrets_file=str(secrets))
    with caplog.at_level(logging.WARNING, logger="bot.runtime"):
        bot = runtime.start(settings, learning=False, slack=False)
        bot.stop()
        bot.db.close()
    warnings = [r.getMessage() for r in caplog.records if "secrets file" in r.getMessage()]
    assert len(warnings) == 1 and "0644" in warnings[0] and "chmod 600" in warnings[0]
    assert "xoxb" not in warnings[0]
    secrets.chmod(0o600)
    assert runtime.warn_about_secrets_file(settings) is None
