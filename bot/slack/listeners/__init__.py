"""Bolt listeners, one module per kind of Slack request; `register_all` wires them to an app.

Each module declares what it registers (EVENTS, COMMANDS, ACTIONS); `register_all` returns the
union (also `declared()`), so a test can hold it against deploy/slack-manifest.yaml.
"""

from __future__ import annotations

from types import ModuleType

from slack_bolt import App

from bot.slack.listeners import actions, app_life, channel_messages, commands, home, privacy, reactions

MODULES: tuple[ModuleType, ...] = (channel_messages, reactions, actions, commands, home, app_life, privacy)
Registered = dict[str, set[str]]


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
