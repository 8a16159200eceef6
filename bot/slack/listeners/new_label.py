"""A new label from the correction itself: "New label…" in a label menu opens a modal (views.open
with the click's trigger_id, which Slack lets live 3 seconds), the submission is checked and
answered in the acknowledgement (`response_action: "errors"` names what is wrong with the name),
and the task's `new_labels` decides what happens:

- "members" (or the person is an admin): the label is created, the message corrected with it and
  the serving model follows at once (a prototype row, no round, no restart);
- "propose": the label waits for an admin; each admin gets a direct message with Approve and
  Reject, the first decision wins, the other admins' messages are updated to say who decided
  what, and the member's correction is stored when the label is approved;
- "admins": only admins are offered "New label…" (and a forged submission is refused).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import storage
from bot import texts
from bot.slack import blocks
from bot.slack.listeners._shared import record_correction, services_of
from bot.slack.listeners.declaration import Listeners
from bot.slack.listeners.label_menu import may_create_labels
from bot.slack.services import Services

log = logging.getLogger(__name__)


def open_new_label_modal(
    services: Services, client: WebClient, body: dict[str, Any], task: storage.Task, message_id: int, source: str
) -> str | None:
    """Open the modal for the person who chose "New label…"; an ephemeral text when they may not."""
    user = str(body["user"]["id"])
    if not may_create_labels(services, task, user, client):
        return texts.new_label_only_admins(task.name)
    container = body.get("container") or {}
    metadata = json.dumps(
        {
            "task": task.name,
            "message_id": message_id,
            "source": source,
            "channel": str(container.get("channel_id") or (body.get("channel") or {}).get("id") or ""),
            "reply_ts": "" if container.get("is_ephemeral") else str(container.get("message_ts") or ""),
        }
    )
    limit = min(storage.labels.MAX_LABEL_CHARS, storage.labels.MAX_OPTION_VALUE - len(task.name) - 1)
    view = blocks.new_label_modal(
        task.name, metadata, name_limit=limit, description_limit=storage.tasks.MAX_DESCRIPTION_CHARS
    )
    client.views_open(trigger_id=str(body.get("trigger_id") or ""), view=view)
    return None


def on_new_label_submitted(ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """Check the modal's name and description in the acknowledgement; then create or propose."""
    services = services_of(context)
    view = body.get("view") or {}
    user = str((body.get("user") or {}).get("id") or "")
    try:
        meta = json.loads(str(view.get("private_metadata") or "{}"))
        task = storage.tasks.require_task(services.db, str(meta["task"]))
        message_id = int(meta["message_id"])
    except (ValueError, KeyError, TypeError, storage.StorageError):
        ack(response_action="errors", errors={blocks.NAME_BLOCK: "This form is out of date: choose New label… again."})
        return
    name = blocks.submitted_value(view, blocks.NAME_BLOCK, blocks.NAME_INPUT)
    description = " ".join(blocks.submitted_value(view, blocks.DESCRIPTION_BLOCK, blocks.DESCRIPTION_INPUT).split())
    admin = services.is_admin(user, client)
    if _created_by(services.db, task.name, name, user) or _proposed_by(services.db, task.name, name, user, message_id):
        # The same modal submitted twice (or this person's own new label chosen again): done once.
        ack()
        if name in storage.tasks.require_task(services.db, task.name).labels and not _corrected(
            services.db, task.name, message_id, user, name
        ):
            _store_and_show(services, client, meta, name, user)
        return
    errors = _problems(services, task, name, description, user, admin)
    if errors:
        ack(response_action="errors", errors=errors)
        return
    if admin or task.new_labels == "members":
        storage.labels.change(services.db, task.name, "add", user, new_name=name, description=description)
        ack()
        services.predictors.follow_labels(services.db, task.name)
        _store_and_show(services, client, meta, name, user)
        return
    proposal = storage.labels.propose(services.db, task.name, name, description, user, message_id)
    ack()
    _ask_admins(services, client, proposal, str(meta.get("channel") or ""))
    _tell(client, str(meta.get("channel") or ""), user, texts.proposal_waiting(name))


def _problems(
    services: Services, task: storage.Task, name: str, description: str, user: str, admin: bool
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if task.new_labels == "admins" and not admin:
        errors[blocks.NAME_BLOCK] = f"Only admins can create labels of {task.name}."
    problem = storage.labels.name_problem(services.db, task.name, name)
    if problem:
        errors[blocks.NAME_BLOCK] = _plain(problem)
    elif _pending(services.db, task.name, name) and not admin:
        errors[blocks.NAME_BLOCK] = f"{name} is already proposed and waits for an admin."
    if not description:
        errors[blocks.DESCRIPTION_BLOCK] = texts.new_label_description_missing()
    return errors


def _plain(text: str) -> str:
    return text.replace("`", "")


def _pending(db: Any, task: str, name: str) -> bool:
    return bool(
        storage.db.rows(
            db, "SELECT 1 FROM label_proposals WHERE task = ? AND label = ? AND status = 'pending'", (task, name)
        )
    )


def _created_by(db: Any, task: str, name: str, user: str) -> bool:
    return any(e.kind == "add" and e.new_name == name and e.actor == user for e in storage.labels.history(db, task))


def _proposed_by(db: Any, task: str, name: str, user: str, message_id: int) -> bool:
    return bool(
        storage.db.rows(
            db,
            "SELECT 1 FROM label_proposals WHERE task = ? AND label = ? AND proposer = ? AND message_id = ?",
            (task, name, user, message_id),
        )
    )


def _corrected(db: Any, task: str, message_id: int, user: str, label: str) -> bool:
    return bool(
        storage.db.rows(
            db,
            "SELECT 1 FROM corrections WHERE task = ? AND message_id = ? AND user = ? AND label = ?",
            (task, message_id, user, label),
        )
    )


def _store_and_show(services: Services, client: WebClient, meta: dict[str, Any], label: str, user: str) -> None:
    """Store the correction the new label was made for, and show it on the bot's reply."""
    message_id, task, channel = int(meta["message_id"]), str(meta["task"]), str(meta.get("channel") or "")
    source = str(meta.get("source") or "menu")
    if not record_correction(services, client, message_id=message_id, task=task, label=label, source=source, user=user):
        _tell(client, channel, user, texts.cap_reached(services.settings.corrections_per_hour))
        return
    text = texts.new_label_created(label, user)
    try:
        if meta.get("reply_ts"):
            client.chat_update(
                channel=channel, ts=str(meta["reply_ts"]), text=text, blocks=blocks.menu_blocks(message_id, text)
            )
        else:
            _tell(client, channel, user, text)
    except SlackApiError as exc:
        log.warning("could not show the new label on the reply: %s", exc.response.get("error"))


def _tell(client: WebClient, channel: str, user: str, text: str) -> None:
    if not channel:
        return
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", user, exc.response.get("error"))


def _ask_admins(services: Services, client: WebClient, proposal: storage.labels.LabelProposal, channel: str) -> None:
    """A direct message with Approve / Reject to every admin; where they went is kept, to update them."""
    text = texts.proposal_for_admins(proposal.task, proposal.label, proposal.description, proposal.proposer, channel)
    sent: list[tuple[str, str]] = []
    for admin in services.admins.everyone(client):
        try:
            opened = client.conversations_open(users=admin)
            posted = client.chat_postMessage(
                channel=str(opened["channel"]["id"]), text=text, blocks=blocks.proposal_blocks(proposal.id, text)
            )
            sent.append((str(posted["channel"]), str(posted["ts"])))
        except SlackApiError as exc:
            log.warning("could not ask admin %s about a label: %s", admin, exc.response.get("error"))
    storage.labels.set_proposal_messages(services.db, proposal.id, sent)


def on_proposal_decided(
    body: dict[str, Any], action: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond
) -> None:
    """An admin's Approve or Reject: the first decision wins; every admin's message says who decided."""
    services = services_of(context)
    admin = str(body["user"]["id"])
    if not services.is_admin(admin, client):
        return  # only admins got the message; a forged click changes nothing
    approve = action.get("action_id") == blocks.PROPOSAL_APPROVE
    try:
        proposal, first = storage.labels.decide(services.db, int(str(action.get("value") or "0")), admin, approve)
    except (ValueError, storage.StorageError) as exc:
        # e.g. the name was taken meanwhile (another admin added it): say why, nothing changed
        log.info("label proposal click by %s refused: %s", admin, exc)
        respond(text=texts.action_failed(_plain(str(exc))), response_type="ephemeral", replace_original=False)
        return
    approved, decider = proposal.status == "approved", str(proposal.decided_by or admin)
    if first:
        text = texts.proposal_decided(proposal.task, proposal.label, decider, approved)
        for channel, ts in proposal.admin_messages:
            _update(client, channel, ts, text)
        meta = _proposal_meta(services, proposal)
        if approved:
            services.predictors.follow_labels(services.db, proposal.task)
            if meta is not None:
                _store_and_show(services, client, meta, proposal.label, proposal.proposer)
        if meta is not None:
            _tell(
                client,
                str(meta["channel"]),
                proposal.proposer,
                texts.proposal_result_for_member(proposal.label, decider, approved),
            )
        return
    container = body.get("container") or {}
    _update(
        client,
        str(container.get("channel_id") or ""),
        str(container.get("message_ts") or ""),
        texts.proposal_already_decided(proposal.task, proposal.label, decider, approved),
    )


def _proposal_meta(services: Services, proposal: storage.labels.LabelProposal) -> dict[str, Any] | None:
    if proposal.message_id is None:
        return None
    message = storage.messages.get_message(services.db, proposal.message_id)
    if message is None:
        return None
    return {"task": proposal.task, "message_id": proposal.message_id, "source": "menu", "channel": message.channel}


def _update(client: WebClient, channel: str, ts: str, text: str) -> None:
    if not channel or not ts:
        return
    try:
        client.chat_update(channel=channel, ts=ts, text=text, blocks=[blocks.section(text)])
    except SlackApiError as exc:
        log.warning("could not update a label proposal message: %s", exc.response.get("error"))


LISTENERS = Listeners(
    actions={blocks.PROPOSAL_APPROVE: on_proposal_decided, blocks.PROPOSAL_REJECT: on_proposal_decided},
    views={blocks.NEW_LABEL_VIEW: on_new_label_submitted},
)
