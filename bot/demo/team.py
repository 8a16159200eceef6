"""The simulated team: people who post messages, read the bot's answers and correct it.

Everything goes through Slack's surfaces only: signed events and block_actions into the bot,
and the bot's answers read back from the calls the local Web API stand-in recorded.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from bot.slack import blocks
from bot.demo.data import DemoTask
from bot.errors import DemoStalledError
from bot.demo.report import Exchange
from bot.demo.slack_events import SignedSender
from bot.demo.local_slack import FakeSlackAPI

POSTERS = ("U0ALICE", "U0BRUNO", "U0CHIARA", "U0DARIUS")
REVIEWERS = ("U0ERIN", "U0FATIMA")  # the people who fix the bot's mistakes
CONFIRM_EMOJI = "white_check_mark"
REPLY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SentCorrection:
    """A correction the team sent; the test checks each one landed in the database."""

    task: str
    channel: str
    ts: str  # the original message's ts
    label: str
    source: str  # "menu", "reaction" or "confirm", as storage names it
    user: str


@dataclass(frozen=True)
class BotAnswer:
    label: str | None  # None: the bot abstained
    text: str
    reply: dict[str, Any] | None  # the posted message (for the menu), None if it answered by reaction
    block_id: str


@dataclass(frozen=True)
class NewLabelShown:
    """A label created from a correction: its name and description, the message it corrected and
    what the bot had answered before."""

    label: str
    description: str
    text: str
    answer_before: str
    ts: str


@dataclass
class Team:
    sender: SignedSender
    fake: FakeSlackAPI
    emoji_maps: dict[str, dict[str, str]]  # task -> emoji -> label, as the bot reads reactions
    correct_share: float = 0.85
    confirm_share: float = 0.3
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    corrections: list[SentCorrection] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    posted: int = 0
    talking: bool = False  # True while the team works through its messages

    def say(self, task: DemoTask, text: str, truth: str) -> bool:
        """Post one message, read the answer, maybe correct it. Returns whether the bot was right."""
        poster = POSTERS[self.posted % len(POSTERS)]
        self.posted += 1
        ts = self.sender.message(channel=task.channel, user=poster, text=text)
        answer = self.wait_for_answer(task.channel, ts)
        right = answer.label == truth
        reviewer = self.rng.choice(REVIEWERS)
        if right and self.rng.random() < self.confirm_share:
            self._confirm(task, ts, answer, reviewer, text)
        elif not right and self.rng.random() < self.correct_share:
            self._correct(task, ts, answer, reviewer, truth, text)
        return right

    def wait_for_answer(self, channel: str, ts: str) -> BotAnswer:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            for call in reversed(self.fake.calls_of("chat.postMessage")):
                p = call.params
                if p.get("channel") == channel and p.get("thread_ts") == ts:
                    return _parse_reply(p, self.fake)
            time.sleep(0.01)
        raise DemoStalledError(f"the bot did not answer message {ts} in {channel} within {REPLY_TIMEOUT_S:.0f}s")

    def _confirm(self, task: DemoTask, ts: str, answer: BotAnswer, user: str, text: str) -> None:
        # On the person's message, not the bot's reply: the team reacts within milliseconds of
        # the reply, before the bot may have stored which message that reply belongs to.
        self.sender.reaction(channel=task.channel, user=user, reaction=CONFIRM_EMOJI, item_ts=ts, item_user=POSTERS[0])
        self._note(
            SentCorrection(task.name, task.channel, ts, str(answer.label), "confirm", user),
            text,
            answer,
            f"{user} reacts :{CONFIRM_EMOJI}: on the message (right)",
        )

    def _correct(self, task: DemoTask, ts: str, answer: BotAnswer, user: str, truth: str, text: str) -> None:
        emoji = next((e for e, label in self.emoji_maps[task.name].items() if label == truth), None)
        # Where a label has an emoji (sentiment faces), half the fixes are reactions, half menu picks.
        if emoji is not None and (answer.reply is None or self.rng.random() < 0.5):
            self.sender.reaction(channel=task.channel, user=user, reaction=emoji, item_ts=ts, item_user=POSTERS[0])
            self._note(
                SentCorrection(task.name, task.channel, ts, truth, "reaction", user),
                text,
                answer,
                f"{user} reacts :{emoji}: on the message (= {truth})",
            )
            return
        if answer.reply is None:
            return
        # The menu's options come from the bot as the person types (the label's first letters).
        options = self.sender.menu_options(
            channel=task.channel, user=user, reply=answer.reply, block_id=answer.block_id, typed=truth[:4]
        )
        self.sender.menu_choice(
            channel=task.channel,
            user=user,
            reply=answer.reply,
            block_id=answer.block_id,
            value=_menu_value(options, truth),
        )
        self._note(
            SentCorrection(task.name, task.channel, ts, truth, "menu", user),
            text,
            answer,
            f"{user} picks '{truth}' in the menu",
        )

    def create_label(self, task: DemoTask, user: str, text: str, name: str, description: str) -> NewLabelShown:
        """A message no label fits: `user` types in its menu, picks "New label…", fills the modal
        the bot opens, and the message is corrected with the new label in that one step."""
        ts = self.sender.message(channel=task.channel, user=POSTERS[0], text=text)
        answer = self.wait_for_answer(task.channel, ts)
        if answer.reply is None:
            raise DemoStalledError("the bot answered the new kind of message with a reaction only, not a menu")
        options = self.sender.menu_options(
            channel=task.channel, user=user, reply=answer.reply, block_id=answer.block_id, typed=name[:6]
        )
        new_label = next((o["value"] for o in options if o["value"].endswith(blocks.NEW_LABEL)), None)
        if new_label is None:
            raise DemoStalledError("the bot's menu did not offer New label…")
        opened = len(self.fake.calls_of("views.open"))
        self.sender.menu_choice(
            channel=task.channel, user=user, reply=answer.reply, block_id=answer.block_id, value=new_label
        )
        view = self._wait_for_modal(opened)
        ack = self.sender.view_submission(
            user=user,
            view=view,
            values={
                blocks.NAME_BLOCK: {blocks.NAME_INPUT: name},
                blocks.DESCRIPTION_BLOCK: {blocks.DESCRIPTION_INPUT: description},
            },
        )
        if ack.get("response_action") == "errors":
            raise DemoStalledError(f"the bot refused the new label {name!r}: {ack.get('errors')}")
        self.corrections.append(SentCorrection(task.name, task.channel, ts, name, "menu", user))
        self.exchanges.append(
            Exchange(task.name, text, answer.text, f"{user} picks 'New label…' and creates '{name}'", "new label")
        )
        return NewLabelShown(name, description, text, answer.text, ts)

    def _wait_for_modal(self, before: int) -> dict[str, Any]:
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while time.monotonic() < deadline:
            calls = self.fake.calls_of("views.open")
            if len(calls) > before:
                view = calls[-1].params.get("view")
                return dict(json.loads(view) if isinstance(view, str) else view or {})
            time.sleep(0.01)
        raise DemoStalledError("the bot did not open the New label modal")

    def _note(self, correction: SentCorrection, text: str, answer: BotAnswer, what: str) -> None:
        self.corrections.append(correction)
        self.exchanges.append(Exchange(correction.task, text, answer.text, what, correction.source))


def _parse_reply(params: dict[str, Any], fake: FakeSlackAPI) -> BotAnswer:
    """The bot's label from its reply's confirm button; no confirm button means it abstained."""
    reply_blocks = params.get("blocks") or []
    ts = _reply_ts(params, fake)
    reply = {
        "type": "message",
        "ts": ts,
        "thread_ts": params.get("thread_ts"),
        "text": params.get("text", ""),
        "blocks": reply_blocks,
        "user": fake.bot_user_id,
        "bot_id": "BCAMEL",
    }
    label, block_id = None, ""
    for block in reply_blocks:
        for element in block.get("elements") or []:
            if element.get("type") == "external_select":
                block_id = block.get("block_id", "")
            if element.get("action_id") == blocks.CONFIRM_BUTTON:
                label = blocks.decode_value(element["value"])[-1]
    return BotAnswer(label, str(params.get("text", "")), reply, block_id)


def _reply_ts(params: dict[str, Any], fake: FakeSlackAPI) -> str:
    # The fake stored the posted message under the ts it answered with; find it by content.
    for (channel, ts), message in list(fake.messages.items()):
        if (
            channel == params.get("channel")
            and message.get("text") == params.get("text")
            and message.get("blocks") == params.get("blocks")
        ):
            return ts
    raise DemoStalledError("the bot's reply was not stored by the Web API stand-in")


def _menu_value(options: list[dict[str, Any]], label: str) -> str:
    for option in options:
        if blocks.decode_value(option["value"])[-1] == label:
            return str(option["value"])
    raise DemoStalledError(f"the bot's menu does not offer label {label!r}")
