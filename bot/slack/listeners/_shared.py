"""Helpers every listener module uses: finding services, the per-user cap, storing a correction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import storage
from bot.slack.services import Services
from bot.settings import emoji_map

log = logging.getLogger(__name__)
# Web API errors that mean the app is gone from the workspace, whatever event told us or not.
DEAD_TOKEN_ERRORS = frozenset({"account_inactive", "token_revoked"})


class NotYet(Exception):
    """Raised by an inbox handler that cannot finish now; the worker puts the event back.

    The worker never sleeps: the event is due again after `delay_s`. After `max_attempts`
    deliveries (None: no limit) the worker gives up and records that.
    """

    def __init__(self, reason: str, delay_s: float, max_attempts: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s
        self.max_attempts = max_attempts


@dataclass(frozen=True)
class Delivery:
    """How an inbox event reaches its handler: when Slack got its 200, and whether it is too old to answer."""

    received_at: str
    attempts: int
    late: bool = False


def ack_now(ack: Ack) -> None:
    """Acknowledge at once; the real work runs in a lazy listener after Slack has its answer."""
    ack()


def services_of(context: BoltContext) -> Services:
    return context["services"]


def workspace_of(body: dict[str, Any], context: BoltContext) -> str:
    return str(context.team_id or workspace_in(body))


def workspace_in(body: dict[str, Any]) -> str:
    """The workspace a request body names: events carry `team_id`, actions and commands `team.id`."""
    team = body.get("team")
    return str(body.get("team_id") or (team.get("id") if isinstance(team, dict) else "") or "")


def emoji_map_of(task: storage.Task) -> dict[str, str]:
    """The task's stored map over the defaults, so tasks created outside settings still work."""
    return emoji_map(task.kind, task.labels, task.emoji_map)


def emoji_for_label(task: storage.Task, label: str) -> str | None:
    return next((emoji for emoji, target in emoji_map_of(task).items() if target == label), None)


def over_cap(services: Services, user: str) -> bool:
    since = datetime.now(timezone.utc) - timedelta(hours=1)
    return (
        storage.corrections.count_user_corrections_since(services.db, user, since)
        >= services.settings.corrections_per_hour
    )


def record_correction(
    services: Services, client: WebClient, *, message_id: int, task: str, label: str | None, source: str, user: str
) -> bool:
    """Store one correction unless the user is over the hourly cap; False means nothing stored."""
    if over_cap(services, user):
        return False
    storage.corrections.add_correction(
        services.db,
        message_id=message_id,
        task=task,
        label=label,
        source=source,
        user=user,
        is_admin=services.is_admin(user, client),
    )
    services.metrics.corrections.labels(task=task, source=source).inc()
    if services.learning is not None:
        services.learning.note_new_labels(task)
    return True


def stop_on_dead_token(services: Services, workspace: str, exc: SlackApiError) -> bool:
    """Stop the workspace when Slack says the bot's token is dead (True); other errors are not ours."""
    error = str(exc.response.get("error") or "")
    if error not in DEAD_TOKEN_ERRORS or not workspace:
        return False
    if storage.lifecycle.stop_workspace(services.db, workspace, reason=error, actor="slack"):
        log.warning("Slack answered %s for workspace %s: all work for it stops", error, workspace)
    return True
