"""`/camel my-data` and `/camel forget-me`: a person's own data, from Slack, without asking an admin.

forget-me answers with a confirmation button (and Slack's own confirm dialog); only a click by
the same person deletes, through `bot.erasure` (database rows, WAL, feature cache), with an
audit row. Every answer is ephemeral: nobody else sees what is stored about whom.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import BoltContext, Respond

import camel
import storage
from bot import erasure, texts
from bot.slack import blocks
from bot.slack.listeners._shared import services_of
from bot.slack.listeners.declaration import Listeners
from bot.slack.listeners.invocation import Invocation
from bot.slack.services import Services

log = logging.getLogger(__name__)
FORGET_ME_BUTTON = "camel_forget_me"


def _serving_cache(services: Services) -> camel.FeatureCache | None:
    """The feature cache the predictors share (None before any adapter serves)."""
    for task in storage.tasks.list_tasks(services.db):
        serving = services.predictors.serving(task.name)
        if serving is not None:
            return serving.predictor.cache
    return None


def do_my_data(call: Invocation) -> None:
    counts = erasure.user_data_counts(call.services.db, call.user)
    call.reply(texts.my_data_text(counts["messages"], counts["corrections"]))


def forget_me_blocks(user: str, messages: int, corrections: int) -> list[blocks.Block]:
    button = blocks.button("Delete my data", FORGET_ME_BUTTON, user, "danger")
    button["confirm"] = {
        "title": {"type": "plain_text", "text": "Delete your data?"},
        "text": {"type": "plain_text", "text": "This cannot be undone."},
        "confirm": {"type": "plain_text", "text": "Delete"},
        "deny": {"type": "plain_text", "text": "Keep it"},
        "style": "danger",
    }
    return [blocks.section(texts.forget_me_prompt(messages, corrections)), {"type": "actions", "elements": [button]}]


def do_forget_me(call: Invocation) -> None:
    counts = erasure.user_data_counts(call.services.db, call.user)
    if not counts["messages"] and not counts["corrections"]:
        call.reply(texts.forget_me_nothing())
        return
    prompt = texts.forget_me_prompt(counts["messages"], counts["corrections"])
    call.respond(
        text=prompt,
        blocks=forget_me_blocks(call.user, counts["messages"], counts["corrections"]),
        response_type="ephemeral",
    )


def on_forget_me_confirmed(
    body: dict[str, Any], action: dict[str, Any], context: BoltContext, respond: Respond
) -> None:
    services = services_of(context)
    user = str(body["user"]["id"])
    if str(action.get("value") or "") != user:
        respond(text=texts.forget_me_not_yours(), response_type="ephemeral", replace_original=False)
        return
    try:
        # The serving cache itself: compacting it also evicts the texts from this process's memory.
        report = erasure.erase_user(services.settings, services.db, user, actor=user, cache=_serving_cache(services))
    except storage.StorageError as exc:
        respond(text=texts.action_failed(str(exc)), response_type="ephemeral", replace_original=False)
        return
    storage.events.audit(
        services.db, actor=user, action="slack.forget_me", detail={"via": "slack", **report.deletion.as_dict()}
    )
    respond(text=texts.forget_me_done(report.summary()), response_type="ephemeral", replace_original=True)


LISTENERS = Listeners(actions={FORGET_ME_BUTTON: on_forget_me_confirmed})
