"""Bolt listeners, one module per kind of Slack request; `register_all` wires them to an app.

Each module declares what it registers (EVENTS, COMMANDS, ACTIONS); `register_all` returns the
union (also `declared()`), so a test can hold it against deploy/slack-manifest.yaml.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.listeners import actions, app_life, channel_messages, commands, home, privacy, reactions
from bot.slack.listeners._shared import Delivery
from bot.slack.services import Services

MODULES: tuple[ModuleType, ...] = (channel_messages, reactions, actions, commands, home, app_life, privacy)
Registered = dict[str, set[str]]
# An event handler run by the inbox worker: (services, event, workspace, client, delivery).
EventHandler = Callable[[Services, dict[str, Any], str, WebClient, Delivery], None]


def declared() -> Registered:
    """Events, commands and action ids the listener modules register."""
    registered: Registered = {"events": set(), "commands": set(), "actions": set()}
    for module in MODULES:
        for kind in registered:
            registered[kind].update(getattr(module, kind.upper(), ()))
    return registered


def register_all(app: App) -> Registered:
    for module in MODULES:
        module.register(app)
    return declared()


def event_handlers() -> dict[str, EventHandler]:
    """Event type -> handler, for the events that go through the durable inbox (HANDLERS of each module)."""
    handlers: dict[str, EventHandler] = {}
    for module in MODULES:
        handlers.update(getattr(module, "HANDLERS", {}))
    return handlers
