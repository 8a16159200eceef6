"""App Home (views.publish with the uploaded accuracy chart) and the Slack manifest."""

from __future__ import annotations

from pathlib import Path

import yaml

import storage
from bot.slack.listeners.commands import COMMAND
from tests.bot.conftest import USER, BotUnderTest

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "slack-manifest.yaml"
METRICS = {
    "accuracy": 0.8,
    "macro_f1": 0.75,
    "confused_pairs": [{"true": "refund", "predicted": "feelings", "count": 4}],
}


def test_app_home_shows_version_chart_and_confusions(bot: BotUnderTest) -> None:
    v1 = storage.adapters.get_adapter(bot.db, "support", 1)
    storage.adapters.register_adapter(
        bot.db,
        storage.NewAdapterVersion(
            task="support", version=2, path=v1.path, parent_version=1, run_id=None, metrics=METRICS
        ),
    )
    storage.adapters.activate_adapter(bot.db, "support", 2, reason="test")
    bot.send_event({"type": "app_home_opened", "user": USER, "channel": "D0HOME", "tab": "home"})
    view = bot.fake.wait_for("views.publish")[0].params
    assert view["user_id"] == USER and view["view"]["type"] == "home"
    texts = [b["text"]["text"] for b in view["view"]["blocks"] if b["type"] == "section"]
    assert any("*support*" in t and "Live adapter: v1" in t for t in texts)  # registry still serves v1
    contexts = [e["text"] for b in view["view"]["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert any("refund -> feelings (4)" in t for t in contexts)
    image = next(b for b in view["view"]["blocks"] if b["type"] == "image")
    assert bot.fake.uploads[image["slack_file"]["id"]].startswith(b"\x89PNG")
    # A second visit reuses the uploaded chart.
    bot.send_event({"type": "app_home_opened", "user": USER, "channel": "D0HOME", "tab": "home"})
    bot.fake.wait_for("views.publish", 2)
    assert len(bot.fake.calls_of("files.completeUploadExternal")) == 1


def test_messages_tab_opening_publishes_nothing(bot: BotUnderTest) -> None:
    bot.send_event({"type": "app_home_opened", "user": USER, "channel": "D0HOME", "tab": "messages"})
    bot.send_event({"type": "app_home_opened", "user": USER, "channel": "D0HOME", "tab": "home"})
    assert len(bot.fake.wait_for("views.publish")) == 1


def _manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_manifest_matches_what_the_app_registers(bot: BotUnderTest) -> None:
    manifest = _manifest()
    events = {e.split(".")[0] for e in manifest["settings"]["event_subscriptions"]["bot_events"]}
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    registered = bot.runtime.registered
    assert registered["events"] == events
    assert registered["commands"] == commands == {COMMAND}
    assert manifest["settings"]["interactivity"]["is_enabled"] is bool(registered["actions"])
    # the label menus are external selects: Slack asks the options URL for their options
    assert bool(manifest["settings"]["interactivity"].get("message_menu_options_url")) is bool(registered["options"])
    assert registered["options"] == {"camel_correct", "camel_review_menu", "camel_ask_menu"}


def test_manifest_points_every_url_at_the_one_endpoint_and_bolt_answers_them(bot: BotUnderTest) -> None:
    manifest = _manifest()
    urls = {
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["interactivity"]["message_menu_options_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    # Asked first: app_uninstalled below stops the workspace, whose later events are all acknowledged.
    status, _ = bot.send_event({"type": "team_join", "user": {"id": USER}})
    assert status == 404  # an event the app does not register is not handled
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        status, _ = bot.send_event(
            {
                "type": event.split(".")[0],
                "user": USER,
                "channel": "C0ELSE",
                "text": "hi",
                "ts": "1.1",
                "reaction": "x",
                "item": {"type": "message", "channel": "C0ELSE", "ts": "1.1"},
            }
        )
        assert status == 200, event


# What each Web API method and event the bot uses needs (https://api.slack.com/methods).
METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "reactions_add": "reactions:write",
    "conversations_history": "channels:history",
    "conversations_replies": "channels:history",
    "files_upload_v2": "files:write",
    "usergroups_users_list": "usergroups:read",
    "conversations_open": "im:write",
    "auth_test": None,
    "views_publish": None,
    "views_open": None,
}
EVENT_SCOPES = {
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "reaction_added": "reactions:read",
    "reaction_removed": "reactions:read",
    "app_home_opened": None,
    "app_uninstalled": None,
    "tokens_revoked": None,
    "member_joined_channel": "channels:read",
    "channel_left": "channels:read",
    "channel_archive": "channels:read",
    "channel_unarchive": "channels:read",
    "group_left": "groups:read",
    "group_archive": "groups:read",
    "group_unarchive": "groups:read",
}
# Everything that talks to Slack's Web API: the Slack room, and the runtime's report callables.
BOT_SOURCES = [*Path(MANIFEST.parents[1], "bot", "slack").rglob("*.py"), Path(MANIFEST.parents[1], "bot", "runtime.py")]


def test_manifest_asks_exactly_the_scopes_the_code_needs() -> None:
    import re

    used = {m for source in BOT_SOURCES for m in re.findall(r"client\.([a-z_0-9A-Z]+)\(", source.read_text())}
    assert {"chat_postMessage", "files_upload_v2", "reactions_add"} <= used
    assert used <= set(METHOD_SCOPES), f"add the scope of {used - set(METHOD_SCOPES)} to METHOD_SCOPES"
    manifest = _manifest()
    needed = {METHOD_SCOPES[m] for m in used} | {
        EVENT_SCOPES[e] for e in manifest["settings"]["event_subscriptions"]["bot_events"]
    }
    needed = (needed - {None}) | ({"commands"} if manifest["features"]["slash_commands"] else set())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed
