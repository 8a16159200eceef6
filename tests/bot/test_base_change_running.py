"""The real bot started after `[model] base_model` changed to a multilingual base (the tiny
XLM-RoBERTa): the trained task keeps answering with its adapter on the base it was trained on,
the untrained task guesses a Chinese message on the new base, and /camel history names each base."""

from __future__ import annotations

from pathlib import Path

import camel
import storage
from bot.demo.local_slack import FakeSlackAPI
from tests.bot.conftest import MOOD_CHANNEL, SUPPORT_CHANNEL, SUPPORT_LABELS, running_bot, wait_until


def _prediction(bot, channel: str, ts: str, task: str) -> storage.StoredPrediction:
    message = wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=channel, ts=ts),
        what="message stored",
    )
    return wait_until(lambda: storage.messages.latest_prediction(bot.db, message.id, task), what="prediction stored")


def test_a_started_bot_serves_both_bases_while_the_task_migrates(
    tmp_path: Path, fake_slack: FakeSlackAPI, tiny_bert_dir: Path, tiny_xlmr_dir: Path, support_adapter_dir: Path
) -> None:
    with running_bot(tmp_path, fake_slack, tiny_xlmr_dir, support_adapter_dir) as bot:
        served = bot.predictors.get("support")
        assert served is not None and served.adapter.base.path == str(tiny_bert_dir.resolve())
        assert bot.predictors.base().path == str(tiny_xlmr_dir.resolve())

        bot.send_message("where is my new card", "1700000700.000100")
        answer = _prediction(bot, SUPPORT_CHANNEL, "1700000700.000100", "support")
        assert answer.adapter_version == 1 and answer.label in SUPPORT_LABELS

        bot.send_message("我今天很开心，谢谢", "1700000701.000100", channel=MOOD_CHANNEL)
        guess = _prediction(bot, MOOD_CHANNEL, "1700000701.000100", "mood")
        assert guess.adapter_version is None and len(guess.top3) == 3  # zero-shot on the new base
        posts = bot.fake.wait_for("chat.postMessage", 2)
        assert any(p.params["channel"] == MOOD_CHANNEL and "only guessing" in p.params["text"] for p in posts)

        bot.send_command("history")
        history = str(bot.fake.wait_for("response_url", 1)[0].params["text"])
        fingerprint = camel.load_base(str(tiny_bert_dir)).fingerprint
        assert "v1 *active* " in history and f"base {tiny_bert_dir.name} ({fingerprint[:12]})" in history
