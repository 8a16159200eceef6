"""A text that leaves (deleted or edited in Slack, its author deleted or old text purged with the CLI) is gone from
the raw bytes of every file in the data folder: camel.db, its WAL, the inbox's event bodies (in
camel.db) and the feature cache's shards (its hidden states, keyed by the text's hash and by the
hash of the prefix the bot predicted on), for a running bot, once its reload poll ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

import camel
import storage
from bot.cli import main
from bot.demo.local_slack import FakeSlackAPI
from storage import db as storage_db
from tests.bot.conftest import SUPPORT_CHANNEL, TEAM, USER, BotUnderTest, running_bot, wait_until
from tests.slack_fixtures import load_payload

# Longer than the bot's max_predict_chars (40 in the test settings): the cache also holds the prefix.
SECRET = "refund my card 4111 stolen in Lisbon yesterday please"
KEPT = "card come arrival when"
NEW_TEXT = "refund please"


def _forms(text: str) -> set[bytes]:
    """The text as SQLite stores it and as the inbox's JSON bodies hold it."""
    return {text.encode("utf-8"), json.dumps(text, ensure_ascii=True)[1:-1].encode("ascii")}


def traces(data: Path, text: str, max_chars: int = 40) -> list[str]:
    """Where `text` (or a cache entry of it or of its predicted prefix) is still on disk."""
    digests = {camel.text_digest(text), camel.text_digest(text[:max_chars])}
    found: list[str] = []
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        if any(form in raw for form in _forms(text)):
            found.append(f"{path.relative_to(data)}: the text")
        if "feature_cache" in path.parts and any(d.encode() in raw for d in digests):
            found.append(f"{path.relative_to(data)}: its hidden states")
    return found


def _cache_files(data: Path) -> list[Path]:
    return [p for p in (data / "feature_cache").iterdir() if p.name.endswith(camel.cache.SHARD_SUFFIX)]


def _post(bot: BotUnderTest, body: dict[str, Any]) -> None:
    status, _ = bot.post(json.dumps(body).encode(), "application/json")
    assert status == 200


def _handled(bot: BotUnderTest, event_id: str) -> None:
    wait_until(
        lambda: storage_db.rows(bot.db, "SELECT 1 FROM inbox WHERE event_id = ? AND done_at IS NOT NULL", (event_id,)),
        what=f"{event_id} handled",
    )


def _answered_and_cached(bot: BotUnderTest, data: Path, replies: int) -> None:
    """The bot answered `replies` messages; its cache's entries reach disk (as after flush_every)."""
    bot.fake.wait_for("chat.postMessage", replies)
    cache = bot.predictors.cache
    assert cache is not None
    cache.flush()
    found = traces(data, SECRET)
    # The check sees the text where it was: the database or its WAL, and the cache's shards.
    assert any("camel.db" in f for f in found) and any("hidden states" in f for f in found), found


@pytest.fixture()
def data_bot(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> Iterator[tuple[BotUnderTest, Path]]:
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, with_learning=True) as bot:
        yield bot, tmp_path / "data"


def _poll(bot: BotUnderTest) -> None:
    """What the bot runs every reload_poll_s (also scheduled; run here so the test waits on it)."""
    assert bot.runtime.loop is not None
    bot.runtime.loop.poll()


def test_a_message_deleted_in_slack_leaves_no_byte_on_disk(data_bot: tuple[BotUnderTest, Path]) -> None:
    bot, data = data_bot
    bot.send_message(SECRET, "1700000000.000100")
    bot.send_message(KEPT, "1700000000.000200")
    _answered_and_cached(bot, data, 2)
    kept_shards = len(_cache_files(data))

    deleted = load_payload(
        "message_deleted",
        team_id=TEAM,
        event_id="EvDELETE01",
        channel=SUPPORT_CHANNEL,
        user=USER,
        text=SECRET,
        ts="1700000000.000100",
        deleted_ts="1700000000.000100",
        event_ts="1700000009.000100",
    )
    deleted["event"]["ts"] = deleted["event"]["event_ts"]  # the deletion event's own ts
    _post(bot, deleted)
    _handled(bot, "EvDELETE01")
    _poll(bot)

    assert traces(data, SECRET) == []
    # Only the shard holding the text was rewritten: the other message's states are still cached.
    cache = camel.FeatureCache(bot.predictors.cache.base, str(data / "feature_cache"))
    assert any(k.startswith(camel.text_digest(KEPT)) for k in cache._on_disk)
    assert len(_cache_files(data)) == kept_shards
    assert storage.messages.find_message(bot.db, workspace=TEAM, channel=SUPPORT_CHANNEL, ts="1700000000.000100")


def test_the_text_before_an_edit_leaves_no_byte_on_disk(data_bot: tuple[BotUnderTest, Path]) -> None:
    bot, data = data_bot
    bot.send_message(SECRET, "1700000000.000100")
    _answered_and_cached(bot, data, 1)

    edited = load_payload("message_changed", team_id=TEAM, event_id="EvEDIT0001", channel=SUPPORT_CHANNEL, user=USER)
    event = edited["event"]
    event["ts"] = event["event_ts"] = "1700000009.000100"
    event["message"].update(text=NEW_TEXT, ts="1700000000.000100")
    event["message"]["blocks"][0]["elements"][0]["elements"][0]["text"] = NEW_TEXT
    event["previous_message"].update(text=SECRET, ts="1700000000.000100")
    event["previous_message"]["blocks"][0]["elements"][0]["elements"][0]["text"] = SECRET
    _post(bot, edited)
    _handled(bot, "EvEDIT0001")
    _poll(bot)

    assert traces(data, SECRET) == []
    stored = storage.messages.find_message(bot.db, workspace=TEAM, channel=SUPPORT_CHANNEL, ts="1700000000.000100")
    assert stored is not None and stored.text == NEW_TEXT
    assert traces(data, NEW_TEXT)  # the new text is stored: the check would see it


def test_a_message_delivered_after_its_deletion_leaves_no_byte_on_disk(data_bot: tuple[BotUnderTest, Path]) -> None:
    """Slack retries a message event, or two workers race: the deletion is handled first, then
    the message event arrives with the text; it stays deleted and its body leaves the WAL too."""
    bot, data = data_bot
    deleted = load_payload(
        "message_deleted",
        team_id=TEAM,
        event_id="EvDELETE02",
        channel=SUPPORT_CHANNEL,
        user=USER,
        text=SECRET,
        ts="1700000000.000100",
        deleted_ts="1700000000.000100",
        event_ts="1700000009.000100",
    )
    deleted["event"]["ts"] = deleted["event"]["event_ts"]
    _post(bot, deleted)
    _handled(bot, "EvDELETE02")
    bot.send_message(SECRET, "1700000000.000100", event_id="EvLATEMSG1")
    _handled(bot, "EvLATEMSG1")
    _poll(bot)

    assert traces(data, SECRET) == []
    stored = storage.messages.find_message(bot.db, workspace=TEAM, channel=SUPPORT_CHANNEL, ts="1700000000.000100")
    assert stored is not None and stored.deleted_at is not None and stored.text == ""
    assert bot.fake.calls_of("chat.postMessage") == []  # and it is not answered


@pytest.mark.parametrize("command", ["delete-user", "purge"])
def test_text_erased_with_the_cli_while_the_bot_runs_leaves_no_byte_on_disk(
    data_bot: tuple[BotUnderTest, Path], tiny_bert_dir: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bot, data = data_bot
    bot.send_message(SECRET, "1700000000.000100")
    bot.send_message(KEPT, "1700000000.000200", user="U0BOB")
    bot.fake.wait_for("chat.postMessage", 2)  # answered: the states wait in the bot's memory, unflushed
    config = data.parent / "camel-bot.toml"
    config.write_text(f'data_dir = "{data}"\nmax_predict_chars = 40\n[model]\nbase_model = "{tiny_bert_dir}"\n')
    with storage_db.transaction(bot.db) as conn:  # the secret is old and nobody labelled it: purge takes it
        conn.execute("UPDATE messages SET received_at = '2020-01-01T00:00:00.000000+00:00' WHERE text = ?", (SECRET,))

    args = ["delete-user", USER] if command == "delete-user" else ["purge", "--older-than-days", "30"]
    assert main([*args, "--config", str(config)]) == 0
    assert "1 messages" in capsys.readouterr().out
    cache = bot.predictors.cache
    assert cache is not None
    # Before its poll the bot cannot know: flush_every comes round and its pending states reach a
    # shard. The poll must find and rewrite that shard, and clear the bot's memory.
    cache.flush()
    assert any("hidden states" in f for f in traces(data, SECRET))
    _poll(bot)

    assert traces(data, SECRET) == []
    assert not any(k.startswith(camel.text_digest(SECRET[:40])) for k in cache._memory)
    assert any(k.startswith(camel.text_digest(KEPT)) for k in cache._on_disk)
