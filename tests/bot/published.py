"""Send Slack's published payloads (tests/slack_fixtures.py) to the running bot, signed like Slack signs them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tests.bot.conftest import TEAM, BotUnderTest
from tests.slack_fixtures import load_command_body, load_payload


def send_event(bot: BotUnderTest, name: str, event_id: str, **replace: Any) -> int:
    """POST the published event envelope `name` with the test's ids; returns the HTTP status."""
    body = load_payload(name, team_id=TEAM, event_id=event_id, **replace)
    status, _ = bot.post(json.dumps(body).encode(), "application/json")
    return status


def send_command(bot: BotUnderTest, text: str, *, user: str, channel: str) -> int:
    body = load_command_body(
        command="/camel",
        text=text,
        user_id=user,
        channel_id=channel,
        team_id=TEAM,
        response_url=bot.fake.response_url("command"),
    )
    status, _ = bot.post(body.encode(), "application/x-www-form-urlencoded")
    return status


def send_click(bot: BotUnderTest, action: dict[str, Any], *, user: str, channel: str, message_ts: str) -> int:
    """The published block_actions payload, clicked by `user` on a bot message in `channel`."""
    payload = load_payload(
        "block_actions",
        user={"id": user, "username": "someone", "name": "someone", "team_id": TEAM},
        team={"id": TEAM, "domain": "camel"},
        container={"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        channel={"id": channel, "name": "a-channel"},
        response_url=bot.fake.response_url("action"),
        actions=[action],
    )
    payload["message"] = {"type": "message", "ts": message_ts}  # a click on a public message carries it
    status, _ = bot.post(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")
    return status


def send_suggestion(
    bot: BotUnderTest, *, action_id: str, block_id: str, value: str, user: str, channel: str, message_ts: str
) -> tuple[int, dict[str, Any]]:
    """The published block_suggestion payload, asked by a label menu on a bot message in
    `channel` as `user` typed `value`; the status and the options Slack would get in the ack."""
    payload = load_payload(
        "block_suggestion",
        user={"id": user, "username": "someone", "name": "someone", "team_id": TEAM},
        team={"id": TEAM, "domain": "camel"},
        container={"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        action_id=action_id,
        block_id=block_id,
        value=value,
    )
    # Asked from a message, not a modal: Slack sends the channel and message instead of the view.
    payload.pop("view", None)
    payload["channel"] = {"id": channel, "name": "a-channel"}
    payload["message"] = {"type": "message", "ts": message_ts}
    status, body = bot.post(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")
    return status, (json.loads(body) if body else {})


def menu_options(
    bot: BotUnderTest, blocks: list[dict[str, Any]], channel: str, message_ts: str, value: str = ""
) -> list[str]:
    """The values a reply's label menu offers (asked as Slack asks, with `value` typed)."""
    block = next(b for b in blocks if b["type"] == "actions")
    menu = next(e for e in block["elements"] if e["type"] == "external_select")
    assert menu["min_query_length"] == 0
    status, answer = send_suggestion(
        bot,
        action_id=menu["action_id"],
        block_id=block["block_id"],
        value=value,
        user="U0MENU",
        channel=channel,
        message_ts=message_ts,
    )
    assert status == 200
    return [option["value"] for option in answer["options"]]


def send_view_submission(
    bot: BotUnderTest, opened: dict[str, Any], values: dict[str, dict[str, str]], *, user: str
) -> tuple[int, dict[str, Any]]:
    """The published view_submission payload for the modal `opened` (as the bot passed it to
    views.open), with `values` ({block_id: {action_id: text}}) typed; the status and the ack's body."""
    payload = load_payload(
        "view_submission",
        user={"id": user, "username": "someone", "name": "someone", "team_id": TEAM},
        team={"id": TEAM, "domain": "camel"},
    )
    state = {
        block: {action: {"type": "plain_text_input", "value": text} for action, text in typed.items()}
        for block, typed in values.items()
    }
    payload["view"].update(
        callback_id=opened["callback_id"],
        private_metadata=opened["private_metadata"],
        blocks=opened["blocks"],
        title=opened["title"],
        state={"values": state},
    )
    status, body = bot.post(urlencode({"payload": json.dumps(payload)}).encode(), "application/x-www-form-urlencoded")
    return status, (json.loads(body) if body else {})
