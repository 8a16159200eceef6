"""Bolt listeners, one module per kind of Slack request; `register_all` wires them to an app.

Each module declares what it registers (EVENTS, COMMANDS, ACTIONS); `register_all` keeps the
union on `app.camel_registered` so a test can hold it against deploy/slack-manifest.yaml.
"""

from __future__ import annotations

import importlib

from slack_bolt import App

# Imported when registering, not at package import, so that `bot.home` can use
# `bot.listeners.reports` without a circular import.
MODULES = ("messages", "reactions", "actions", "commands", "home")


def register_all(app: App) -> dict[str, set[str]]:
    registered: dict[str, set[str]] = {"events": set(), "commands": set(), "actions": set()}
    for name in MODULES:
        module = importlib.import_module(f"bot.listeners.{name}")
        module.register(app)
        for kind in registered:
            registered[kind].update(getattr(module, kind.upper(), ()))
    app.camel_registered = registered  # type: ignore[attr-defined]
    return registered
