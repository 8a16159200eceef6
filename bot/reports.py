"""What the learning loop tells a channel, as plain values that know nothing of Slack's wire format.

`bot.loop` builds these and hands them to its `Publisher` (`bot.loop.publisher`); `bot.slack`
renders them as Block Kit (`bot.slack.blocks.message`), minding Slack's size limits, and posts
them (`bot.slack.publisher.SlackPublisher`). They live in bot/'s bottom layer because both rooms
use them and the two rooms never import each other.

Texts carry the marks every message of the bot uses (`*bold*`, `` `code` ``, `:emoji:`), as
`bot.texts` does; blocks, fields, headings and cuts are the renderer's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One named figure of a report, e.g. ("Candidate", "accuracy 80.0%, macro-F1 78.5%")."""

    name: str
    value: str


@dataclass(frozen=True)
class Chart:
    """A PNG posted with a report as a file of its own."""

    png: bytes
    filename: str
    title: str


@dataclass(frozen=True)
class RoundReport:
    """One training round's outcome for the task's channel."""

    title: str  # the outcome and the version, e.g. ":white_check_mark: Training round for *support*: promoted v3"
    decision: str  # why the gate decided so, or why the round failed
    metrics: tuple[Field, ...] = ()  # old vs candidate, examples learned, trigger; empty when nothing was measured
    abstention: tuple[str, ...] = ()  # the candidate's calibration and out-of-scope recall
    label_changes: tuple[str, ...] = ()  # per-label recall changes, biggest moves first
    chart: Chart | None = None  # a metric across versions


@dataclass(frozen=True)
class Digest:
    """The daily digest for admins of one channel."""

    text: str
    chart: Chart | None = None  # coverage and precision per version


@dataclass(frozen=True)
class Notice:
    """A plain message for the task's admins, e.g. that a new version failed to load."""

    text: str


@dataclass(frozen=True)
class Question:
    """The bot asks for a label in the thread of a stored message (tasks with `ask_per_day`)."""

    thread_ts: str
    message_id: int
    task: str
    labels: tuple[str, ...]  # the task's labels, for the menu
    top3: tuple[tuple[str, float], ...]  # the bot's calibrated guesses, offered as buttons


Report = RoundReport | Digest | Notice | Question
