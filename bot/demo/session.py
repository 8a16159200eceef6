"""The bot as `camel-bot serve` runs it, on localhost: registry, learning loop, Bolt app, HTTP server."""

from __future__ import annotations

from typing import Any

from bot.http_server import EVENTS_PATH, serve_http
from bot.learning import LearningLoop
from bot.predictors import PredictorRegistry
from bot.settings import Settings


class BotSession:
    """Start with `with BotSession(settings, db) as bot:`; stops the server and the scheduler on exit."""

    def __init__(self, settings: Settings, db: Any) -> None:
        self.settings, self.db = settings, db
        self.predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
        self.loop = LearningLoop(settings, settings.db_path, self.predictors)
        self.server: Any = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{EVENTS_PATH}"

    def __enter__(self) -> "BotSession":
        from bot.app import build_app

        self.loop.start()
        try:
            app = build_app(self.settings, self.db, self.predictors, self.loop)
            self.server = serve_http(app, port=0, host="127.0.0.1")
        except BaseException:
            self.loop.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.loop.stop()
