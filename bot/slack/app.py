"""Build the Bolt app: Web API client, middleware, listeners, services."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlite_utils import Database

import storage
from bot.settings import Settings
from bot.slack import middleware
from bot.slack.listeners import ALL, register_all
from bot.slack.services import Services

log = logging.getLogger(__name__)


def build_client(settings: Settings, *, wait_on_rate_limit: bool = True) -> WebClient:
    """The Web API client. With `wait_on_rate_limit`, slack_sdk sleeps out a 429's Retry-After
    (twice at most): right for commands and reports. The inbox workers' client does not wait:
    a 429 puts the event back in the inbox, so no thread sleeps on Slack."""
    handlers: list[Any] = [ConnectionErrorRetryHandler()]
    if wait_on_rate_limit:
        handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return WebClient(token=settings.bot_token or None, base_url=settings.slack_api_url, retry_handlers=handlers)


def build_app(services: Services, client: WebClient, listener_executor: Executor) -> App:
    """The Bolt app; middleware hands the listeners one `Services` through Bolt's `context`.

    Every event the listeners declare goes to the durable inbox; the caller runs `InboxWorkers`
    on the same `services` (bot.runtime does). Commands and clicks run on
    `listener_executor`, which the caller owns so that a stop can wait for the ones under way
    before the database closes.
    """
    settings = services.settings
    services.metrics.watch_runs(services.db)
    app = App(
        client=client,
        signing_secret=settings.signing_secret,
        # Socket Mode requests come over an authenticated websocket and carry no signature.
        request_verification_enabled=settings.mode == "http",
        token_verification_enabled=settings.token_verification_enabled,
        # Bolt drops events the bot itself caused (its own messages and reactions) before any listener.
        ignoring_self_events_enabled=True,
        process_before_response=False,
        listener_executor=listener_executor,
        name="camel-bot",
    )
    middleware.install(app, services, ALL.events.keys())
    register_all(app)
    resume_if_token_works(services.db, app.client)
    return app


def resume_if_token_works(db: Database, client: WebClient) -> list[str]:
    """Resume the workspaces that stopped the app, when Slack now accepts the bot's token for them.

    A reinstall hands out a new token, so this runs at start (after the operator set it);
    returns the workspaces resumed.
    """
    stops = storage.lifecycle.list_workspace_stops(db)
    if not stops:
        return []
    try:
        team = str(client.auth_test().get("team_id") or "")
    except SlackApiError as exc:
        log.warning("the bot token is still refused (%s): stopped workspaces stay stopped", exc.response.get("error"))
        return []
    resumed = [s.workspace for s in stops if s.workspace == team]
    for workspace in resumed:
        storage.lifecycle.resume_workspace(db, workspace, actor="startup")
        log.info("the bot token works for workspace %s again: resuming its work", workspace)
    return resumed
