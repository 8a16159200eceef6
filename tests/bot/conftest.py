"""The Slack app as `camel-bot serve` assembles it (HTTP mode, an ephemeral port), talking to a fake Slack Web API.

Requests are signed like Slack signs them and handed to the Bolt app in this process
(`app.dispatch(BoltRequest(...))`, as bolt-python's own scenario tests do): that is the call
the HTTP server makes once the request guard has passed a request, so tests of what the bot does
with an event, a command or a click need no socket in between. Tests of HTTP itself (the request
guard, routing, signatures, the server under a burst) set `over_http` and go through the real
server. The app predicts with a real camel Predictor on the tiny BERT and an adapter trained once
per session.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import pytest
from slack_bolt.request import BoltRequest
from slack_bolt import App

import camel
import storage
from storage import db as storage_db
from bot import runtime
from bot.demo.local_slack import FakeSlackAPI
from bot.demo.slack_events import signed_headers
from bot.runtime import Runtime
from bot.settings import ModelSettings, Settings, TaskSettings
from bot.slack.app import build_client
from bot.slack.inbox_worker import InboxWorkers
from bot.slack.http_server import EVENTS_PATH
from tests.tiny_model import INTENT_WORDS

SECRET = "test-signing-secret"
TEAM = "T0CAMEL"
ADMIN = "U0ADMIN"
USER = "U0ALICE"
SUPPORT_CHANNEL = "C0SUPPORT"
MOOD_CHANNEL = "C0MOOD"
FREE_CHANNEL = "C0FREE"
WORDS = INTENT_WORDS
SUPPORT_LABELS = sorted(WORDS)
MOOD_LABELS = ["negative", "neutral", "positive"]


def training_texts(per_label: int = 24) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, words in WORDS.items():
        for i in range(per_label):
            texts.append(" ".join(words[(i + j) % len(words)] for j in range(3 + i % 3)))
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="session")
def support_adapter_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real adapter for the support task, trained on the tiny BERT once per session."""
    import torch

    torch.set_num_threads(1)
    texts, labels = training_texts()
    config = camel.CamelConfig(base_model=str(tiny_bert_dir), trainable_layers=1, bottleneck=16)
    result = camel.train(texts, labels, config=config, args=camel.TrainingArgs(max_epochs=6, seed=3, num_threads=1))
    folder = tmp_path_factory.mktemp("adapters") / "support" / "v0001"
    camel.save_adapter(result.adapter, str(folder))
    return folder


def default_tasks(**support: Any) -> list[TaskSettings]:
    """The two tasks every test bot serves; `support` changes fields of the support task."""
    return [
        TaskSettings(
            name="support",
            kind="intent",
            labels=SUPPORT_LABELS,
            channels=[SUPPORT_CHANNEL],
            abstain_threshold=0.0,
            **support,
        ),
        TaskSettings(name="mood", kind="sentiment", labels=MOOD_LABELS, channels=[MOOD_CHANNEL]),
    ]


def make_settings(data_dir: Path, fake: FakeSlackAPI, tiny_bert_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=str(data_dir),
        slack_api_url=fake.url,
        http_port=0,
        http_host="127.0.0.1",
        admins=[ADMIN],
        corrections_per_hour=5,
        max_predict_chars=40,
        token_verification_enabled=False,
        bot_token="xoxb-test-token",
        signing_secret=SECRET,
        model=ModelSettings(base_model=str(tiny_bert_dir), trainable_layers=1),
        tasks=default_tasks(),
    )
    values.update(overrides)
    return Settings(**values)


def post_signed(
    url: str, body: bytes, content_type: str, secret: str, *, timestamp: int | None = None
) -> tuple[int, bytes]:
    """POSTs `body` to the events path of the app at `url`, signed as Slack signs; the status and body."""
    request = urllib.request.Request(
        url + EVENTS_PATH,
        data=body,
        method="POST",
        headers=signed_headers(secret, body.decode("utf-8"), content_type, timestamp=timestamp),
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def dispatch_signed(
    app: App, body: bytes, content_type: str, secret: str, *, timestamp: int | None = None
) -> tuple[int, bytes]:
    """Hands `body`, signed as Slack signs, to the Bolt `app` in this process; the status and body.

    Bolt verifies the signature as it does behind the server (a wrong one is 401), then acks
    while the listener's work goes on in the bot's own threads.
    """
    headers = signed_headers(secret, body.decode("utf-8"), content_type, timestamp=timestamp)
    response = app.dispatch(
        BoltRequest(body=body.decode("utf-8"), headers={k.lower(): [v] for k, v in headers.items()})
    )
    return response.status, response.body.encode("utf-8")


@dataclass
class BotUnderTest:
    """The running bot (assembled by `bot.runtime`), the fake Slack, and helpers that talk to it like Slack.

    `over_http`: send through the real HTTP server (and its request guard) instead of handing the
    request to the app in this process.
    """

    runtime: Runtime
    fake: FakeSlackAPI
    events_sent: int = 0
    over_http: bool = False

    def __post_init__(self) -> None:
        assert self.runtime.app is not None and self.runtime.server is not None
        self.settings, self.db, self.predictors = self.runtime.settings, self.runtime.db, self.runtime.predictors
        self.app, self.server, self.url = self.runtime.app, self.runtime.server, self.runtime.url

    def stop(self) -> None:
        self.runtime.stop()

    def restart_inbox_workers(self) -> None:
        """New inbox workers on the same services, as the next process would start them (the
        test stopped the old ones first, as if the process had died after acknowledging)."""
        assert self.runtime.services is not None
        self.runtime.workers = InboxWorkers(
            self.runtime.services, build_client(self.settings, wait_on_rate_limit=False)
        )
        self.runtime.workers.start()

    # ---- signed requests
    def post(
        self, body: bytes, content_type: str, *, secret: str = SECRET, timestamp: int | None = None
    ) -> tuple[int, bytes]:
        if self.over_http:
            return post_signed(self.url, body, content_type, secret, timestamp=timestamp)
        return dispatch_signed(self.app, body, content_type, secret, timestamp=timestamp)

    def send_event(self, event: dict[str, Any], event_id: str | None = None, **kw: Any) -> tuple[int, bytes]:
        self.events_sent += 1
        body = {
            "type": "event_callback",
            "team_id": TEAM,
            "api_app_id": "A0CAMEL",
            "event": event,
            "event_id": event_id or f"Ev{self.events_sent:08d}",
            "event_time": int(time.time()),
        }
        return self.post(json.dumps(body).encode(), "application/json", **kw)

    def send_message(
        self,
        text: str,
        ts: str,
        channel: str = SUPPORT_CHANNEL,
        user: str = USER,
        extra: dict[str, Any] | None = None,
        **signing: Any,
    ) -> tuple[int, bytes]:
        event = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "channel_type": "channel",
            **(extra or {}),
        }
        return self.send_event(event, **signing)

    def send_reaction(
        self, name: str, channel: str, ts: str, user: str = USER, kind: str = "reaction_added"
    ) -> tuple[int, bytes]:
        return self.send_event(
            {
                "type": kind,
                "user": user,
                "reaction": name,
                "item": {"type": "message", "channel": channel, "ts": ts},
                "event_ts": ts,
            }
        )

    def send_command(self, text: str, user: str = USER, channel: str = SUPPORT_CHANNEL) -> tuple[int, bytes]:
        form = {
            "command": "/camel",
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": TEAM,
            "response_url": self.fake.response_url("command"),
            "trigger_id": "1.2.3",
        }
        return self.post(urlencode(form).encode(), "application/x-www-form-urlencoded")

    def send_action(
        self,
        action: dict[str, Any],
        *,
        user: str = USER,
        channel: str = SUPPORT_CHANNEL,
        message_ts: str = "",
        ephemeral: bool = False,
    ) -> tuple[int, bytes]:
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM},
            "user": {"id": user},
            "api_app_id": "A0CAMEL",
            "trigger_id": "1.2.3",
            "actions": [action],
            "channel": {"id": channel},
            "response_url": self.fake.response_url("action"),
            "container": {
                "type": "message",
                "channel_id": channel,
                "message_ts": message_ts,
                "is_ephemeral": ephemeral,
            },
        }
        if not ephemeral:
            payload["message"] = {"ts": message_ts, "type": "message"}
        return self.post(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")

    # ---- waiting for lazy listeners
    def wait_until_handled(self, timeout: float = 60.0) -> None:
        """Every event the bot took is finished (answered, dropped or given up): a check that
        nothing more happens (no second reply, nothing stored) means something only after this."""
        wait_until(lambda: storage.inbox.count_unfinished(self.db) == 0, timeout, "every taken event handled")

    def reply_ts(self, index: int = 0) -> str:
        """The ts Slack gave the bot's `index`-th chat.postMessage (waits for it)."""
        return str(self.fake.wait_for("chat.postMessage", index + 1)[index].response["ts"])

    def command_replies(self, count: int = 1) -> list[str]:
        """Texts of the first `count` ephemeral answers sent to response_urls (waits for them)."""
        return [str(c.params.get("text")) for c in self.fake.wait_for("response_url", count)]


def edit_event(text: str, ts: str, edit_ts: str, channel: str = SUPPORT_CHANNEL, user: str = USER) -> dict[str, Any]:
    """The message_changed event of `user` editing their message `ts` to `text` (the edit event's ts: `edit_ts`)."""
    return {
        "type": "message",
        "subtype": "message_changed",
        "channel": channel,
        "ts": edit_ts,
        "message": {"type": "message", "user": user, "text": text, "ts": ts},
    }


def wait_until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """The first truthy `check()`, polled every 20 ms; the timeout is generous (a busy machine),
    and only bounds a wait that would otherwise never end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")


def corrections(db: Any, **where: Any) -> list[dict[str, Any]]:
    # Through storage's locked read: the bot's listener threads share this connection.
    rows = [dict(r) for r in storage_db.rows(db, "SELECT * FROM corrections ORDER BY id")]
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


@pytest.fixture()
def fake_slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI(team_id=TEAM) as fake:
        yield fake


def start_bot(
    tmp_path: Path,
    fake: FakeSlackAPI,
    tiny_bert_dir: Path,
    adapter_dir: Path,
    *,
    with_learning: bool = False,
    **overrides: Any,
) -> BotUnderTest:
    settings = make_settings(tmp_path / "data", fake, tiny_bert_dir, **overrides)
    db = runtime.open_store(settings)
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support",
            version=1,
            path=str(adapter_dir),
            parent_version=None,
            run_id=None,
            metrics=json.loads((adapter_dir / "metrics.json").read_text())
            if (adapter_dir / "metrics.json").is_file()
            else {},
        ),
    )
    storage.adapters.activate_adapter(db, "support", 1, reason="test fixture")
    running = runtime.start(settings, db=db, learning=with_learning)
    assert running.reload_errors == []
    return BotUnderTest(running, fake)


@contextmanager
def running_bot(
    tmp_path: Path,
    fake: FakeSlackAPI,
    tiny_bert_dir: Path,
    adapter_dir: Path,
    *,
    with_learning: bool = False,
    **overrides: Any,
) -> Iterator[BotUnderTest]:
    """`start_bot` for a `with` block: on the way out the bot is stopped, a round still training
    (a child process of the learning loop) is waited for, and the store is closed."""
    running = start_bot(tmp_path, fake, tiny_bert_dir, adapter_dir, with_learning=with_learning, **overrides)
    try:
        yield running
    finally:
        loop = running.runtime.loop
        running.stop()
        for child in list(loop.children.values()) if loop is not None else []:
            # The child runs niced: on a busy machine (load 14 on 2 cores) a round took over 60 s.
            child.wait(timeout=300)
        running.db.close()


@pytest.fixture()
def bot_with_learning(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> Iterator[BotUnderTest]:
    """The bot with the real learning loop (scheduler started; rounds run as child processes)."""
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, with_learning=True) as running:
        yield running
        assert running.runtime.loop is not None


@pytest.fixture()
def bot(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> Iterator[BotUnderTest]:
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir) as running:
        yield running
