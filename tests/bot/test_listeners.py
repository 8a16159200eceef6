"""Listeners declared as data: each module exports one `Listeners`, `ALL` is their union, and
`register_all` gives Bolt what it answers itself (options answered in the acknowledgement)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import Ack, App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.demo.local_slack import FakeSlackAPI
from bot.slack.listeners import ALL, Listeners, declared, register_all
from bot.slack.listeners import app_life, channel_messages, commands, home, reactions
from tests.slack_fixtures import load_payload

SECRET = "listeners-test-secret"


def test_every_event_goes_to_the_inbox_and_nothing_else_is_an_event() -> None:
    modules = (channel_messages, reactions, home, app_life)
    assert set(ALL.events) == {kind for module in modules for kind in module.LISTENERS.events}
    assert {"app_uninstalled", "tokens_revoked", "member_joined_channel", "channel_left"} <= set(ALL.events)
    assert declared()["events"] == set(ALL.events) and declared()["commands"] == set(commands.LISTENERS.commands)


def test_a_name_declared_by_two_modules_is_refused() -> None:
    def noop(**_: Any) -> None: ...

    clicks = Listeners(actions={re.compile(r"^pick_\d+$"): noop})
    with pytest.raises(ValueError, match=r"actions declared twice: \^pick_\\d\+\$"):
        clicks.merged(Listeners(actions={re.compile(r"^pick_\d+$"): noop}))
    with pytest.raises(ValueError, match="events declared twice: message"):
        ALL.merged(Listeners(events={"message": channel_messages.handle_message_event}))


def _signed(body: str) -> BoltRequest:
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=body)
    headers = {
        "content-type": ["application/x-www-form-urlencoded"],
        "x-slack-signature": [signature],
        "x-slack-request-timestamp": [timestamp],
    }
    return BoltRequest(body=body, headers=headers)


def test_an_options_request_is_answered_in_the_acknowledgement() -> None:
    answer = {"options": [{"text": {"type": "plain_text", "text": "Refund"}, "value": "refund"}]}
    asked: list[str] = []

    def suggest(ack: Ack, payload: dict[str, Any]) -> None:
        asked.append(str(payload["value"]))
        ack(answer)

    with FakeSlackAPI(team_id="T111") as fake:
        app = App(
            client=WebClient(token="xoxb-test", base_url=fake.url),
            signing_secret=SECRET,
            token_verification_enabled=False,
        )
        register_all(app, Listeners(options={"es_a": suggest}))
        payload = load_payload("block_suggestion", value="refu")
        response = app.dispatch(_signed(urlencode({"payload": json.dumps(payload)})))
    assert response.status == 200 and json.loads(response.body) == answer
    assert asked == ["refu"]
