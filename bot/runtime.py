"""The one assembly of a running bot: store, metrics, serving registry, learning loop, Slack app, server.

`camel-bot serve`, the demo, the tests and bench/reload all build the bot here, in this order,
so every part is handed what it needs when it is made and nothing is finished by mutation:

1. the store, with the configured tasks applied (`open_store`);
2. the metrics and the serving registry (task -> hot-swappable `camel.Predictor`);
3. the learning loop, whose round reports reach Slack through `post`/`upload` callables made
   here from the Web API client, so `bot.loop` never imports Slack; starting it loads every
   task's active adapter;
4. the Bolt app, which sees the loop only as the `Learning` protocol, so `bot.slack` never
   imports the loop;
5. in HTTP mode, the threading WSGI server.

A part may be left out (`learning=False`, `slack=False`, `http=False`) by tests and benchmarks
that need less; unit tests may still build a single part directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from slack_bolt import App
from slack_sdk import WebClient
from sqlite_utils import Database

import storage
from bot.loop import LearningLoop
from bot.loop.registry import PredictorRegistry
from bot.loop.zero_shot import MAX_BACKGROUND
from bot.loop.round_report import Post, Upload
from bot.metrics import BotMetrics
from bot import task_config
from bot.settings import Settings
from bot.slack.app import build_app, build_client
from bot.slack.http_server import EVENTS_PATH, serve_http
from bot.slack.listeners import Registered, declared

log = logging.getLogger(__name__)


def apply_task_settings(settings: Settings, db: Database) -> list[storage.Task]:
    """Seed the configured tasks in storage and add to them (`bot.task_config`).

    The file creates a task and adds labels, channels and descriptions; a value changed in Slack
    since the file last set it is kept, and the conflict is logged (and shown by `doctor`).
    """
    tasks, _conflicts = task_config.apply_task_settings(settings, db)
    return tasks


def open_store(settings: Settings) -> Database:
    """The bot's database at `settings.db_path`, migrated, with the configured tasks applied."""
    db = storage.open_store(settings.db_path)
    apply_task_settings(settings, db)
    return db


def slack_post(client: WebClient) -> Post:
    """`post(channel, text, blocks)` for the learning loop, on a slack_sdk WebClient."""

    def post(channel: str, text: str, blocks: list[dict[str, Any]]) -> Any:
        return client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    return post


def slack_upload(client: WebClient) -> Upload:
    """`upload(channel, content, filename, title)` for the learning loop, on a slack_sdk WebClient."""

    def upload(channel: str, content: bytes, filename: str, title: str) -> Any:
        return client.files_upload_v2(channel=channel, content=content, filename=filename, title=title)

    return upload


@dataclass(eq=False)
class Runtime:
    """The assembled parts; `stop()` (or leaving a `with` block) stops the server, then the loop."""

    settings: Settings
    db: Database
    metrics: BotMetrics
    predictors: PredictorRegistry
    loop: LearningLoop | None = None
    app: App | None = None
    server: WSGIServer | None = None
    registered: Registered = field(default_factory=dict)
    reload_errors: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL of the HTTP server on this machine (for tests and the demo)."""
        if self.server is None:
            raise RuntimeError("this runtime serves no HTTP")
        return f"http://127.0.0.1:{self.server.server_port}"

    @property
    def events_url(self) -> str:
        return self.url + EVENTS_PATH

    def stop(self) -> None:
        """Stop taking requests first, then stop scheduling; a running round finishes in its own process."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.loop is not None:
            self.loop.stop()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    settings: Settings,
    *,
    db: Database | None = None,
    learning: bool = True,
    slack: bool = True,
    http: bool | None = None,
) -> Runtime:
    """Build and start the bot in order (see the module docstring).

    `db`: an already opened store (default: `open_store(settings)`); `http`: serve HTTP (default:
    when `settings.mode` is "http"); Socket Mode is connected by the caller on `runtime.app`.
    """
    db = open_store(settings) if db is None else db
    metrics = BotMetrics()
    predictors = PredictorRegistry(
        settings.model.base_model,
        settings.feature_cache_dir,
        metrics=metrics,
        zero_shot=settings.model.zero_shot,
        background=lambda task: storage.recent_texts(db, task.channels, limit=MAX_BACKGROUND),
    )
    client = build_client(settings) if slack else None
    runtime = Runtime(settings, db, metrics, predictors)
    if learning:
        runtime.loop = LearningLoop(
            settings,
            predictors,
            post=slack_post(client) if client is not None else None,
            upload=slack_upload(client) if client is not None else None,
        )
        runtime.loop.start()  # also serves each task's active adapter
        runtime.reload_errors = list(runtime.loop.reload_errors)
    else:
        runtime.reload_errors = predictors.sync(db)
    try:
        if client is not None:
            runtime.app = build_app(settings, db, predictors, runtime.loop, metrics=metrics, client=client)
            runtime.registered = declared()
            if settings.mode == "http" if http is None else http:
                runtime.server = serve_http(runtime.app, settings.http_port, settings.http_host, metrics)
    except BaseException:
        runtime.stop()
        raise
    return runtime
