"""Cross-cutting request handling that runs before any listener.

Ignoring unwanted events (the bot's own are dropped earlier by Bolt's built-in
self-event filter) and de-duplicating deliveries happen here, before `ack()`, so a
skipped event is still answered 200 and Slack stops retrying it. De-duplication goes through
`storage.claim_event`: a retry of an event that was never processed still gets processed.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from slack_bolt import App, BoltContext, BoltResponse

import storage
from bot.slack.services import Services

log = logging.getLogger(__name__)
# Message subtypes that are still a person writing something worth classifying.
HUMAN_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}
EDIT_SUBTYPE = "message_changed"

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
    def skip_unwanted_events(body: dict[str, Any], next: Next) -> BoltResponse:
        event = body.get("event") if body.get("type") == "event_callback" else None
        if event is not None and is_unwanted(event, services.settings.process_edits):
            return BoltResponse(status=200, body="")
        return next()

    return skip_unwanted_events


def is_unwanted(event: dict[str, Any], process_edits: bool) -> bool:
    """Bots and message subtypes that are not a person writing (edits unless configured).

    The bot's own events never get here: Bolt's built-in self-event filter drops them.
    """
    if event.get("type") != "message":
        return False
    subtype = event.get("subtype")
    if subtype == EDIT_SUBTYPE:
        edited = event.get("message") or {}
        return not process_edits or bool(edited.get("bot_id"))
    return bool(event.get("bot_id")) or subtype not in HUMAN_SUBTYPES


def _deduplicate(services: Services) -> Callable[..., Any]:
    def deduplicate_events(body: dict[str, Any], next: Next) -> BoltResponse:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not storage.claim_event(services.db, str(event_id)):
            log.info("event %s already handled; acknowledging the redelivery", event_id)
            return BoltResponse(status=200, body="")
        return next()

    return deduplicate_events
