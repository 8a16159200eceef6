"""Messages that arrive while a forward pass runs share the next one, through the path the bot takes.

The bot's inbox workers each answer one message (`channel_messages.answer`), which hands its text
to the services' batcher with the serving `camel.Predictor.answer`. Here the real bot (tiny BERT,
trained adapter) gets six signed messages; the first pass is held until the other five wait on
the batcher, so they must go out as one pass of five, and every message is still answered with
its own label.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import storage
from tests.bot.conftest import SUPPORT_CHANNEL, TEAM, BotUnderTest, wait_until

TEXTS = [
    "where is my new card",
    "refund charged twice",
    "i hate this awful fee",
    "when will my card come",
    "money failed pending refund",
    "great love happy",
]


def _queued(bot: BotUnderTest) -> int:
    """Texts waiting on the batcher for the next pass (each stands for an inbox worker that waits)."""
    assert bot.runtime.services is not None
    batcher = bot.runtime.services.batcher
    with batcher._lock:
        return sum(len(r.texts) for r in batcher._open.values())


def test_messages_arriving_during_a_pass_share_the_next_one(bot: BotUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = bot.predictors.get("support")
    assert predictor is not None
    alone = {text: answer.stated for text, answer in zip(TEXTS, predictor.answer(TEXTS, floor=0.0))}
    real_answer = predictor.answer
    passes: list[list[str]] = []
    first_started, go = threading.Event(), threading.Event()

    def held_answer(texts: list[str], **options: Any) -> Any:
        passes.append(list(texts))
        if len(passes) == 1:
            first_started.set()
            assert go.wait(120), "the test never let the first pass go"
        return real_answer(texts, **options)

    monkeypatch.setattr(predictor, "answer", held_answer)
    bot.send_message(TEXTS[0], "1700000300.000001")
    assert first_started.wait(120), "the first message never reached a forward pass"
    for number, text in enumerate(TEXTS[1:], start=2):
        bot.send_message(text, f"1700000300.00000{number}")
    wait_until(lambda: _queued(bot) == len(TEXTS) - 1, timeout=120, what="five texts waiting for the next pass")
    go.set()
    bot.fake.wait_for("chat.postMessage", len(TEXTS), timeout=120)

    assert passes[0] == [TEXTS[0]] and sorted(passes[1]) == sorted(TEXTS[1:]) and len(passes) == 2
    for number, text in enumerate(TEXTS, start=1):
        message = storage.messages.find_message(
            bot.db, workspace=TEAM, channel=SUPPORT_CHANNEL, ts=f"1700000300.00000{number}"
        )
        assert message is not None
        prediction = storage.messages.latest_prediction(bot.db, message.id, "support")
        assert prediction is not None and prediction.label == alone[text], text  # its own answer, not a neighbour's
