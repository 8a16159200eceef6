"""App Home: publish the per-task overview whenever someone opens the bot's Home tab."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from bot.slack.home import HomeBuilder
from bot.slack.listeners._shared import Delivery
from bot.slack.listeners.declaration import Listeners
from bot.slack.services import Services

_BUILDER = HomeBuilder()  # keeps chart uploads between openings


def publish_home(
    services: Services, event: dict[str, Any], workspace: str, client: WebClient, delivery: Delivery
) -> None:
    if event.get("tab", "home") != "home":
        return
    client.views_publish(user_id=str(event["user"]), view=_BUILDER.view(services, client))


LISTENERS = Listeners(events={"app_home_opened": publish_home})
