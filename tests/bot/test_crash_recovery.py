"""Kill -9 of `camel-bot serve` at random moments of a flood loses no acknowledged event.

The real serve runs as a subprocess (HTTP, waitress, the durable inbox, the tiny BERT with a
trained adapter); Slack's side is the local fake Web API, which survives the kills and counts
every reply. Each round floods signed message events from 4 threads, kills the process with
SIGKILL at a random moment once the flood is under way (some events of this start already
acknowledged), and starts it again on the same data folder. Five kills: each start of serve costs
seconds (torch's import), and every kill lands mid-flood, so more kills mostly add start-up time.
"""

from __future__ import annotations

import itertools
import json
import random
import signal
import subprocess
import threading
import time
import urllib.error
from collections import Counter
from pathlib import Path

import storage
from bot import runtime
from bot.demo.local_slack import FakeSlackAPI
from bot.settings import load_settings
from tests.bot.conftest import SUPPORT_CHANNEL, SUPPORT_LABELS, TEAM, USER, post_signed, wait_until
from tests.bot.serve_process import serve_env, start_serve, write_serve_config
from tests.slack_fixtures import load_payload

SECRET = "kill-secret"
KILLS = 5
ACKED_BEFORE_KILL = 5  # acknowledged events of this start before the kill may land
SENDERS = 4


def _config(tmp_path: Path, fake: FakeSlackAPI, tiny_bert_dir: Path) -> Path:
    return write_serve_config(
        tmp_path,
        fake,
        tiny_bert_dir,
        labels=SUPPORT_LABELS,
        # Pacing has its own tests (test_pacing.py); here every reply may go out at once.
        settings="max_predict_chars = 40\nchannel_posts_per_s = 1000.0\nchannel_burst = 1000",
        task_settings="abstain_threshold = 0.0",
    )


def _prepare_store(config: Path, adapter_dir: Path) -> None:
    db = runtime.open_store(load_settings(str(config)))
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=1, path=str(adapter_dir), parent_version=None, run_id=None, metrics={}
        ),
    )
    storage.adapters.activate_adapter(db, "support", 1, reason="test fixture")
    db.close()


def _start(config: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    return start_serve(config, serve_env(SLACK_BOT_TOKEN="xoxb-kill", SLACK_SIGNING_SECRET=SECRET), log_path)


def _send(port: int, number: int) -> tuple[str, str, int]:
    ts = f"1700002000.{number:06d}"
    event_id = f"EvKILL{number:06d}"
    payload = load_payload("message", team_id=TEAM, channel=SUPPORT_CHANNEL, user=USER, ts=ts, event_id=event_id)
    payload["event"]["text"] = f"where is my card {number}"
    status, _ = post_signed(f"http://127.0.0.1:{port}", json.dumps(payload).encode(), "application/json", SECRET)
    return event_id, ts, status


def test_kill_9_at_random_moments_loses_no_acknowledged_event(
    tmp_path: Path, tiny_bert_dir: Path, support_adapter_dir: Path
) -> None:
    rng = random.Random(20261128)
    numbers = itertools.count()
    acked: dict[str, str] = {}
    lock = threading.Lock()
    log_path = tmp_path / "serve.log"
    with FakeSlackAPI(team_id=TEAM) as fake:
        config = _config(tmp_path, fake, tiny_bert_dir)
        _prepare_store(config, support_adapter_dir)
        for _ in range(KILLS):
            process, port = _start(config, log_path)
            stop = threading.Event()

            def flood() -> None:
                while not stop.is_set():
                    with lock:
                        number = next(numbers)
                    try:
                        event_id, ts, status = _send(port, number)
                    except (urllib.error.URLError, ConnectionError, OSError):
                        return  # the server is gone: this event got no 200, Slack would retry it
                    if status == 200:
                        with lock:
                            acked[event_id] = ts

            with lock:
                acked_before = len(acked)
            senders = [threading.Thread(target=flood) for _ in range(SENDERS)]
            for sender in senders:
                sender.start()
            wait_until(lambda: len(acked) >= acked_before + ACKED_BEFORE_KILL, timeout=120, what="the flood under way")
            time.sleep(rng.uniform(0.0, 0.8))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            stop.set()
            for sender in senders:
                sender.join(timeout=30)
        process, port = _start(config, log_path)  # the restart that finishes the work
        try:

            def answered() -> set[str]:
                return {str(c.params.get("thread_ts")) for c in fake.calls_of("chat.postMessage")}

            wait_until(lambda: set(acked.values()) <= answered(), timeout=180, what="every acknowledged event answered")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        replies = Counter(str(c.params.get("thread_ts")) for c in fake.calls_of("chat.postMessage"))
    lost = [ts for ts in acked.values() if replies[ts] == 0]
    doubled = sum(count - 1 for count in replies.values() if count > 1)
    print(f"kills={KILLS} acknowledged={len(acked)} lost={len(lost)} doubled={doubled}")
    assert len(acked) > KILLS * 10, "the flood was too thin to mean anything"
    assert lost == []
    assert doubled <= KILLS  # only a kill between Slack accepting a reply and its record doubles it
    assert "Traceback" not in log_path.read_text()
