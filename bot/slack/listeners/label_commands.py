"""`/camel labels`: the task's labels, and for admins `add`, `rename`, `merge`, `retire` and
`unretire`. Each change is previewed first (what moves: messages and corrections), with Confirm
and Cancel; Confirm applies exactly the previewed change (refused if the labels changed since),
audited, and the serving model follows at once."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Any

from slack_bolt import BoltContext, Respond
from slack_sdk import WebClient

import storage
from bot import texts
from bot.slack import blocks
from bot.slack.listeners._shared import emoji_map_of, services_of
from bot.slack.listeners.declaration import Listeners
from bot.slack.listeners.invocation import CommandProblem, Invocation

log = logging.getLogger(__name__)
# subcommand -> how many words it takes after its name (add: a name, then a description of any length)
CHANGES = {"add": 1, "rename": 2, "merge": 2, "retire": 1, "unretire": 1}


def do_labels(call: Invocation) -> None:
    task = call.channel_task()
    if not call.args:
        listed = texts.labels_text(task.name, task.labels, emoji_map_of(task), task.descriptions)
        retired = storage.labels.retired(call.services.db, task.name)
        call.reply(listed + (f"\n{texts.retired_labels_line(retired)}" if retired else ""))
        return
    kind = call.args[0].lower()
    if kind not in CHANGES:
        raise CommandProblem(texts.usage(texts.LABEL_CHANGE_USAGE))
    call.require_admin(f"{kind} labels")
    words = call.args[1:]
    needed = CHANGES[kind]
    if len(words) < needed or (kind != "add" and len(words) != needed):
        raise CommandProblem(texts.usage(texts.LABEL_CHANGE_USAGE))
    if kind == "add":
        description = " ".join(words[1:]) or None
        change = storage.labels.preview(call.services.db, task.name, "add", None, words[0], description)
    elif kind in ("rename", "merge"):
        change = storage.labels.preview(call.services.db, task.name, kind, words[0], words[1])
    else:
        change = storage.labels.preview(call.services.db, task.name, kind, words[0])
    preview = texts.label_change_preview(
        kind, task.name, change.old_name, change.new_name, change.messages, change.corrections, change.description
    )
    call.respond(
        text=preview,
        blocks=blocks.label_change_blocks(preview, json.dumps(asdict(change))),
        response_type="ephemeral",
    )


def on_change_confirmed(
    body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond
) -> None:
    services = services_of(context)
    user = str(body["user"]["id"])
    if not services.is_admin(user, client):
        respond(text=texts.admins_only("change labels"), response_type="ephemeral", replace_original=False)
        return
    try:
        change = storage.labels.LabelChange(**json.loads(str(action.get("value") or "{}")))
        storage.labels.apply(services.db, change, user)
    except (ValueError, TypeError) as exc:
        log.info("label change confirmation by %s refused: %s", user, exc)
        respond(text=texts.choice_out_of_date(), replace_original=True)
        return
    except storage.StorageError as exc:
        respond(text=texts.action_failed(str(exc)), replace_original=True)
        return
    services.predictors.follow_labels(services.db, change.task)
    respond(text=texts.label_change_done(change.kind, change.old_name, change.new_name, user), replace_original=True)


def on_change_cancelled(body: dict[str, Any], respond: Respond) -> None:
    respond(text=texts.label_change_cancelled(), replace_original=True)


LISTENERS = Listeners(
    actions={blocks.LABEL_CHANGE_CONFIRM: on_change_confirmed, blocks.LABEL_CHANGE_CANCEL: on_change_cancelled}
)
