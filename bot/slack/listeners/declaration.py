"""What a listener module declares: one `Listeners` value, read by `register_all` and the inbox.

Three ways a Slack request is answered, so three kinds of entries:

- `events`: Events API events. Middleware writes each one to the durable inbox before Slack
  gets its 200, and an inbox worker calls the handler with plain values (not Bolt's request),
  again after a restart or a retry, so handlers are idempotent.
- `commands`, `actions`: Bolt acknowledges at once and runs the listener lazily on its own
  listener threads (Slack answers go through `respond` or the Web API).
- `options`, `views`: requests whose answer Slack reads from the acknowledgement itself
  (`block_suggestion` options, a modal's `view_submission`): the listener is Bolt's ack
  function and must call `ack(...)` with the answer within Slack's 3 seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from slack_sdk import WebClient

from bot.slack.listeners._shared import Delivery
from bot.slack.services import Services

# (services, event, workspace, client, delivery), run by an inbox worker.
EventHandler = Callable[[Services, dict[str, Any], str, WebClient, Delivery], None]
# Bolt passes a listener the arguments it names (body, context, client, respond, ...), so the
# parameters of these cannot be typed closer than this.
LazyListener = Callable[..., None]
AckListener = Callable[..., None]
# An action, options or view callback id as Bolt matches it: the exact id, or a pattern.
CallbackId = str | re.Pattern[str]
Key = TypeVar("Key")
Value = TypeVar("Value")


@dataclass(frozen=True)
class Listeners:
    """What one module listens to, by kind (see the module docstring)."""

    events: Mapping[str, EventHandler] = field(default_factory=dict)
    commands: Mapping[str, LazyListener] = field(default_factory=dict)
    actions: Mapping[CallbackId, LazyListener] = field(default_factory=dict)
    options: Mapping[CallbackId, AckListener] = field(default_factory=dict)
    views: Mapping[CallbackId, AckListener] = field(default_factory=dict)

    def merged(self, other: Listeners) -> Listeners:
        """Both declarations in one; a name declared twice is a programming error."""
        return Listeners(
            events=_union("events", self.events, other.events),
            commands=_union("commands", self.commands, other.commands),
            actions=_union("actions", self.actions, other.actions),
            options=_union("options", self.options, other.options),
            views=_union("views", self.views, other.views),
        )


def _union(kind: str, mine: Mapping[Key, Value], theirs: Mapping[Key, Value]) -> dict[Key, Value]:
    twice = set(mine) & set(theirs)
    if twice:
        raise ValueError(f"{kind} declared twice: {', '.join(sorted(name_of(key) for key in twice))}")
    return {**mine, **theirs}


def name_of(callback_id: object) -> str:
    """The id as the manifest and logs spell it (a pattern by its source)."""
    return str(callback_id.pattern) if isinstance(callback_id, re.Pattern) else str(callback_id)
