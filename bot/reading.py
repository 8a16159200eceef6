"""Whether the base model reads what a channel writes: the unknown-character share per channel.

The characters of a mention, a link or an `:emoji:` code say nothing about the language people
write in, so they are removed first (`bot.plain_text.without_markup`); the rest is read by the
base's tokenizer (`camel.reading`). One place computes it, so `camel-bot doctor`, `/camel stats`
and the hourly alert to admins agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database

import camel
import storage
from bot.plain_text import without_markup
from camel.reading import Reading, read_texts

# The newest messages of a channel that are read: enough for a share, cheap for a tokenizer.
RECENT_MESSAGES = 200
SETTING = "[model] unknown_chars_alert"
HELP_SECTION = "README.md#teams-writing-other-languages"


@dataclass(frozen=True)
class ChannelReading:
    task: str
    channel: str
    reading: Reading

    def passes(self, alert: float) -> bool:
        """True when the share is above the alert setting (never for a channel with nothing to read)."""
        return self.reading.characters > 0 and self.reading.unknown_share > alert


def read_channel(db: Database, base: camel.BaseEncoder, task: str, channel: str) -> ChannelReading:
    texts = storage.messages.recent_texts(db, [channel], limit=RECENT_MESSAGES)
    return ChannelReading(task, channel, read_texts(base, [without_markup(text) for text in texts]))


def read_task(db: Database, base: camel.BaseEncoder, task: storage.Task) -> list[ChannelReading]:
    """One reading per channel of the task (its channels' recent messages, markup removed)."""
    return [read_channel(db, base, task.name, channel) for channel in task.channels]


def summary(found: ChannelReading) -> str:
    """`62% of 1,204 characters unknown to the base (Han 90%, Latin 10%; 200 messages)`."""
    reading = found.reading
    if reading.characters == 0:
        return "no messages to read yet"
    return (
        f"{reading.unknown_share:.0%} of {reading.characters:,} characters unknown to the base "
        f"({reading.scripts_text()}; {reading.texts} messages)"
    )


def advice(alert: float) -> str:
    """What to do when a channel's share passes the alert."""
    return (
        "use a multilingual base model folder (set `[model] base_model`), see "
        f"{HELP_SECTION}; or raise `{SETTING}` (now {alert:.0%}) to stop this warning"
    )
