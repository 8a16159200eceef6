"""In process: events go through the durable inbox and its own workers, so an acknowledged event is never lost.

- the event is in the inbox before the 200, and a new set of workers (a restart) finishes it;
- an answer older than `reply_max_age_s` is skipped and counted, the message still stored;
- a command is answered while every inbox worker is busy (acks never wait behind event work);
- a reaction whose message is not stored is put back in the inbox, never slept on.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import storage
from bot.demo.local_slack import FakeSlackAPI
from bot.slack.listeners import reactions
from storage import db as storage_db
from tests.bot.conftest import SUPPORT_CHANNEL, BotUnderTest, running_bot, wait_until


def _inbox(bot: BotUnderTest) -> list[dict[str, Any]]:
    return [dict(r) for r in storage_db.rows(bot.db, "SELECT * FROM inbox ORDER BY id")]


def _metric(bot: BotUnderTest, line: str) -> float:
    text = bot.runtime.metrics.render().decode()
    found = [row for row in text.splitlines() if row.startswith(line + " ")]
    return float(found[0].split()[-1]) if found else 0.0


def test_event_is_in_the_inbox_before_the_200_and_a_restart_finishes_it(bot: BotUnderTest) -> None:
    assert bot.runtime.workers is not None
    bot.runtime.workers.stop()  # as if the process died right after acknowledging
    status, _ = bot.send_message("where is my card", "1700000200.000100")
    assert status == 200
    rows = _inbox(bot)
    assert len(rows) == 1 and rows[0]["done_at"] is None and "where is my card" in rows[0]["body"]
    assert bot.fake.calls_of("chat.postMessage") == []
    bot.restart_inbox_workers()
    assert bot.fake.wait_for("chat.postMessage")[0].params["thread_ts"] == "1700000200.000100"
    wait_until(lambda: _inbox(bot)[0]["outcome"] == "done", what="inbox row finished")
    assert _inbox(bot)[0]["body"] == ""  # the text leaves the inbox once handled
    assert bot.send_message("where is my card", "1700000200.000100", event_id=rows[0]["event_id"])[0] == 200
    assert len(_inbox(bot)) == 1  # the row is the de-duplication mark


def test_the_event_is_synced_to_disk_before_the_200(bot: BotUnderTest) -> None:
    # The insert behind Slack's 200 commits at synchronous=FULL (the WAL is synced at that commit,
    # so the event survives an OS crash or power loss); the store's other writes stay NORMAL.
    assert bot.runtime.workers is not None and bot.settings.inbox_synchronous == "FULL"
    bot.runtime.workers.stop()
    seen: list[str] = []
    bot.db.conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split())))
    try:
        assert bot.send_message("where is my card", "1700000210.000100")[0] == 200
    finally:
        bot.db.conn.set_trace_callback(None)
    insert = next(i for i, s in enumerate(seen) if s.startswith("INSERT INTO inbox"))
    commit = next(i for i, s in enumerate(seen) if i > insert and s == "COMMIT")
    levels = [(i, s) for i, s in enumerate(seen) if s.startswith("PRAGMA synchronous")]
    assert [s for i, s in levels if i < insert][-1] == "PRAGMA synchronous = FULL", seen
    assert [s for i, s in levels if i > commit][0] == "PRAGMA synchronous = NORMAL", seen
    assert not [s for i, s in levels if insert < i < commit]
    assert len(_inbox(bot)) == 1


@pytest.fixture()
def impatient_bot(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> Iterator[BotUnderTest]:
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, reply_max_age_s=0.2) as running:
        yield running


def test_answer_older_than_reply_max_age_is_skipped_and_counted(impatient_bot: BotUnderTest) -> None:
    bot = impatient_bot
    assert bot.runtime.workers is not None
    bot.runtime.workers.stop()
    assert bot.send_message("refund charged twice", "1700000201.000100")[0] == 200
    time.sleep(0.5)  # the bot is down for longer than reply_max_age_s
    bot.restart_inbox_workers()
    wait_until(lambda: _inbox(bot)[0]["outcome"] == "late", what="late event finished")
    assert storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=SUPPORT_CHANNEL, ts="1700000201.000100")
    assert bot.fake.calls_of("chat.postMessage") == []
    assert _metric(bot, 'camel_replies_skipped_total{reason="too_old"}') == 1.0


def test_command_is_answered_while_every_inbox_worker_is_busy(bot: BotUnderTest) -> None:
    workers = bot.runtime.workers
    assert workers is not None
    release = threading.Event()
    started = threading.Semaphore(0)

    def stuck(*args: Any) -> None:
        started.release()
        release.wait(60)

    workers.handlers["message"] = stuck
    try:
        for i in range(workers.threads + 2):
            assert bot.send_message(f"card {i}", f"1700000300.{i:06d}")[0] == 200
        for _ in range(workers.threads):
            assert started.acquire(timeout=30), "workers did not pick up the events"
        assert bot.send_command("help")[0] == 200
        assert "predict" in bot.command_replies()[0]  # answered while all inbox workers are busy
    finally:
        release.set()


def test_reaction_on_a_message_not_stored_is_requeued_not_slept_on(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[str] = []
    real_sleep = time.sleep

    def watched_sleep(seconds: float) -> None:
        sleeps.append(threading.current_thread().name)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", watched_sleep)
    task = storage.tasks.get_task(bot.db, "support")
    assert task is not None
    emoji = next(iter(reactions.emoji_map_of(task)))  # any emoji the task understands
    count = 15
    for i in range(count):
        assert bot.send_reaction(emoji, SUPPORT_CHANNEL, f"1700000400.{i:06d}")[0] == 200
    assert bot.send_command("help")[0] == 200
    assert "predict" in bot.command_replies()[0]
    wait_until(
        lambda: storage.inbox.outcomes(bot.db).get("gave_up_reply_link") == count,
        timeout=30,
        what="reactions given up after their retries",
    )
    assert _metric(bot, 'camel_inbox_requeued_total{reason="reply_link"}') >= count
    assert not [name for name in sleeps if name.startswith(("camel-inbox", "ThreadPoolExecutor"))]


def test_a_deletion_event_waiting_in_the_inbox_is_found_by_its_author() -> None:
    # message_deleted names its author (and holds the old text) only in previous_message, so
    # erase_user must find the waiting inbox row by that user.
    from bot.slack.middleware import _user_of
    from tests.slack_fixtures import load_payload

    event = load_payload("message_deleted")["event"]
    assert "user" not in event and _user_of(event) == event["previous_message"]["user"]


def test_a_worker_whose_failed_event_cannot_be_recorded_waits_and_records_it(
    bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk can make a handler fail and then the write of its failure too: the worker
    must not die of the second error (leaving the event claimed by nobody) but record it once
    the database can be written again."""
    workers = bot.runtime.workers
    assert workers is not None

    def broken_handler(*_: Any) -> None:
        raise RuntimeError("handler failed")

    real_finish = storage.inbox.finish
    refusals = {"left": 2}

    def finish_refused_twice(db: Any, item_id: int, outcome: str) -> None:
        if outcome == "error" and refusals["left"] > 0:
            refusals["left"] -= 1
            raise storage.errors.DatabaseWriteError("cannot write database (disk full)")
        real_finish(db, item_id, outcome)

    monkeypatch.setitem(workers.handlers, "message", broken_handler)
    monkeypatch.setattr(storage.inbox, "finish", finish_refused_twice)
    assert bot.send_message("where is my card", "1700000210.000100")[0] == 200
    row = wait_until(
        lambda: next((r for r in _inbox(bot) if r["outcome"] == "error"), None), timeout=30, what="error recorded"
    )
    assert refusals["left"] == 0 and row["done_at"] is not None
    assert all(worker.is_alive() for worker in workers._workers)
