"""The app's life in the workspace, with Slack's published payloads: uninstall and
revoked tokens stop the work, a lost channel pauses its binding and tells the admins, the bot invited
to a channel offers /camel setup (or resumes a paused binding)."""

from __future__ import annotations

import time
from pathlib import Path

import storage
from bot import reports
from bot.cli.checks import check_slack_install, DoctorState
from bot.loop.registry import ReloadNotice
from bot.loop.reporter import Reporter
from bot.slack.app import resume_if_token_works
from storage import db as storage_db
from tests.bot.conftest import ADMIN, FREE_CHANNEL, SUPPORT_CHANNEL, TEAM, USER, BotUnderTest, wait_until
from tests.bot.published import send_command, send_event

BOT_USER = "UCAMELBOT"  # the bot user id the fake Web API's auth.test answers


def _message(bot: BotUnderTest, ts: str, event_id: str, **replace: object) -> int:
    values = dict(channel=SUPPORT_CHANNEL, user=USER, team=TEAM, ts=ts, event_ts=ts, text="where is my card")
    values.update(replace)
    return send_event(bot, "message", event_id, **values)


def _stored_ts(bot: BotUnderTest) -> list[str]:
    return [r["ts"] for r in storage_db.rows(bot.db, "SELECT ts FROM messages ORDER BY id")]


def _admin_dms(bot: BotUnderTest, count: int = 1) -> list[str]:
    """Texts the bot posted into direct messages it opened with the admin."""
    opened = bot.fake.wait_for("conversations.open", count)
    assert {c.params["users"] for c in opened} == {ADMIN}
    ims = {c.response["channel"]["id"] for c in opened}
    posted = wait_until(
        lambda: [c for c in bot.fake.calls_of("chat.postMessage") if c.params["channel"] in ims][count - 1 :],
        what="admin told",
    )
    return [str(c.params["text"]) for c in posted]


def test_app_uninstalled_stops_all_work_for_the_workspace(bot: BotUnderTest, tmp_path: Path) -> None:
    assert send_event(bot, "app_uninstalled", "EvUNINSTALL") == 200
    stop = wait_until(lambda: storage.lifecycle.workspace_stop(bot.db, TEAM), what="workspace stopped")
    assert stop.reason == "app_uninstalled"
    assert any(e.action == "workspace_stopped" for e in storage.events.list_audit(bot.db))
    # Events Slack still delivers from before the uninstall are acknowledged and dropped: no Web API call.
    assert _message(bot, "1700000400.000100", "EvAFTERSTOP") == 200
    bot.wait_until_handled()
    assert _stored_ts(bot) == [] and bot.fake.calls_of("chat.postMessage") == []
    # Round reports are not posted against a dead token either.
    posted: list[str] = []

    class Recording:
        def publish(self, channel: str, report: reports.Report) -> None:
            posted.append(channel)

        def tell_admins(self, report: reports.Report) -> int:
            posted.append("admins")
            return 1

    Reporter(bot.settings, bot.db, Recording()).reload_failures([ReloadNotice("support", "support v2: broken")])
    assert posted == []
    # `camel-bot doctor` says so, with the fix.
    found = check_slack_install(DoctorState(None, {}, settings=bot.settings, db=bot.db))
    assert not found[0].ok and "app_uninstalled" in found[0].detail and "reinstall" in found[0].fix


def test_a_start_with_a_token_slack_accepts_resumes_the_work(bot: BotUnderTest) -> None:
    assert send_event(bot, "app_uninstalled", "EvUNINSTALL2") == 200
    wait_until(lambda: storage.lifecycle.workspace_stop(bot.db, TEAM), what="workspace stopped")
    # A newer event with the old token changes nothing: only a start with a working token resumes.
    assert _message(bot, "1700000401.000100", "EvLATER", event_time=int(time.time()) + 60) == 200
    bot.wait_until_handled()
    assert storage.lifecycle.workspace_stop(bot.db, TEAM) is not None and _stored_ts(bot) == []
    bot.fake.refuse_next("auth.test", "invalid_auth")
    assert resume_if_token_works(bot.db, bot.app.client) == []
    assert resume_if_token_works(bot.db, bot.app.client) == [TEAM]  # the fake's auth.test answers for TEAM
    assert storage.lifecycle.workspace_stop(bot.db, TEAM) is None
    assert _message(bot, "1700000401.000200", "EvRESUMED") == 200
    assert bot.fake.wait_for("chat.postMessage")[0].params["thread_ts"] == "1700000401.000200"


def test_a_revoked_bot_token_stops_the_work(bot: BotUnderTest) -> None:
    assert send_event(bot, "tokens_revoked", "EvREVOKED") == 200
    assert wait_until(lambda: storage.lifecycle.workspace_stop(bot.db, TEAM), what="stopped").reason == "tokens_revoked"


def test_the_bot_removed_from_a_bound_channel_pauses_it_and_tells_the_admins(bot: BotUnderTest) -> None:
    assert send_event(bot, "channel_left", "EvLEFT", channel=SUPPORT_CHANNEL) == 200
    pause = wait_until(lambda: storage.lifecycle.channel_pause(bot.db, SUPPORT_CHANNEL), what="paused")
    assert pause.task == "support" and "removed" in pause.reason
    assert f"<#{SUPPORT_CHANNEL}> removed me" in _admin_dms(bot)[0]
    assert storage.tasks.task_for_channel(bot.db, SUPPORT_CHANNEL).name == "support"  # the binding is kept
    assert _message(bot, "1700000402.000100", "EvPAUSED") == 200
    bot.wait_until_handled()
    assert _stored_ts(bot) == []
    # Invited back: the binding resumes and the admins hear of it.
    status = send_event(
        bot, "member_joined_channel", "EvBACK", user=BOT_USER, channel=SUPPORT_CHANNEL, team=TEAM, inviter=ADMIN
    )
    assert status == 200
    wait_until(lambda: storage.lifecycle.channel_pause(bot.db, SUPPORT_CHANNEL) is None, what="resumed")
    assert "I'm back" in _admin_dms(bot, 2)[-1]


def test_an_archived_bound_channel_is_paused(bot: BotUnderTest) -> None:
    assert send_event(bot, "channel_archive", "EvARCHIVE", channel=SUPPORT_CHANNEL, user=USER) == 200
    pause = wait_until(lambda: storage.lifecycle.channel_pause(bot.db, SUPPORT_CHANNEL), what="paused")
    assert pause.reason == "channel archived"
    assert "was archived" in _admin_dms(bot)[0]


def test_the_bot_invited_to_an_unbound_channel_offers_setup_to_the_inviter(bot: BotUnderTest) -> None:
    status = send_event(
        bot, "member_joined_channel", "EvJOINED", user=BOT_USER, channel=FREE_CHANNEL, team=TEAM, inviter=USER
    )
    assert status == 200
    offer = bot.fake.wait_for("chat.postEphemeral")[0].params
    assert (offer["channel"], offer["user"]) == (FREE_CHANNEL, USER) and "/camel setup" in offer["text"]
    # Someone else joining is not the bot's business.
    send_event(bot, "member_joined_channel", "EvOTHER", user=USER, channel=FREE_CHANNEL, team=TEAM, inviter=ADMIN)
    bot.wait_until_handled()
    assert len(bot.fake.calls_of("chat.postEphemeral")) == 1


def test_a_dead_token_answer_from_slack_stops_the_work_without_retrying(bot: BotUnderTest) -> None:
    bot.fake.refuse_next("chat.postMessage", "token_revoked")
    assert _message(bot, "1700000403.000100", "EvDEADTOKEN") == 200
    assert wait_until(lambda: storage.lifecycle.workspace_stop(bot.db, TEAM), what="stopped").reason == "token_revoked"
    assert _message(bot, "1700000403.000200", "EvAFTERDEAD") == 200
    bot.wait_until_handled()
    assert len([c for c in bot.fake.calls if c.method == "chat.postMessage"]) == 1  # the refused one only
    assert _stored_ts(bot) == ["1700000403.000100"]


def test_setup_in_a_paused_channel_resumes_it(bot: BotUnderTest) -> None:
    storage.lifecycle.pause_channel(bot.db, SUPPORT_CHANNEL, reason="channel archived", actor=USER)
    assert send_command(bot, "setup support", user=ADMIN, channel=SUPPORT_CHANNEL) == 200
    bot.fake.wait_for("response_url")
    assert storage.lifecycle.channel_pause(bot.db, SUPPORT_CHANNEL) is None


# ---- one event pipeline: the app's life goes through the durable inbox like a message


def _inbox_outcome(bot: BotUnderTest, event_id: str) -> str | None:
    found = storage_db.rows(bot.db, "SELECT outcome FROM inbox WHERE event_id = ?", (event_id,))
    return str(found[0]["outcome"]) if found and found[0]["outcome"] else None


def _handled(bot: BotUnderTest, kind: str) -> float:
    line = f'camel_events_handled_total{{kind="{kind}",outcome="done"}} '
    found = [row for row in bot.runtime.metrics.render().decode().splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def test_an_app_life_event_redelivered_is_handled_once_through_the_inbox(bot: BotUnderTest) -> None:
    for _ in range(3):  # Slack's retries carry the same event id
        assert send_event(bot, "channel_archive", "EvARCHIVEDTWICE", channel=SUPPORT_CHANNEL, user=USER) == 200
    wait_until(lambda: _inbox_outcome(bot, "EvARCHIVEDTWICE") == "done", what="archive handled from the inbox")
    assert storage.lifecycle.channel_pause(bot.db, SUPPORT_CHANNEL) is not None
    rows = storage_db.rows(bot.db, "SELECT event_id FROM inbox WHERE kind = 'channel_archive'")
    assert [r["event_id"] for r in rows] == ["EvARCHIVEDTWICE"]  # one row: the redeliveries were only acknowledged
    assert _handled(bot, "channel_archive") == 1.0
    assert "was archived" in _admin_dms(bot)[0]


def test_an_app_life_event_acknowledged_before_a_restart_is_handled_after_it(bot: BotUnderTest) -> None:
    assert bot.runtime.workers is not None
    bot.runtime.workers.stop()  # as if the process died right after acknowledging
    assert send_event(bot, "app_uninstalled", "EvUNINSTALLBEFORERESTART") == 200
    assert _inbox_outcome(bot, "EvUNINSTALLBEFORERESTART") is None  # stored, not handled yet
    assert storage.lifecycle.workspace_stop(bot.db, TEAM) is None
    bot.restart_inbox_workers()
    stop = wait_until(lambda: storage.lifecycle.workspace_stop(bot.db, TEAM), what="workspace stopped after restart")
    assert stop.reason == "app_uninstalled"
    wait_until(lambda: _inbox_outcome(bot, "EvUNINSTALLBEFORERESTART") == "done", what="inbox row finished")


def test_tokens_revoked_after_the_uninstall_still_reaches_its_handler(bot: BotUnderTest) -> None:
    assert send_event(bot, "app_uninstalled", "EvUNINSTALLFIRST") == 200
    wait_until(lambda: storage.lifecycle.workspace_stop(bot.db, TEAM), what="workspace stopped")
    # The workspace is stopped, yet its own life events are not dropped by middleware.
    assert send_event(bot, "tokens_revoked", "EvREVOKEDAFTER") == 200
    wait_until(lambda: _inbox_outcome(bot, "EvREVOKEDAFTER") == "done", what="tokens_revoked handled")
    assert storage.lifecycle.workspace_stop(bot.db, TEAM).reason == "app_uninstalled"  # the first reason is kept
    # Other events of the stopped workspace never reach the inbox.
    assert _message(bot, "1700000404.000100", "EvMESSAGEWHILESTOPPED") == 200
    assert storage_db.rows(bot.db, "SELECT * FROM inbox WHERE event_id = 'EvMESSAGEWHILESTOPPED'") == []
