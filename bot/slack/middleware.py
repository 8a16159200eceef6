"""Cross-cutting request handling that runs before any listener.

Ignoring unwanted events (the bot's own are dropped earlier by Bolt's built-in
self-event filter; messages of another organisation's users in a Slack Connect channel; every
event of a workspace that uninstalled the app) and de-duplicating deliveries happen here,
before `ack()`, so a skipped event is still answered 200 and Slack stops retrying it. De-duplication goes through
`storage.claim_event`: a retry of an event that was never processed still gets processed.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from slack_bolt import App, BoltContext, BoltResponse

import storage
from bot.slack.services import Services

log = logging.getLogger(__name__)
EDIT_SUBTYPE = "message_changed"
DELETED_SUBTYPE = "message_deleted"
BROADCAST_SUBTYPE = "thread_broadcast"  # a thread reply also sent to the channel
# Message subtypes that are still a person writing something worth classifying.
HUMAN_SUBTYPES = {None, "file_share", BROADCAST_SUBTYPE, "me_message"}
# Events about the app's own installation: they must reach their listener even when stopped.
APP_LIFE_EVENTS = {"app_uninstalled", "tokens_revoked"}

Next = Callable[[], BoltResponse]


def install(app: App, services: Services) -> None:
    app.middleware(_attach(services))
    app.middleware(_skip_unwanted(services))
    app.middleware(_deduplicate(services))


def _attach(services: Services) -> Callable[..., Any]:
    def attach_services(context: BoltContext, next: Next) -> BoltResponse:
        context["services"] = services
        return next()

    return attach_services


def _skip_unwanted(services: Services) -> Callable[..., Any]:
    def skip_unwanted_events(body: dict[str, Any], context: BoltContext, next: Next) -> BoltResponse:
        event = body.get("event") if body.get("type") == "event_callback" else None
        if event is not None and (
            is_unwanted(event)
            or is_unwanted_external(services, body, event, str(context.team_id or body.get("team_id") or ""))
            or _stopped_event(services, event, str(context.team_id or body.get("team_id") or ""))
        ):
            return BoltResponse(status=200, body="")
        return next()

    return skip_unwanted_events


def is_unwanted(event: dict[str, Any]) -> bool:
    """Bots and message subtypes that are not a person writing, editing or deleting a message.

    Edits always pass (the stored text must follow them, see `process_edits` in the message
    listener), except edits of a bot's message. The bot's own events never get here: Bolt's
    built-in self-event filter drops them.
    """
    if event.get("type") != "message":
        return False
    subtype = event.get("subtype")
    if subtype == EDIT_SUBTYPE:
        return bool((event.get("message") or {}).get("bot_id"))
    if subtype == DELETED_SUBTYPE:
        return False
    return bool(event.get("bot_id")) or subtype not in HUMAN_SUBTYPES


def author_team(event: dict[str, Any]) -> str | None:
    """The workspace of the person who wrote a message (an edit carries it inside `message`)."""
    message = (event.get("message") or {}) if event.get("subtype") == EDIT_SUBTYPE else event
    team = message.get("user_team") or message.get("team")
    return str(team) if team else None


def is_external(body: dict[str, Any], event: dict[str, Any], installing_team: str) -> bool:
    """A message, in a channel shared with another organisation (Slack Connect), by one of its users."""
    team = author_team(event)
    return bool(body.get("is_ext_shared_channel")) and team is not None and team != installing_team


def is_unwanted_external(services: Services, body: dict[str, Any], event: dict[str, Any], installing_team: str) -> bool:
    """External users' messages are neither stored nor answered unless their task enables it."""
    if event.get("type") != "message" or not is_external(body, event, installing_team):
        return False
    task = storage.task_for_channel(services.db, str(event.get("channel", "")))
    configured = services.settings.task(task.name) if task is not None else None
    return not (configured is not None and configured.external_users)


def stopped(services: Services, workspace: str) -> bool:
    """The workspace uninstalled the app or revoked its tokens: nothing is done for it."""
    return bool(workspace) and storage.workspace_stop(services.db, workspace) is not None


def _stopped_event(services: Services, event: dict[str, Any], workspace: str) -> bool:
    """Events of a stopped workspace are acknowledged and dropped (its own life events pass).

    Work resumes only when the bot starts with a token Slack accepts (`bot.slack.app`): a
    reinstall hands out a new token, and resuming on the next event with the dead one would only
    stop again, event after event.
    """
    return event.get("type") not in APP_LIFE_EVENTS and stopped(services, workspace)


def _deduplicate(services: Services) -> Callable[..., Any]:
    def deduplicate_events(body: dict[str, Any], next: Next) -> BoltResponse:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not storage.claim_event(services.db, str(event_id)):
            log.info("event %s already handled; acknowledging the redelivery", event_id)
            return BoltResponse(status=200, body="")
        return next()

    return deduplicate_events
