"""HTTP mode: signature checks, de-duplication, health and metrics endpoints."""

from __future__ import annotations

import time
import urllib.request

import storage
from storage import db as storage_db
from tests.bot.conftest import SUPPORT_CHANNEL, BotUnderTest, wait_until


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
    time.sleep(0.5)  # a duplicate would have been handled by now
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
