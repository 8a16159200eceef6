"""Build the Bolt app: Web API client, middleware, listeners, services."""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlite_utils import Database

import storage
from bot.metrics import BotMetrics
from bot.settings import Settings
from bot.slack import middleware
from bot.slack.listeners import register_all
from bot.slack.services import Learning, Predictors, Services

log = logging.getLogger(__name__)


def build_client(settings: Settings) -> WebClient:
    # slack_sdk honours Retry-After on 429; two retries ride out a burst without piling up.
    handlers = [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)]
    return WebClient(token=settings.bot_token or None, base_url=settings.slack_api_url, retry_handlers=handlers)


def build_app(
    settings: Settings,
    db: Database,
    predictors: Predictors,
    learning: Learning | None = None,
    *,
    metrics: BotMetrics | None = None,
    client: WebClient | None = None,
) -> App:
    """The Bolt app; middleware hands the listeners one `Services` through Bolt's `context`."""
    metrics = BotMetrics() if metrics is None else metrics
    metrics.watch_runs(db)
    services = Services(settings=settings, db=db, predictors=predictors, learning=learning, metrics=metrics)
    app = App(
        client=client or build_client(settings),
        signing_secret=settings.signing_secret,
        # Socket Mode requests come over an authenticated websocket and carry no signature.
        request_verification_enabled=settings.mode == "http",
        token_verification_enabled=settings.token_verification_enabled,
        # Bolt drops events the bot itself caused (its own messages and reactions) before any listener.
        ignoring_self_events_enabled=True,
        process_before_response=False,
        name="camel-bot",
    )
    middleware.install(app, services)
    register_all(app)
    resume_if_token_works(db, app.client)
    return app


def resume_if_token_works(db: Database, client: WebClient) -> list[str]:
    """Resume the workspaces that stopped the app, when Slack now accepts the bot's token for them.

    A reinstall hands out a new token, so this runs at start (after the operator set it);
    returns the workspaces resumed.
    """
    stops = storage.list_workspace_stops(db)
    if not stops:
        return []
    try:
        team = str(client.auth_test().get("team_id") or "")
    except SlackApiError as exc:
        log.warning("the bot token is still refused (%s): stopped workspaces stay stopped", exc.response.get("error"))
        return []
    resumed = [s.workspace for s in stops if s.workspace == team]
    for workspace in resumed:
        storage.resume_workspace(db, workspace, actor="startup")
        log.info("the bot token works for workspace %s again: resuming its work", workspace)
    return resumed
