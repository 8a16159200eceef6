"""An answer put back into the inbox (pacing, a 429, a restart) is still given, and given as itself.

Found when the durable inbox met edits and zero-shot guesses: the retry
of an edit saw the new text already stored and stopped; the retry of a guess was posted as a
"not sure" answer with similarity scores shown as confidences.
"""

from __future__ import annotations

from pathlib import Path

from bot.demo.local_slack import FakeSlackAPI
from tests.bot.conftest import MOOD_CHANNEL, BotUnderTest, edit_event, running_bot


def test_an_edit_put_back_by_a_429_is_still_answered(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, support_adapter_dir: Path
) -> None:
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, process_edits=True) as bot:
        bot.send_message("where is my card", "1700000021.000100")
        bot.fake.wait_for("chat.postMessage")
        bot.fake.fail_next("chat.postMessage", times=1, retry_after=1)
        bot.send_event(edit_event("refund charged twice", "1700000021.000100", "1700000021.000200"))
        posts = bot.fake.wait_for("chat.postMessage", 2, timeout=30)
        assert len(posts) == 2  # the first answer, then the edit's answer after the 429


def test_a_guess_put_back_by_a_429_is_still_a_guess(bot: BotUnderTest) -> None:
    bot.fake.fail_next("chat.postMessage", times=1, retry_after=1)
    bot.send_message("i love this app so much", "1700000100.000100", channel=MOOD_CHANNEL)
    posts = bot.fake.wait_for("chat.postMessage", 1, timeout=30)
    assert "only guessing" in posts[-1].params["text"]
    assert "%" not in posts[-1].params["text"]
