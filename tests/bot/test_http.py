"""HTTP mode: signature checks, routing (404 off Slack's path), de-duplication, health and metrics endpoints."""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

import storage
from bot.demo.slack_events import signed_headers
from bot.slack.http_server import BotWSGIApp
from storage import db as storage_db
from tests.bot.conftest import SECRET, SUPPORT_CHANNEL, TEAM, USER, BotUnderTest, wait_until
from tests.slack_fixtures import load_payload


@pytest.fixture()
def bot(bot: BotUnderTest) -> BotUnderTest:
    """HTTP itself is what this file tests: every request goes through the real server."""
    bot.over_http = True
    return bot


def _count(bot: BotUnderTest, table: str) -> int:
    return storage_db.rows(bot.db, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def test_bad_signature_is_401_and_stores_nothing(bot: BotUnderTest) -> None:
    status, _ = bot.send_message("where is my card", "1700000001.000100", secret="not-the-secret")
    assert status == 401
    assert _count(bot, "messages") == 0 and _count(bot, "inbox") == 0


def test_old_timestamp_is_401_and_stores_nothing(bot: BotUnderTest) -> None:
    status, _ = bot.send_message("where is my card", "1700000001.000100", timestamp=int(time.time()) - 600)
    assert status == 401
    assert _count(bot, "messages") == 0 and _count(bot, "inbox") == 0


def test_same_event_four_times_gives_one_prediction_and_one_reply(bot: BotUnderTest) -> None:
    event = {
        "type": "message",
        "channel": SUPPORT_CHANNEL,
        "user": "U0ALICE",
        "text": "when will my new card come",
        "ts": "1700000002.000100",
        "channel_type": "channel",
    }
    statuses = [bot.send_event(event, event_id="Ev0SAME")[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 200]
    reply_ts = bot.reply_ts()
    wait_until(
        lambda: storage.messages.find_prediction_by_reply(bot.db, channel=SUPPORT_CHANNEL, reply_ts=reply_ts),
        what="reply linked to its prediction",
    )
    bot.wait_until_handled()
    assert _count(bot, "predictions") == 1
    assert len(bot.fake.calls_of("chat.postMessage")) == 1


def test_healthz_and_metrics(bot: BotUnderTest) -> None:
    bot.send_message("refund charged twice", "1700000003.000100")
    bot.fake.wait_for("chat.postMessage")
    with urllib.request.urlopen(bot.url + "/healthz", timeout=5) as response:
        assert response.status == 200 and response.read() == b"ok\n"
    wait_until(lambda: b'camel_predictions_total{task="support"} 1.0' in _metrics(bot), what="metrics")
    text = _metrics(bot)
    assert b"camel_prediction_latency_seconds_count" in text
    assert b"camel_training_runs" in text


def _metrics(bot: BotUnderTest) -> bytes:
    with urllib.request.urlopen(bot.url + "/metrics", timeout=5) as response:
        return response.read()


UNKNOWN_PATHS = ["/", "/slack/event", "/slack/events/x", "/slack/commands"]


def _post_to(bot: BotUnderTest, path: str, body: bytes, *, sign: bool) -> int:
    unsigned = {"Content-Type": "application/json"}
    headers = signed_headers(SECRET, body.decode(), "application/json") if sign else unsigned
    request = urllib.request.Request(bot.url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_post_to_a_path_that_is_not_slacks_is_404_signed_or_not(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO)
    message = load_payload("message", team_id=TEAM, channel=SUPPORT_CHANNEL, user=USER, ts="1700000004.000100")
    body = json.dumps(message).encode()
    assert _post_to(bot, path, body, sign=False) == 404
    assert _post_to(bot, path, body, sign=True) == 404
    assert not [r for r in caplog.records if r.name == "bot.slack.request_guard"], "the guard saw the request"
    assert _count(bot, "messages") == 0 and _count(bot, "inbox") == 0


class _RecordedBody(io.RawIOBase):
    """A request body that notes every read (waitress has buffered a body before the app runs, so
    whether the app reads it shows at this layer only)."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return b""


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_a_path_that_is_not_slacks_is_404_without_reading_the_body(bot: BotUnderTest, path: str) -> None:
    wsgi = BotWSGIApp(bot.app, signing_secret=SECRET)
    body = _RecordedBody()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "5000",  # declared, never sent
        "wsgi.input": body,
    }
    statuses: list[str] = []
    wsgi(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["404 Not Found"] and body.reads == []
