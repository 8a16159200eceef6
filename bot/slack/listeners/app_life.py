"""The app's life in the workspace: uninstalled, tokens revoked, removed from or invited to a
channel, a channel archived or restored.

An uninstall or a revoked bot token stops all work for the workspace (`storage.lifecycle.stop_workspace`;
middleware then acknowledges and drops its events, so nothing is retried against a dead token)
until the bot starts with a token Slack accepts (`bot.slack.app.resume_if_token_works`).
A bound channel the bot was removed from, or that was archived, is paused and the admins are
told by direct message; the bot invited back (or the channel restored) resumes it. The bot
invited to a channel bound to no task offers `/camel setup`.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import storage
from bot import texts
from bot.slack.listeners._shared import ack_now, services_of, workspace_of
from bot.slack.services import Services

log = logging.getLogger(__name__)

# (event, why the binding is paused); the group_* twins are the same events in private channels.
REMOVED, ARCHIVED = "bot removed from the channel", "channel archived"
PAUSING = {"channel_left": REMOVED, "group_left": REMOVED, "channel_archive": ARCHIVED, "group_archive": ARCHIVED}
RESUMING = ("channel_unarchive", "group_unarchive")
EVENTS = ("app_uninstalled", "tokens_revoked", "member_joined_channel", *PAUSING, *RESUMING)


def register(app: App) -> None:
    app.event("app_uninstalled")(ack=ack_now, lazy=[on_app_uninstalled])
    app.event("tokens_revoked")(ack=ack_now, lazy=[on_tokens_revoked])
    for name in PAUSING:
        app.event(name)(ack=ack_now, lazy=[on_channel_lost])
    for name in RESUMING:
        app.event(name)(ack=ack_now, lazy=[on_channel_restored])
    app.event("member_joined_channel")(ack=ack_now, lazy=[on_member_joined])


def on_app_uninstalled(body: dict[str, Any], context: BoltContext) -> None:
    workspace = workspace_of(body, context)
    if storage.lifecycle.stop_workspace(services_of(context).db, workspace, reason="app_uninstalled", actor="slack"):
        log.warning("the app was uninstalled from workspace %s: all work for it stops", workspace)


def on_tokens_revoked(event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
    # Only the bot token matters: the bot holds no user (oauth) tokens.
    if not (event.get("tokens") or {}).get("bot"):
        return
    workspace = workspace_of(body, context)
    if storage.lifecycle.stop_workspace(services_of(context).db, workspace, reason="tokens_revoked", actor="slack"):
        log.warning("the bot token of workspace %s was revoked: all work for it stops", workspace)


def on_channel_lost(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    services = services_of(context)
    channel = str(event.get("channel", ""))
    why = PAUSING.get(str(event.get("type")), REMOVED)
    before = storage.lifecycle.channel_pause(services.db, channel)
    pause = storage.lifecycle.pause_channel(services.db, channel, reason=why, actor=str(event.get("user") or "slack"))
    if pause is None or before is not None:
        return  # not a bound channel, or already paused
    log.info("channel %s: %s; binding of task %s paused", channel, why, pause.task)
    tell_admins(services, client, texts.channel_paused(channel, str(pause.task), archived=why == ARCHIVED))


def on_channel_restored(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    services = services_of(context)
    channel = str(event.get("channel", ""))
    if storage.lifecycle.resume_channel(services.db, channel, actor=str(event.get("user") or "slack")):
        task = storage.tasks.task_for_channel(services.db, channel)
        tell_admins(services, client, texts.channel_resumed(channel, task.name if task else "?"))


def on_member_joined(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
    """The bot itself joined a channel: resume a paused binding, or offer `/camel setup`."""
    if event.get("user") != context.bot_user_id:
        return
    services = services_of(context)
    channel, inviter = str(event.get("channel", "")), event.get("inviter")
    task = storage.tasks.task_for_channel(services.db, channel)
    if task is not None:
        if storage.lifecycle.resume_channel(services.db, channel, actor=str(inviter or "slack")):
            tell_admins(services, client, texts.channel_resumed(channel, task.name))
        return
    offer = texts.setup_offer([t.name for t in storage.tasks.list_tasks(services.db)])
    if inviter:
        client.chat_postEphemeral(channel=channel, user=str(inviter), text=offer)
    else:
        client.chat_postMessage(channel=channel, text=offer)


def tell_admins(services: Services, client: WebClient, text: str) -> None:
    """A direct message to each admin; one admin Slack cannot reach does not stop the others."""
    for admin in services.admins.everyone(client):
        try:
            opened = client.conversations_open(users=admin)
            client.chat_postMessage(channel=str(opened["channel"]["id"]), text=text)
        except SlackApiError as exc:
            log.warning("could not tell admin %s: %s", admin, exc.response.get("error"))
