"""One message of a bound channel, as the listeners that answer it pass it along."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import storage


@dataclass(frozen=True)
class ChannelMessage:
    """A stored message the bot answers: `thread` is where a reply goes (the message's thread,
    or the message itself), `text` is the stored text, the one classified."""

    task: storage.Task
    message_id: int
    workspace: str
    channel: str
    ts: str
    thread: str
    text: str
    user: str | None

    @classmethod
    def of(
        cls, task: storage.Task, message_id: int, workspace: str, channel: str, event: dict[str, Any], text: str
    ) -> "ChannelMessage":
        """From Slack's message payload (`event`, with at least `ts`) and the text as stored."""
        ts = str(event["ts"])
        user = event.get("user")
        return cls(
            task=task,
            message_id=message_id,
            workspace=workspace,
            channel=channel,
            ts=ts,
            thread=str(event.get("thread_ts") or ts),
            text=text,
            user=str(user) if user else None,
        )
