"""A full disk still gives Slack its 200s (so Slack does not retry), /readyz says why, and the bot recovers.

The data folder is a small tmpfs (mounting needs root, as in CI; elsewhere the test is skipped
with that reason), filled to the last byte by a file the test then removes.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from bot.demo.local_slack import FakeSlackAPI
from tests.bot.conftest import ADMIN, BotUnderTest, running_bot, wait_until
from tests.faults import small_tmpfs


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "data", 8 << 20) as folder:
        yield folder


def _fill(folder: Path) -> Path:
    """Write until not one more byte fits (unbuffered, in shrinking chunks)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _dropped(bot: BotUnderTest) -> float:
    text = bot.runtime.metrics.render().decode()
    rows = [r for r in text.splitlines() if r.startswith('camel_events_dropped_total{reason="disk_full"}')]
    return float(rows[0].split()[-1]) if rows else 0.0


def test_disk_full_answers_200_sets_readyz_tells_admins_once_and_recovers(
    small_disk: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> None:
    with running_bot(small_disk.parent, fake_slack, tiny_bert_dir, support_adapter_dir) as bot:
        bot.over_http = True  # what Slack sees is the HTTP status: never a 5xx
        assert bot.send_message("where is my card", "1700000500.000100")[0] == 200
        bot.fake.wait_for("chat.postMessage")
        assert _get(bot.url + "/readyz")[0] == 200
        filler = _fill(small_disk)
        statuses = [bot.send_message(f"refund {i}", f"1700000501.{i:06d}")[0] for i in range(40)]
        assert statuses == [200] * 40  # Slack never sees a 5xx, so it never disables the app
        assert _dropped(bot) >= 1
        status, reason = _get(bot.url + "/readyz")
        assert status == 503 and b"cannot store events" in reason
        assert _get(bot.url + "/healthz")[0] == 200  # liveness: no restart loop
        alerts = wait_until(
            lambda: [c for c in bot.fake.calls_of("chat.postMessage") if c.params.get("channel") == ADMIN],
            what="admin alert",
        )
        filler.unlink()  # space returns
        wait_until(lambda: _get(bot.url + "/readyz")[0] == 200, what="ready again")
        assert bot.send_message("where is my new card", "1700000502.000100")[0] == 200
        wait_until(
            lambda: "1700000502.000100" in {c.params.get("thread_ts") for c in bot.fake.calls_of("chat.postMessage")},
            what="answered after recovery",
        )
        admin_posts = [c for c in bot.fake.calls_of("chat.postMessage") if c.params.get("channel") == ADMIN]
        assert len(alerts) == 1 and len(admin_posts) == 1  # told once per outage
