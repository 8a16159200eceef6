"""Bolt listeners, one module per kind of Slack request; each module exports one `LISTENERS`.

`ALL` is their union (a name declared by two modules fails at import). `register_all` hands
Bolt the commands, actions, options and views; the events are not Bolt's: middleware writes
them to the durable inbox and the inbox workers run `ALL.events`. `declared()` lists the
names, so a test can hold them against deploy/slack-manifest.yaml.
"""

from __future__ import annotations

from functools import reduce

from slack_bolt import App

from bot.slack.listeners import (
    actions,
    app_life,
    channel_messages,
    commands,
    home,
    label_commands,
    label_menu,
    new_label,
    privacy,
    reactions,
)
from bot.slack.listeners._shared import ack_now
from bot.slack.listeners.declaration import EventHandler, Listeners, name_of

__all__ = ["ALL", "EventHandler", "Listeners", "Registered", "declared", "register_all"]

DECLARATIONS: tuple[Listeners, ...] = (
    channel_messages.LISTENERS,
    reactions.LISTENERS,
    home.LISTENERS,
    app_life.LISTENERS,
    commands.LISTENERS,
    actions.LISTENERS,
    privacy.LISTENERS,
    label_menu.LISTENERS,
    new_label.LISTENERS,
    label_commands.LISTENERS,
)
ALL: Listeners = reduce(Listeners.merged, DECLARATIONS, Listeners())
Registered = dict[str, set[str]]


def declared(listeners: Listeners = ALL) -> Registered:
    """The event types, commands, action ids, options and view callback ids listened to."""
    return {
        "events": set(listeners.events),
        "commands": set(listeners.commands),
        "actions": {name_of(action) for action in listeners.actions},
        "options": {name_of(callback_id) for callback_id in listeners.options},
        "views": {name_of(callback_id) for callback_id in listeners.views},
    }


def register_all(app: App, listeners: Listeners = ALL) -> None:
    """Give Bolt what it answers itself: commands and clicks are acknowledged at once and run
    lazily on the listener threads; options and view submissions are answered in the ack."""
    for command, run in listeners.commands.items():
        app.command(command)(ack=ack_now, lazy=[run])
    for action, run in listeners.actions.items():
        app.action(action)(ack=ack_now, lazy=[run])
    for callback_id, answer in listeners.options.items():
        app.options(callback_id)(answer)
    for callback_id, answer in listeners.views.items():
        app.view(callback_id)(answer)
