"""Corrections by emoji: on the original message or on the bot's reply; removing one withdraws it.

Reactions reach these handlers from the durable inbox (bot/slack/inbox_worker.py).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import storage
from bot import texts
from bot.slack import blocks
from bot.slack.listeners.declaration import Listeners
from bot.slack.listeners._shared import Delivery, NotYet, emoji_map_of, record_correction, stop_on_dead_token
from bot.slack.services import Services
from bot.settings import CONFIRM, REJECT

log = logging.getLogger(__name__)


# A reaction on the bot's reply can arrive before the reply's ts is stored (the reply is posted
# first, then linked). No thread waits for the link: the event goes back to the inbox and is
# looked at again LINK_RETRY_S later, LINK_ATTEMPTS times in all (about 2 s), then dropped.
LINK_RETRY_S = 0.2
LINK_ATTEMPTS = 10


def _understood(services: Services, event: dict[str, Any], workspace: str) -> tuple[Any, int, str, str | None] | None:
    """(task, message id, source, label) of a reaction we handle, or None when it is not ours."""
    item = event.get("item") or {}
    if item.get("type") != "message":
        return None
    channel, ts = str(item.get("channel")), str(item.get("ts"))
    task = storage.tasks.task_for_channel(services.db, channel)
    meaning = _meaning(task, str(event.get("reaction", ""))) if task is not None else None
    if task is None or meaning is None:
        return None
    message_id = _reacted_message(services, task.name, workspace, channel, ts)
    if message_id is None:
        raise NotYet("reply_link", LINK_RETRY_S, max_attempts=LINK_ATTEMPTS)
    return (task, message_id, *meaning)


def _reacted_message(services: Services, task: str, workspace: str, channel: str, ts: str) -> int | None:
    """The person's message, whether the reaction is on it or on the bot's reply to it."""
    prediction = storage.messages.find_prediction_by_reply(services.db, channel=channel, reply_ts=ts)
    if prediction is not None and prediction.task == task:
        return prediction.message_id
    message = storage.messages.find_message(services.db, workspace=workspace, channel=channel, ts=ts)
    return message.id if message is not None else None


def _meaning(task: storage.Task, reaction: str) -> tuple[str, str | None] | None:
    """(source, label) of an emoji for this task; skin tones don't change what it means."""
    target = emoji_map_of(task).get(reaction.split("::", 1)[0])
    if target is None:
        return None
    if target == CONFIRM:
        return "confirm", None
    if target == REJECT:
        return "reject", None
    return "reaction", target


def on_reaction_added(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    try:
        _reaction_added(services, client, event, workspace)
    except SlackApiError as exc:
        if not stop_on_dead_token(services, workspace, exc):
            raise


def _reaction_added(services: Services, client: WebClient, event: dict[str, Any], workspace: str) -> None:
    understood = _understood(services, event, workspace)
    if understood is None:
        return
    task, message_id, source, label = understood
    user, channel = str(event.get("user")), str(event["item"]["channel"])
    if source in ("confirm", "reject"):
        prediction = storage.messages.latest_prediction(services.db, message_id, task.name)
        if prediction is None:
            return  # nothing of ours to confirm or reject
        label = prediction.label
    if not record_correction(
        services, client, message_id=message_id, task=task.name, label=label, source=source, user=user
    ):
        client.chat_postEphemeral(
            channel=channel, user=user, text=texts.cap_reached(services.settings.corrections_per_hour)
        )
        return
    if source == "reject":
        prompt = texts.reject_prompt()
        client.chat_postEphemeral(
            channel=channel,
            user=user,
            text=prompt,
            blocks=blocks.menu_blocks(message_id, prompt),
        )


def on_reaction_removed(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    understood = _understood(services, event, workspace)
    if understood is None:
        return
    task, message_id, source, label = understood
    withdrawn = storage.corrections.withdraw_correction(
        services.db, message_id=message_id, task=task.name, user=str(event.get("user")), source=source, label=label
    )
    if withdrawn and services.learning is not None:
        services.learning.note_new_labels(task.name)
    log.info("withdrew %d %s correction(s) on message %d", withdrawn, source, message_id)


LISTENERS = Listeners(events={"reaction_added": on_reaction_added, "reaction_removed": on_reaction_removed})
