"""Socket Mode: the same app over slack_bolt's SocketModeHandler, against the fake's websocket."""

from __future__ import annotations

from pathlib import Path

from bot.demo.local_slack import FakeSlackAPI
from tests.bot.conftest import SUPPORT_CHANNEL, TEAM, USER, make_settings, wait_until


def test_events_and_commands_over_socket_mode(tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot import runtime

    settings = make_settings(
        tmp_path / "data", fake_slack, tiny_bert_dir, mode="socket", signing_secret="", app_token="xapp-test-token"
    )
    settings.require_secrets()
    bot = runtime.start(settings, learning=False)  # socket mode: no HTTP server
    assert bot.app is not None and bot.server is None
    handler = SocketModeHandler(bot.app, settings.app_token)
    handler.connect()
    try:
        assert fake_slack.socket_connected.wait(60)
        opened = fake_slack.calls_of("apps.connections.open")[0]
        assert opened.headers["Authorization"] == "Bearer xapp-test-token"
        event_id = fake_slack.send_socket_envelope(
            "events_api",
            {
                "type": "event_callback",
                "team_id": TEAM,
                "event_id": "Ev0SOCKET",
                "event": {
                    "type": "message",
                    "channel": SUPPORT_CHANNEL,
                    "user": USER,
                    "text": "where is my card",
                    "ts": "1700000060.000100",
                },
            },
        )
        reply = fake_slack.wait_for("chat.postMessage")[0]
        assert reply.params["thread_ts"] == "1700000060.000100"  # no adapter yet: asks for the label
        assert any(a.params.get("envelope_id") == event_id for a in fake_slack.wait_for("socket_ack"))
        fake_slack.send_socket_envelope(
            "slash_commands",
            {
                "command": "/camel",
                "text": "labels",
                "user_id": USER,
                "channel_id": SUPPORT_CHANNEL,
                "team_id": TEAM,
                "response_url": fake_slack.response_url("socket"),
            },
        )
        assert "*support* labels" in fake_slack.wait_for("response_url")[0].params["text"]
        wait_until(lambda: len(fake_slack.calls_of("socket_ack")) >= 2, what="command acked")
    finally:
        handler.close()
        bot.stop()
