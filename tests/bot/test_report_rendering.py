"""The learning loop's neutral reports as Slack gets them: Block Kit from `bot.slack.blocks`, cut to
Slack's size limits, and posted (with their charts) by `SlackPublisher` on the fake Web API."""

from __future__ import annotations

from slack_sdk import WebClient

from bot import reports
from bot.demo.local_slack import FakeSlackAPI
from bot.slack import blocks
from bot.slack.publisher import SlackPublisher

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_round_report_fits_slacks_limits() -> None:
    report = reports.RoundReport(
        title="Training round for *support*: promoted v3",
        decision="x" * 5000,
        metrics=tuple(reports.Field(f"figure {i}", "y" * 2500) for i in range(12)),
        abstention=("a" * 4000,),
        label_changes=tuple(f"`label{i}` recall" + "z" * 400 for i in range(12)),
    )
    shown = blocks.message(report)
    assert len(shown.text) == blocks.MAX_SECTION_TEXT and shown.thread_ts is None
    assert shown.blocks[0]["text"]["text"].startswith("Training round for *support*: promoted v3\n*Decision:* xx")
    assert [len(b["text"]["text"]) for b in (shown.blocks[0], shown.blocks[2], shown.blocks[3])] == [3000] * 3
    fields = shown.blocks[1]["fields"]
    assert len(fields) == 10 and {len(f["text"]) for f in fields} == {2000}
    assert fields[0]["text"].startswith("*figure 0*\nyyy") and fields[0]["type"] == "mrkdwn"
    assert shown.blocks[3]["text"]["text"].startswith("*Per-label changes*\n`label0` recall")


def test_a_report_without_figures_is_one_section() -> None:
    shown = blocks.message(reports.RoundReport(title=":warning: Training round for *t*: failed", decision="killed"))
    assert shown.text == ":warning: Training round for *t*: failed: killed"
    assert shown.blocks == [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": ":warning: Training round for *t*: failed\n*Decision:* killed"},
        }
    ]


def test_digests_and_notices_keep_their_whole_text_as_the_notification() -> None:
    for report in (reports.Digest("d" * 3500), reports.Notice("n" * 3500)):
        shown = blocks.message(report)
        assert shown.text == report.text and shown.blocks == [blocks.section(report.text[:3000])]


def test_a_question_is_asked_in_the_messages_thread() -> None:
    question = reports.Question("1700.0001", 42, "support", ("refund", "card"), (("refund", 0.5), ("card", 0.4)))
    shown = blocks.message(question)
    assert shown.thread_ts == "1700.0001"
    assert shown.blocks == blocks.ask_blocks(42, "support", [("refund", 0.5), ("card", 0.4)])


def test_the_publisher_posts_the_message_then_uploads_the_chart() -> None:
    chart = reports.Chart(PNG, "support-digest.png", "support: trend")
    with FakeSlackAPI() as slack:
        publisher = SlackPublisher(WebClient(token="xoxb-test", base_url=slack.url))
        publisher.publish("C1", reports.Notice("support v2 does not load"))
        publisher.publish("C2", reports.Digest("digest", chart))
        posts = slack.wait_for("chat.postMessage", 2)
        completed = slack.wait_for("files.completeUploadExternal", 1)
        assert [(c.params["channel"], c.params["text"]) for c in posts] == [
            ("C1", "support v2 does not load"),
            ("C2", "digest"),
        ]
        assert "thread_ts" not in posts[0].params
        assert list(slack.uploads.values()) == [PNG]  # the digest's chart; the notice has none
        assert completed[0].params["channel_id"] == "C2"
