"""`camel-bot serve`: run the Slack app (HTTP or Socket Mode) with the learning loop beside it."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import TYPE_CHECKING

from bot import serve_lock
from bot.settings import Settings, load_settings

if TYPE_CHECKING:  # the runtime pulls in torch; `serve --help` and setting errors must not wait for it
    from bot.runtime import Runtime

log = logging.getLogger("bot.serve")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the Slack bot",
        description="Serve Slack in HTTP mode (/slack/events, /healthz, /metrics) "
        "or Socket Mode, and run the learning loop.",
    )
    parser.add_argument(
        "--config", metavar="PATH", default=None, help="settings TOML (default: $CAMEL_BOT_CONFIG or ./camel-bot.toml)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    settings.require_secrets()
    # Before anything else touches the data folder: a second serve on it refuses to start.
    lock = serve_lock.hold(settings.data_dir)
    # Imported after the settings check so that a wrong setting is reported without loading torch.
    import storage
    from bot import runtime

    try:
        # Read-only, before anything opens the file for writing (applying the task settings, the
        # WAL checkpoint on close): a damaged file is refused untouched, kept aside for recovery.
        storage.db.require_healthy_file(settings.db_path)
        db = runtime.open_store(settings)
        with runtime.start(settings, db=db) as bot:  # loads each task's active adapter before serving
            _serve(settings, bot)
    finally:
        lock.close()  # the kernel would release it at exit anyway
    return 0


def _serve(settings: Settings, bot: Runtime) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if settings.mode == "socket":
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert bot.app is not None  # the runtime built the Slack app
        handler = SocketModeHandler(bot.app, settings.app_token)
        handler.connect()
        log.info("connected to Slack in Socket Mode")
        stop.wait()
        handler.close()
        return
    from bot.slack.http_server import EVENTS_PATH

    assert bot.server is not None  # HTTP mode: the runtime started the server
    log.info("listening on %s:%s%s", settings.http_host, bot.server.server_port, EVENTS_PATH)
    stop.wait()
