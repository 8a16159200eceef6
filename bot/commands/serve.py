"""`camel-bot serve`: run the Slack app (HTTP or Socket Mode) with the learning loop beside it."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from bot.settings import Settings, load_settings

log = logging.getLogger("bot.serve")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the Slack bot",
                                   description="Serve Slack in HTTP mode (/slack/events, /healthz, /metrics) "
                                               "or Socket Mode, and run the learning loop.")
    parser.add_argument("--config", metavar="PATH", default=None,
                        help="settings TOML (default: $CAMEL_BOT_CONFIG or ./camel-bot.toml)")
    parser.set_defaults(func=run)


def _start_learning(settings: Settings, predictors: PredictorRegistry, client: Any) -> Any:
    from bot.learning import LearningLoop
    from bot.round_report import slack_post, slack_upload

    loop = LearningLoop(settings, settings.db_path, predictors, post=slack_post(client), upload=slack_upload(client))
    loop.start()
    return loop


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    settings.require_secrets()
    # Imported after the settings check so that a wrong setting is reported without loading torch.
    import storage
    from bot.app import build_app
    from bot.metrics import Metrics
    from bot.predictors import PredictorRegistry
    from bot.services import apply_task_settings

    db = storage.open_store(settings.db_path)
    apply_task_settings(settings, db)
    metrics = Metrics()
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir, metrics=metrics)
    app = build_app(settings, db, predictors, metrics=metrics)
    learning = _start_learning(settings, predictors, app.client)  # also loads each task's active adapter
    app.camel_services.learning = learning  # type: ignore[attr-defined]
    try:
        _serve(settings, app)
    finally:
        learning.stop()
    return 0


def _serve(settings: Settings, app: Any) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if settings.mode == "socket":
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        handler = SocketModeHandler(app, settings.app_token)
        handler.connect()
        log.info("connected to Slack in Socket Mode")
        stop.wait()
        handler.close()
        return
    from bot.http_server import EVENTS_PATH, serve_http

    server = serve_http(app, settings.http_port, settings.http_host)
    log.info("listening on %s:%s%s", settings.http_host, server.server_port, EVENTS_PATH)
    stop.wait()
    server.shutdown()
    server.server_close()
