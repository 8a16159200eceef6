"""The request guard in front of Bolt, and logs no input can forge: whoever reaches the URL can send anything.

Bodies are Slack's published payloads (tests/slack_fixtures.py) broken the ways a sender could break them.
"""

from __future__ import annotations

import http.client
import json
import logging
import select
import socket
import time

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.log_format import JsonFormatter
from bot.slack.http_server import EVENTS_PATH
from bot.slack.request_guard import BytesSignatureVerifier
from storage import db as storage_db
from tests.bot.conftest import SECRET, SUPPORT_CHANNEL, TEAM, USER, BotUnderTest
from tests.slack_fixtures import load_command_body, load_payload, load_ssl_check_body

FORGED = "2099-01-01 00:00:00 ERROR bot.serve FORGED"
FORM = "application/x-www-form-urlencoded"


def _message_body(ts: str = "1700000100.000100", event_id: str = "Ev0GUARD") -> bytes:
    payload = load_payload("message", team_id=TEAM, channel=SUPPORT_CHANNEL, user=USER, ts=ts, event_id=event_id)
    return json.dumps(payload).encode()


def _raw_exchange(
    bot: BotUnderTest, body: bytes, content_type: str = "application/json", *, sign: bool, timestamp: str | None = None
) -> tuple[int, bytes]:
    """POST `body` to the events path (signed as Slack signs when `sign`); the status and the answer's body."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts}
    if sign:
        headers["X-Slack-Signature"] = str(BytesSignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body))
    conn = http.client.HTTPConnection("127.0.0.1", bot.server.server_port, timeout=20)
    try:
        conn.request("POST", EVENTS_PATH, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _raw_post(
    bot: BotUnderTest, body: bytes, content_type: str = "application/json", *, sign: bool, timestamp: str | None = None
) -> int:
    return _raw_exchange(bot, body, content_type, sign=sign, timestamp=timestamp)[0]


def _count(bot: BotUnderTest, table: str) -> int:
    return storage_db.rows(bot.db, f"SELECT count(*) AS n FROM {table}")[0]["n"]


def _stored(bot: BotUnderTest) -> dict[str, int]:
    """Rows per table of the bot's database."""
    tables = storage_db.rows(bot.db, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {t["name"]: _count(bot, f'"{t["name"]}"') for t in tables}


MALFORMED: dict[str, tuple[bytes, str]] = {
    "not json": (b"hello, not json", "application/json"),
    "truncated json": (_message_body()[:57], "application/json"),
    "payload=notjson": (b"payload=notjson", "application/x-www-form-urlencoded"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "invalid utf-8": (b'{"type": "event_callback", "x": "\xff\xfe"}', "application/json"),
    "json array": (b"[1, 2]", "application/json"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_body_signed_is_400_unsigned_is_401(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    body, content_type = MALFORMED[name]
    caplog.set_level(logging.INFO)
    assert _raw_post(bot, body, content_type, sign=False) == 401
    assert _raw_post(bot, body, content_type, sign=True) == 400
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    assert not [r for r in caplog.records if "Traceback" in r.getMessage()]
    refusals = [r for r in caplog.records if r.name == "bot.slack.request_guard"]
    assert len(refusals) == 2 and {getattr(r, "status") for r in refusals} == {"401", "400"}


def test_non_numeric_timestamp_is_401(bot: BotUnderTest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = _message_body()
    signature = SignatureVerifier(SECRET).generate_signature(timestamp="abc", body=body.decode())
    conn = http.client.HTTPConnection("127.0.0.1", bot.server.server_port, timeout=20)
    conn.request(
        "POST",
        EVENTS_PATH,
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": "abc",
            "X-Slack-Signature": signature,
        },
    )
    assert conn.getresponse().status == 401
    conn.close()
    assert all(r.exc_info is None for r in caplog.records)
    assert _count(bot, "messages") == 0


def test_published_message_and_command_still_pass(bot: BotUnderTest) -> None:
    assert _raw_post(bot, _message_body(), sign=True) == 200
    bot.fake.wait_for("chat.postMessage")
    command = load_command_body(
        team_id=TEAM,
        channel_id=SUPPORT_CHANNEL,
        user_id=USER,
        command="/camel",
        text="help",
        response_url=bot.fake.response_url("command"),
    )
    assert _raw_post(bot, command.encode(), FORM, sign=True) == 200
    assert "predict" in bot.command_replies()[0]


def test_ssl_check_is_200_with_an_empty_body_signed_or_not_and_stores_nothing(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture
) -> None:
    # Slack checks the certificate of a command URL with this form; Bolt answers it before verifying.
    caplog.set_level(logging.INFO)
    before = _stored(bot)
    ssl_check = load_ssl_check_body().encode()
    assert _raw_exchange(bot, ssl_check, FORM, sign=True) == (200, b"")
    assert _raw_exchange(bot, ssl_check, FORM, sign=False) == (200, b"")
    # A command that carries ssl_check=1 is only a certificate check too, as in Bolt: it is not run.
    command = load_command_body(
        team_id=TEAM,
        channel_id=SUPPORT_CHANNEL,
        user_id=USER,
        command="/camel",
        text="help",
        response_url=bot.fake.response_url("command"),
    )
    assert _raw_exchange(bot, f"{command}&ssl_check=1".encode(), FORM, sign=False) == (200, b"")
    assert _stored(bot) == before
    assert not [r for r in caplog.records if r.name == "bot.slack.request_guard" and r.levelno >= logging.WARNING]
    # The same command without ssl_check runs: its one reply is the only one Slack gets.
    assert _raw_post(bot, command.encode(), FORM, sign=True) == 200
    assert "predict" in bot.command_replies()[0]
    assert len(bot.fake.calls_of("response_url")) == 1


def test_oversized_body_is_413_without_being_read(bot: BotUnderTest) -> None:
    # Announce 5 MB, send 1 KB: the answer comes without the server waiting for the rest.
    with socket.create_connection(("127.0.0.1", bot.server.server_port), timeout=20) as sock:
        sock.sendall(
            f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {5_000_000}\r\n\r\n".encode()
            + b"x" * 1024
        )
        answer = sock.recv(4096)
    assert answer.split(b"\r\n", 1)[0].split()[1] == b"413"


def test_chunked_body_over_the_limit_is_413(bot: BotUnderTest) -> None:
    # No Content-Length: the server can only refuse once it has read past the limit, and then it
    # answers 413 and closes while the client may still be writing. Like a careful client, this
    # one checks for an early answer before each chunk and stops writing once it has one (or once
    # the server has closed), then reads the answer.
    chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
    limit = bot.settings.max_body_bytes
    with socket.create_connection(("127.0.0.1", bot.server.server_port), timeout=60) as sock:
        sock.sendall(
            f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        while sent <= 4 * limit and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: its answer is waiting to be read
            sent += 65536
        assert sent > limit, "the server answered before the body reached the limit"
        status_line = sock.makefile("rb").readline()
    assert status_line.split()[1] == b"413", status_line


def test_no_body_in_logs_and_no_forged_line(bot: BotUnderTest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "BODYMARKER"
    forged = json.dumps({"type": "event_callback", "text": marker + "\n" + FORGED + "\n"}).replace("\\n", "\n").encode()
    big = (marker * 90_000).encode()  # 900 KB unsigned, under the size limit
    for body in (forged, big):
        assert _raw_post(bot, body, sign=False) == 401
        assert _raw_post(bot, body, sign=True, timestamp="1") == 401  # stale
    formatter = JsonFormatter()
    output = "\n".join(formatter.format(r) for r in caplog.records)
    assert marker not in output and "FORGED" not in output
    assert len(output) < 10_000
    for line in output.splitlines():
        json.loads(line)  # every line is one JSON object: nothing can start a line of its own


def test_json_formatter_escapes_newlines_in_any_value() -> None:
    record = logging.makeLogRecord({"name": "bot.x", "levelname": "INFO", "msg": "text %s", "args": ("a\n" + FORGED,)})
    record.__dict__["peer"] = "1.2.3.4\n" + FORGED
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["message"] == "text a\n" + FORGED and json.loads(line)["peer"].endswith("FORGED")
