"""Signed requests to the bot, shaped like the ones Slack sends (events and interactivity).

Each request carries X-Slack-Signature and X-Slack-Request-Timestamp computed with the demo's
signing secret, so the Bolt app's real request verification accepts them.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.request
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.errors import DemoStalledError

TEAM_ID = "T0CAMEL"
APP_ID = "A0CAMELDEMO"


def signed_headers(
    signing_secret: str, body: str, content_type: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with `body`: its content type, the timestamp and the v0 signature
    over both (also used by the tests and the load benchmark, so all three sign alike)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body) or ""
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


class SignedSender:
    """POSTs signed bodies to the bot's /slack/events URL, as Slack's servers would."""

    def __init__(self, url: str, signing_secret: str, response_url: str) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.response_url = response_url
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)

    def next_ts(self) -> str:
        """A fresh Slack message timestamp, unique within the demo."""
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _post(self, body: str, content_type: str) -> int:
        return self._exchange(body, content_type)[0]

    def _exchange(self, body: str, content_type: str) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.url,
            data=body.encode("utf-8"),
            method="POST",
            headers=signed_headers(self.signing_secret, body, content_type),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), response.read()
        except OSError as exc:
            raise DemoStalledError(f"the bot did not accept a request at {self.url}: {exc}") from None

    def menu_options(
        self, *, channel: str, user: str, reply: dict[str, Any], block_id: str, typed: str
    ) -> list[dict[str, Any]]:
        """A block_suggestion payload: `user` typed `typed` in the label menu under `reply`; the
        options the bot answered with in the acknowledgement."""
        payload = {
            "type": "block_suggestion",
            "api_app_id": APP_ID,
            "token": "demo",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
            "team": {"id": TEAM_ID, "domain": "camel-demo"},
            "channel": {"id": channel, "name": f"chan-{channel}"},
            "container": {"type": "message", "message_ts": reply["ts"], "channel_id": channel, "is_ephemeral": False},
            "message": reply,
            "action_id": "camel_correct",
            "block_id": block_id,
            "value": typed,
        }
        status, body = self._exchange(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
        if status != 200:
            raise DemoStalledError(f"the bot answered a menu's options request with HTTP {status}")
        return list(json.loads(body or b"{}").get("options") or [])

    def event(self, event: dict[str, Any]) -> int:
        envelope = {
            "token": "demo",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{next(self._ids):010d}",
            "event_time": int(time.time()),
        }
        return self._post(json.dumps(envelope), "application/json")

    def message(self, *, channel: str, user: str, text: str) -> str:
        ts = self.next_ts()
        self.event(
            {
                "type": "message",
                "channel": channel,
                "user": user,
                "text": text,
                "ts": ts,
                "channel_type": "channel",
                "event_ts": ts,
                "team": TEAM_ID,
            }
        )
        return ts

    def reaction(self, *, channel: str, user: str, reaction: str, item_ts: str, item_user: str) -> None:
        self.event(
            {
                "type": "reaction_added",
                "user": user,
                "reaction": reaction,
                "item_user": item_user,
                "item": {"type": "message", "channel": channel, "ts": item_ts},
                "event_ts": self.next_ts(),
            }
        )

    def view_submission(self, *, user: str, view: dict[str, Any], values: dict[str, dict[str, str]]) -> dict[str, Any]:
        """A view_submission payload: `user` filled the modal `view` (as the bot opened it) with
        `values` ({block_id: {action_id: text}}) and pressed its submit button; the ack's body."""
        state = {
            block: {action: {"type": "plain_text_input", "value": text} for action, text in typed.items()}
            for block, typed in values.items()
        }
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "camel-demo"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "demo",
            "trigger_id": f"{next(self._ids)}.demo",
            "view": {
                "id": f"V{next(self._ids):08d}",
                "team_id": TEAM_ID,
                "type": "modal",
                "blocks": view.get("blocks", []),
                "private_metadata": view.get("private_metadata", ""),
                "callback_id": view.get("callback_id", ""),
                "state": {"values": state},
                "title": view.get("title"),
            },
            "response_urls": [],
        }
        status, body = self._exchange(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
        if status != 200:
            raise DemoStalledError(f"the bot answered a modal's submission with HTTP {status}")
        return dict(json.loads(body)) if body else {}

    def menu_choice(self, *, channel: str, user: str, reply: dict[str, Any], block_id: str, value: str) -> None:
        """A block_actions payload: `user` picked `value` in the bot's label menu under `reply`."""
        payload = {
            "type": "block_actions",
            "api_app_id": APP_ID,
            "token": "demo",
            "trigger_id": f"{next(self._ids)}.demo",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
            "team": {"id": TEAM_ID, "domain": "camel-demo"},
            "channel": {"id": channel, "name": f"chan-{channel}"},
            "container": {"type": "message", "message_ts": reply["ts"], "channel_id": channel, "is_ephemeral": False},
            "message": reply,
            "response_url": self.response_url,
            "actions": [
                {
                    "type": "external_select",
                    "action_id": "camel_correct",
                    "block_id": block_id,
                    "selected_option": {
                        "text": {"type": "plain_text", "text": value.partition("|")[2]},
                        "value": value,
                    },
                    "action_ts": self.next_ts(),
                }
            ],
        }
        self._post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")
