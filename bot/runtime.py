"""The one assembly of a running bot: store, metrics, serving registry, learning loop, Slack app, server.

`camel-bot serve`, the demo, the tests and bench/system/reload all build the bot here, in this
order, so every part is handed what it needs when it is made and nothing is finished by mutation:

1. the store, with the configured tasks applied (`open_store`);
2. the metrics and the serving registry (task -> hot-swappable `camel.Predictor`);
3. the learning loop, whose neutral reports (`bot.reports`) reach Slack through a
   `SlackPublisher` made here from the Web API client, which the loop sees only as its
   `Publisher` protocol, so `bot.loop` never imports Slack; starting it loads every task's
   active adapter;
4. the listeners' `Services` (which see the loop only as the `Learning` protocol, so `bot.slack`
   never imports the loop), Bolt's listener threads, the Bolt app, and the inbox workers that
   handle the events the app stored;
5. in HTTP mode, the waitress WSGI server behind the request guard;
6. the `Runtime`, made once all its parts exist.

All of them share one database connection (storage's lock makes it safe across threads); only
the training child process opens its own. A part may be left out (`learning=False`,
`slack=False`, `http=False`) by tests and benchmarks that need less; unit tests may still build
a single part directly.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from sqlite_utils import Database

import storage
from bot.loop import LearningLoop
from bot.loop.registry import PredictorRegistry
from bot.loop.zero_shot import MAX_BACKGROUND, Background
from bot.metrics import BotMetrics
from bot import task_config
from bot.settings import Settings
from bot.slack.app import build_app, build_client
from bot.slack.http_server import EVENTS_PATH, HttpServer, serve_http
from bot.slack.inbox_worker import InboxWorkers
from bot.slack.listeners import Registered, declared
from bot.slack.publisher import SlackPublisher
from bot.slack.services import AdminDirectory, Services

log = logging.getLogger(__name__)
# Bolt listeners (commands, clicks): they only ack and answer, while every event's work runs on
# the inbox workers, so a few threads keep acks fast.
LISTENER_THREADS = 8


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


def warn_about_secrets_file(settings: Settings) -> str | None:
    """Log (as ssh does for a private key) a secrets file that the group or others may read."""
    if not settings.secrets_file:
        return None
    warning = storage.files.secrets_file_warning(settings.secrets_file)
    if warning:
        log.warning("%s", warning)
    return warning


@dataclass(eq=False)
class Runtime:
    """The assembled parts, each already started; `stop()` (or leaving a `with` block) stops the
    server, then the inbox workers and Bolt's listener threads, then the loop.

    A part the caller left out (`start(learning=False, slack=False, http=False)`) is None. Only
    `stop()` changes a runtime: it drops each part it stopped, so a second stop does nothing.
    """

    settings: Settings
    db: Database
    metrics: BotMetrics
    predictors: PredictorRegistry
    reload_errors: list[str]
    loop: LearningLoop | None
    services: Services | None
    listeners: ThreadPoolExecutor | None
    app: App | None
    workers: InboxWorkers | None
    server: HttpServer | None
    registered: Registered

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
        if self.workers is not None:
            self.workers.stop()  # unfinished events stay in the inbox for the next start
            self.workers = None
        if self.listeners is not None:
            self.listeners.shutdown(wait=True)  # a command under way finishes before the store closes
            self.listeners = None
        if self.loop is not None:
            self.loop.stop()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SlackSide:
    """The parts that talk to Slack, started in this order (`start_slack`)."""

    services: Services
    listeners: ThreadPoolExecutor
    app: App
    workers: InboxWorkers
    server: HttpServer | None


def predictor_registry(
    settings: Settings,
    *,
    metrics: BotMetrics | None = None,
    zero_shot: bool = False,
    background: Background | None = None,
) -> PredictorRegistry:
    """The serving registry as the settings configure it (base, cache folder and its memory cap,
    engine and where its exports live, the split): the bot's, and a benchmark's that drives the
    bot's parts without its Slack side."""
    return PredictorRegistry(
        settings.model.base_model,
        settings.feature_cache_dir,
        metrics=metrics,
        zero_shot=zero_shot,
        engine=settings.model.engine,
        engines_dir=settings.paths.engines,
        trainable_layers=settings.model.trainable_layers,
        cache_memory_entries=settings.model.cache_memory_entries,
        background=background,
    )


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
    When a part fails to start, the parts started before it are stopped again.
    """
    db = open_store(settings) if db is None else db
    warn_about_secrets_file(settings)
    storage.files.make_private(settings.data_dir)  # 0700 folders, 0600 files, whatever the umask
    metrics = BotMetrics()
    predictors = predictor_registry(
        settings,
        metrics=metrics,
        zero_shot=settings.model.zero_shot,
        background=lambda task: storage.messages.recent_texts(db, task.channels, limit=MAX_BACKGROUND),
    )
    client = build_client(settings) if slack else None
    with ExitStack() as started:  # unwound (last part first) only when a later part fails
        loop: LearningLoop | None = None
        if learning:
            publisher = None
            if client is not None:
                # Its own directory: the loop starts before Services, and tells admins of what it finds.
                directory, web = AdminDirectory(settings.admins, settings.admin_usergroup), client
                publisher = SlackPublisher(web, admins=lambda: directory.everyone(web))
            loop = LearningLoop(settings, db, predictors, publisher)
            loop.start()  # also serves each task's active adapter
            started.callback(loop.stop)
        reload_errors = list(loop.reload_errors) if loop is not None else predictors.sync(db)
        side = None
        if client is not None:
            services = Services(settings=settings, db=db, predictors=predictors, learning=loop, metrics=metrics)
            side = start_slack(services, client, settings.mode == "http" if http is None else http, started)
            if loop is not None:  # an erasure another process made leaves the team's memory on the poll too
                loop.sweeper.stores = [*loop.sweeper.stores, services.memory]
        runtime = Runtime(
            settings=settings,
            db=db,
            metrics=metrics,
            predictors=predictors,
            reload_errors=reload_errors,
            loop=loop,
            services=side.services if side else None,
            listeners=side.listeners if side else None,
            app=side.app if side else None,
            workers=side.workers if side else None,
            server=side.server if side else None,
            registered=declared(),
        )
        started.pop_all()  # from here on, the runtime's stop() owns them
    return runtime


def start_slack(services: Services, client: WebClient, http: bool, started: ExitStack) -> SlackSide:
    """The Slack side, in order: Bolt's listener threads, the app, the inbox workers and, with
    `http`, the server; each one's stop is pushed on `started`, so a failure stops what came before."""
    settings = services.settings
    listeners = ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="camel-listener")
    started.callback(listeners.shutdown, wait=True)
    app = build_app(services, client, listeners)
    # Event work runs on its own threads with a client that never sleeps on a 429.
    workers = InboxWorkers(services, build_client(settings, wait_on_rate_limit=False))
    workers.start()
    started.callback(workers.stop)
    server = None
    if http:
        server = serve_http(
            app,
            settings.http_port,
            settings.http_host,
            services.metrics,
            threads=settings.http_threads,
            max_body_bytes=settings.max_body_bytes,
            signing_secret=settings.signing_secret,
            readiness=services.health,
        )
        started.callback(server.server_close)
        started.callback(server.shutdown)
    return SlackSide(services, listeners, app, workers, server)
