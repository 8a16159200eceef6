"""App Home: publish the per-task overview whenever someone opens the bot's Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.slack.home import HomeBuilder
from bot.slack.listeners._shared import ack_now, services_of


EVENTS = ("app_home_opened",)


def register(app: App) -> None:
    builder = HomeBuilder()

    def publish_home(event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=str(event["user"]), view=builder.view(services_of(context), client))

    app.event("app_home_opened")(ack=ack_now, lazy=[publish_home])
