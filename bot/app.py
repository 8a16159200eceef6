"""Build the Bolt app: Web API client, middleware, listeners, services."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot import middleware
from bot.listeners import register_all
from bot.metrics import Metrics
from bot.predictors import PredictorRegistry
from bot.services import Learning, Services
from bot.settings import Settings

log = logging.getLogger(__name__)


def build_client(settings: Settings) -> WebClient:
    # slack_sdk honours Retry-After on 429; two retries ride out a burst without piling up.
    handlers = [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)]
    return WebClient(token=settings.bot_token or None, base_url=settings.slack_api_url, retry_handlers=handlers)


def build_app(settings: Settings, db: Any, predictors: PredictorRegistry, learning: Learning | None = None,
              *, metrics: Metrics | None = None) -> App:
    """The Bolt app; `app.camel_services` holds what the listeners share (also used by serve)."""
    if metrics is None:
        metrics = predictors.metrics if isinstance(getattr(predictors, "metrics", None), Metrics) else Metrics()
    metrics.watch_runs(db)
    services = Services(settings=settings, db=db, predictors=predictors, learning=learning, metrics=metrics)
    app = App(
        client=build_client(settings),
        signing_secret=settings.signing_secret,
        # Socket Mode requests come over an authenticated websocket and carry no signature.
        request_verification_enabled=settings.mode == "http",
        token_verification_enabled=settings.token_verification_enabled,
        process_before_response=False,
        name="camel-bot",
    )
    middleware.install(app, services)
    register_all(app)
    app.camel_services = services  # type: ignore[attr-defined]
    app.camel_metrics = metrics  # type: ignore[attr-defined]
    return app
