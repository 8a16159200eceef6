"""Block Kit clicks: the "correct it" menu, the "right" button and the top-3 guess buttons."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient
from sqlite_utils import Database

import storage
from bot import texts
from bot.slack import blocks
from bot.slack.listeners._shared import record_correction, services_of, workspace_of
from bot.slack.listeners.declaration import Listeners
from bot.slack.listeners.new_label import open_new_label_modal

log = logging.getLogger(__name__)

GUESS_PATTERN = re.compile(rf"^{blocks.GUESS_BUTTON}_\d+$")
REVIEW_GUESS_PATTERN = re.compile(rf"^{blocks.REVIEW_GUESS}_\d+$")
ASK_GUESS_PATTERN = re.compile(rf"^{blocks.ASK_GUESS}_\d+$")


def _choice(action: dict[str, Any]) -> tuple[str, str, int | None]:
    value = (action.get("selected_option") or {}).get("value") or action.get("value") or ""
    task, label = blocks.decode_value(str(value))
    return task, label, blocks.message_id_from(str(action.get("block_id", "")))


def todays_label(db: Database, task: storage.Task | None, label: str) -> str | None:
    """The label a click means today: buttons and menus posted before a rename or merge carry the
    old name, which the label history maps; a retired or unknown label is None."""
    if task is None:
        return None
    if label in task.labels:
        return label
    return storage.labels.current_name(db, task.name, label)


def _click_channel(body: dict[str, Any]) -> str:
    container = body.get("container") or {}
    channel = body.get("channel") or {}
    return str(container.get("channel_id") or channel.get("id") or "")


def click_problem(db: Database, task: storage.Task, message_id: int, channel: str, workspace: str) -> str | None:
    """Why a click may not label this message, or None when it may.

    Slack echoes only what the bot wrote, so a mismatch means a forged or stale request: the
    message must still be stored, and the click's channel, the message's channel and the task
    bound to that channel must all agree.
    """
    message = storage.messages.get_message(db, message_id)
    if message is None:
        return texts.message_gone()
    bound = storage.tasks.task_for_channel(db, message.channel)
    if message.channel != channel or message.workspace != workspace or bound is None or bound.name != task.name:
        return texts.click_mismatch()
    return None


def _source(action_id: str) -> str:
    if action_id == blocks.CONFIRM_BUTTON:
        return "confirm"
    if action_id == blocks.ASK_MENU or ASK_GUESS_PATTERN.match(action_id):
        return "ask"  # an answer to a question the bot asked (ask_per_day)
    return "menu"


def on_label_chosen(
    body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond
) -> None:
    services = services_of(context)
    user = str(body["user"]["id"])
    task_name, chosen, message_id = _choice(action)
    task = storage.tasks.get_task(services.db, task_name)
    label = todays_label(services.db, task, chosen)
    if task is None or message_id is None or (label is None and chosen != blocks.NEW_LABEL):
        respond(text=texts.choice_out_of_date(), response_type="ephemeral", replace_original=False)
        return
    problem = click_problem(services.db, task, message_id, _click_channel(body), workspace_of(body, context))
    if problem is not None:
        log.info("click by %s refused: %s", user, problem)
        respond(text=problem, response_type="ephemeral", replace_original=False)
        return
    source = _source(str(action.get("action_id", "")))
    if label is None:  # "New label…": the modal stores the correction once the label exists
        refused = open_new_label_modal(services, client, body, task, message_id, source)
        if refused:
            respond(text=refused, response_type="ephemeral", replace_original=False)
        return
    if not record_correction(
        services, client, message_id=message_id, task=task.name, label=label, source=source, user=user
    ):
        respond(
            text=texts.cap_reached(services.settings.corrections_per_hour),
            response_type="ephemeral",
            replace_original=False,
        )
        return
    text = texts.confirmed_text(label, user) if source == "confirm" else texts.corrected_text(label, user)
    container = body.get("container") or {}
    if container.get("is_ephemeral"):
        # An ephemeral prompt (after a rejection) cannot be chat.update'd; its response_url can.
        respond(text=text, replace_original=True)
        return
    client.chat_update(
        channel=str(container.get("channel_id") or body["channel"]["id"]),
        ts=str(container.get("message_ts") or body["message"]["ts"]),
        text=text,
        blocks=blocks.menu_blocks(message_id, text),
    )


def on_review_answer(
    body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond
) -> None:
    """An answer from /camel review: the same correction path, with source "review".

    The review list is ephemeral and stays as it is (other items can still be answered); the
    person gets a short ephemeral confirmation."""
    services = services_of(context)
    user = str(body["user"]["id"])
    task_name, chosen, message_id = _choice(action)
    task = storage.tasks.get_task(services.db, task_name)
    label = todays_label(services.db, task, chosen)
    if task is None or message_id is None or (label is None and chosen != blocks.NEW_LABEL):
        respond(
            text=texts.action_failed("That choice is out of date."), response_type="ephemeral", replace_original=False
        )
        return
    if label is None:  # "New label…" from /camel review
        refused = open_new_label_modal(services, client, body, task, message_id, "review")
        if refused:
            respond(text=refused, response_type="ephemeral", replace_original=False)
        return
    if not record_correction(
        services, client, message_id=message_id, task=task.name, label=label, source="review", user=user
    ):
        respond(
            text=texts.cap_reached(services.settings.corrections_per_hour),
            response_type="ephemeral",
            replace_original=False,
        )
        return
    respond(text=texts.review_label_stored(label), response_type="ephemeral", replace_original=False)


LISTENERS = Listeners(
    actions={
        blocks.CORRECT_MENU: on_label_chosen,
        blocks.CONFIRM_BUTTON: on_label_chosen,
        GUESS_PATTERN: on_label_chosen,
        blocks.ASK_MENU: on_label_chosen,
        ASK_GUESS_PATTERN: on_label_chosen,
        blocks.REVIEW_MENU: on_review_answer,
        REVIEW_GUESS_PATTERN: on_review_answer,
    }
)
