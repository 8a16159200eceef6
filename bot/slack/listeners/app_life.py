"""The app's life in the workspace: uninstalled, tokens revoked, removed from or invited to a
channel, a channel archived or restored.

An uninstall or a revoked bot token stops all work for the workspace (`storage.lifecycle.stop_workspace`;
middleware then acknowledges and drops its events, so nothing is retried against a dead token)
until the bot starts with a token Slack accepts (`bot.slack.app.resume_if_token_works`).
A bound channel the bot was removed from, or that was archived, is paused and the admins are
told by direct message; the bot invited back (or the channel restored) resumes it. The bot
invited to a channel bound to no task offers `/camel setup`.

Like every Events API event, these reach their handlers from the durable inbox. Middleware lets
app_uninstalled and tokens_revoked through for a workspace already stopped (a tokens_revoked
follows an app_uninstalled); the channel events of a workspace stopped meanwhile are dropped
here, as message events are: the token they would need is dead.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import storage
from bot import texts
from bot.slack.listeners._shared import Delivery
from bot.slack.listeners.declaration import Listeners
from bot.slack.middleware import stopped
from bot.slack.services import Services

log = logging.getLogger(__name__)

# (event, why the binding is paused); the group_* twins are the same events in private channels.
REMOVED, ARCHIVED = "bot removed from the channel", "channel archived"
PAUSING = {"channel_left": REMOVED, "group_left": REMOVED, "channel_archive": ARCHIVED, "group_archive": ARCHIVED}
RESUMING = ("channel_unarchive", "group_unarchive")


def on_app_uninstalled(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    if storage.lifecycle.stop_workspace(services.db, workspace, reason="app_uninstalled", actor="slack"):
        log.warning("the app was uninstalled from workspace %s: all work for it stops", workspace)


def on_tokens_revoked(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    # Only the bot token matters: the bot holds no user (oauth) tokens.
    if not (event.get("tokens") or {}).get("bot"):
        return
    if storage.lifecycle.stop_workspace(services.db, workspace, reason="tokens_revoked", actor="slack"):
        log.warning("the bot token of workspace %s was revoked: all work for it stops", workspace)


def on_channel_lost(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    if stopped(services, workspace):
        return  # stopped since Slack sent it: nobody to tell, the token is dead
    channel = str(event.get("channel", ""))
    why = PAUSING.get(str(event.get("type")), REMOVED)
    before = storage.lifecycle.channel_pause(services.db, channel)
    pause = storage.lifecycle.pause_channel(services.db, channel, reason=why, actor=str(event.get("user") or "slack"))
    if pause is None or before is not None:
        return  # not a bound channel, or already paused (also: this event again, after a restart)
    log.info("channel %s: %s; binding of task %s paused", channel, why, pause.task)
    tell_admins(services, client, texts.channel_paused(channel, str(pause.task), archived=why == ARCHIVED))


def on_channel_restored(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    if stopped(services, workspace):
        return
    channel = str(event.get("channel", ""))
    if storage.lifecycle.resume_channel(services.db, channel, actor=str(event.get("user") or "slack")):
        task = storage.tasks.task_for_channel(services.db, channel)
        tell_admins(services, client, texts.channel_resumed(channel, task.name if task else "?"))


def on_member_joined(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    """The bot itself joined a channel: resume a paused binding, or offer `/camel setup`."""
    if stopped(services, workspace) or event.get("user") != services.bot_user_id(client):
        return
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


LISTENERS = Listeners(
    events={
        "app_uninstalled": on_app_uninstalled,
        "tokens_revoked": on_tokens_revoked,
        "member_joined_channel": on_member_joined,
        **{name: on_channel_lost for name in PAUSING},
        **{name: on_channel_restored for name in RESUMING},
    }
)
