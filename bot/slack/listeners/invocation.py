"""One /camel invocation and the error that sends a usage line back to the user."""

from __future__ import annotations

from dataclasses import dataclass


from slack_bolt import Respond
from slack_sdk import WebClient

import storage
from bot import texts
from bot.slack.services import Services


class CommandProblem(Exception):
    """Bad input to a subcommand; the message goes back to the user as it is."""


@dataclass
class Invocation:
    services: Services
    client: WebClient
    respond: Respond
    user: str
    channel: str
    workspace: str
    args: list[str]
    raw: str

    def reply(self, text: str) -> None:
        self.respond(text=text, response_type="ephemeral")

    def channel_task(self) -> storage.Task:
        task = storage.tasks.task_for_channel(self.services.db, self.channel)
        if task is None:
            raise CommandProblem(texts.no_task_here())
        return task

    def require_admin(self, action: str) -> None:
        if not self.services.is_admin(self.user, self.client):
            raise CommandProblem(texts.admins_only(action))
