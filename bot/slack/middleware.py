"""Cross-cutting request handling that runs before any listener.

Ignoring unwanted events (the bot's own are dropped earlier by Bolt's built-in
self-event filter; messages of another organisation's users in a Slack Connect channel; every
event of a workspace that uninstalled the app) happens here, before `ack()`, so a skipped event
is still answered 200 and Slack stops retrying it.

Every Events API event the listeners declare (`listeners.ALL.events`) is written to the
durable inbox here, one insert, before the 200: after the ack the event is ours to keep, and
the inbox row (unique event id) is also the de-duplication mark, so a redelivery is
acknowledged and not handled again. Inbox workers do the work. When the write fails (a full
disk) Slack still gets its 200, so it does not disable the app: the event is counted as
dropped, /readyz turns 503 with the reason, and the admins are told once. Commands and
interactive payloads are not events: they go on to Bolt's listeners.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Collection
from typing import Any, Callable

from slack_bolt import App, BoltContext, BoltResponse
from slack_sdk import WebClient

import storage
from bot import texts
from bot.slack.services import Services

log = logging.getLogger(__name__)
EDIT_SUBTYPE = "message_changed"
DELETED_SUBTYPE = "message_deleted"
BROADCAST_SUBTYPE = "thread_broadcast"  # a thread reply also sent to the channel
# Message subtypes that are still a person writing something worth classifying.
HUMAN_SUBTYPES = {None, "file_share", BROADCAST_SUBTYPE, "me_message"}
# Events about the app's own installation: they reach the inbox even for a stopped workspace.
APP_LIFE_EVENTS = {"app_uninstalled", "tokens_revoked"}

Next = Callable[[], BoltResponse]


def install(app: App, services: Services, inbox_kinds: Collection[str]) -> None:
    """`inbox_kinds`: the event types that have an inbox handler; other events go on to Bolt,
    which answers 404 for an event nobody listens to."""
    app.middleware(_attach(services))
    app.middleware(_skip_unwanted(services))
    app.middleware(_to_inbox(services, app.client, frozenset(inbox_kinds)))


def _attach(services: Services) -> Callable[..., Any]:
    def attach_services(context: BoltContext, next: Next) -> BoltResponse:
        context["services"] = services
        return next()

    return attach_services


def _skip_unwanted(services: Services) -> Callable[..., Any]:
    def skip_unwanted_events(body: dict[str, Any], context: BoltContext, next: Next) -> BoltResponse:
        event = body.get("event") if body.get("type") == "event_callback" else None
        workspace = str(context.team_id or body.get("team_id") or "")
        if event is not None and (
            is_unwanted(event)
            or is_unwanted_external(services, body, event, workspace)
            or _stopped_event(services, event, workspace)
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
    task = storage.tasks.task_for_channel(services.db, str(event.get("channel", "")))
    configured = services.settings.task(task.name) if task is not None else None
    return not (configured is not None and configured.external_users)


def stopped(services: Services, workspace: str) -> bool:
    """The workspace uninstalled the app or revoked its tokens: nothing is done for it."""
    return bool(workspace) and storage.lifecycle.workspace_stop(services.db, workspace) is not None


def _stopped_event(services: Services, event: dict[str, Any], workspace: str) -> bool:
    """Events of a stopped workspace are acknowledged and dropped (its own life events pass).

    Work resumes only when the bot starts with a token Slack accepts (`bot.slack.app`): a
    reinstall hands out a new token, and resuming on the next event with the dead one would only
    stop again, event after event.
    """
    return event.get("type") not in APP_LIFE_EVENTS and stopped(services, workspace)


def _to_inbox(services: Services, client: WebClient, kinds: frozenset[str]) -> Callable[..., Any]:
    def store_in_inbox(body: dict[str, Any], next: Next) -> BoltResponse:
        event = body.get("event") if body.get("type") == "event_callback" else None
        if not isinstance(event, dict) or event.get("type") not in kinds or not body.get("event_id"):
            return next()
        try:
            new = storage.inbox.enqueue_event(
                services.db,
                event_id=str(body["event_id"]),
                kind=str(event["type"]),
                body=json.dumps(body, ensure_ascii=True),
                channel=_channel_of(event),
                user=_user_of(event),
                synchronous=services.settings.inbox_synchronous,
            )
        except (sqlite3.Error, storage.StorageError) as exc:
            _dropped(services, client, str(exc))
            return BoltResponse(status=200, body="")
        if services.health.recovered():
            log.warning("events are stored again; the bot is ready")
        if new:
            services.inbox_wakeup.set()
        else:
            log.info("redelivery acknowledged", extra={"event_id": str(body["event_id"])})
        return BoltResponse(status=200, body="")

    return store_in_inbox


def _channel_of(event: dict[str, Any]) -> str | None:
    item = event.get("item")
    channel = event.get("channel") or (item.get("channel") if isinstance(item, dict) else None)
    return str(channel) if channel else None


def _user_of(event: dict[str, Any]) -> str | None:
    # An edit names its author inside `message`, a deletion inside `previous_message` (which also
    # holds the old text, so erase_user must find the row by that user).
    holders = (event, event.get("message"), event.get("previous_message"))
    user = next((h.get("user") for h in holders if isinstance(h, dict) and h.get("user")), None)
    return str(user) if user else None


def _dropped(services: Services, client: WebClient, error: str) -> None:
    """Count the lost event; on the first failure of an outage, tell the admins (off this thread)."""
    reason = "disk_full" if "full" in error.lower() else "store_failed"
    services.metrics.events_dropped.labels(reason=reason).inc()
    log.error("an acknowledged event could not be stored", extra={"reason": reason, "error": error})
    if services.health.failed(f"cannot store events: {error}"):
        threading.Thread(target=_tell_admins, args=(services, client, error), name="camel-alert", daemon=True).start()


def _tell_admins(services: Services, client: WebClient, error: str) -> None:
    for admin in services.settings.admins:
        try:
            client.chat_postMessage(channel=admin, text=texts.events_not_stored(error))
        except Exception as exc:  # an alert that cannot be sent must not take anything down
            log.warning("could not tell an admin that events are dropped", extra={"error": str(exc)})
