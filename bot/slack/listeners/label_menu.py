"""The label menus' options: Slack asks as the person opens a menu and types (block_suggestion),
and the answer must be in the acknowledgement itself, within 3 seconds.

The menu is on a reply about one stored message (its block id names it), so the options are
that message's task's labels, the bot's top guesses for it first, and "New label…" last for
people the task lets create labels. A request whose channel does not match the message's gets
no options (Slack echoes only what the bot wrote: a mismatch is forged or stale).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, BoltContext
from slack_sdk import WebClient

import storage
from bot.slack import blocks, label_search
from bot.slack.listeners._shared import services_of, workspace_of
from bot.slack.listeners.declaration import Listeners
from bot.slack.services import Services

log = logging.getLogger(__name__)


def may_create_labels(services: Services, task: storage.Task, user: str, client: WebClient | None) -> bool:
    """Whether `user` is offered "New label…": everyone unless the task says admins only (with
    "propose", a member's label waits for an admin)."""
    return task.new_labels != "admins" or services.is_admin(user, client)


def task_of_menu(services: Services, body: dict[str, Any], context: BoltContext) -> tuple[storage.Task, int] | None:
    """The task and stored message a menu request is about, when the request is consistent."""
    message_id = blocks.message_id_from(str(body.get("block_id") or ""))
    if message_id is None:
        return None
    message = storage.messages.get_message(services.db, message_id)
    container = body.get("container") or {}
    channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
    if message is None or message.channel != channel or message.workspace != workspace_of(body, context):
        return None
    task = storage.tasks.task_for_channel(services.db, message.channel)
    return (task, message_id) if task is not None else None


def suggest_labels(ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    services = services_of(context)
    found = task_of_menu(services, body, context)
    if found is None:
        log.info("label menu request for block %r refused: no such message in that channel", body.get("block_id"))
        ack(options=[])
        return
    task, message_id = found
    query = str(body.get("value") or "")
    prediction = storage.messages.latest_prediction(services.db, message_id, task.name)
    guesses = [label for label, _ in prediction.top3] if prediction is not None else []
    user = str((body.get("user") or {}).get("id") or "")
    new_label = may_create_labels(services, task, user, client)
    room = blocks.MAX_OPTIONS - (1 if new_label else 0)
    found_labels = label_search.search(task.labels, task.descriptions, query, guesses, room)
    ack(blocks.label_options(task.name, found_labels, new_label=new_label, searched=query.strip()))


LISTENERS = Listeners(options={action_id: suggest_labels for action_id in blocks.MENU_ACTIONS})
