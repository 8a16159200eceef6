"""Predictions of concurrent messages are batched into one forward pass (cheaper per message than one pass each)."""

from __future__ import annotations

import threading
from bot.slack.batching import PredictionBatcher


class CountingPredictor:
    """A stand-in for one batched call (camel.Predictor.answer in the bot), holding the first call until told to go."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.first_started = threading.Event()
        self.go = threading.Event()

    def answer(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        if len(self.calls) == 1:
            self.first_started.set()
            self.go.wait(30)
        return [t.upper() for t in texts]


def test_texts_arriving_during_a_pass_share_the_next_one() -> None:
    batcher = PredictionBatcher()
    predictor = CountingPredictor()
    results: dict[str, str] = {}

    def ask(text: str) -> None:
        results[text] = batcher.run((id(predictor),), text, predictor.answer)

    first = threading.Thread(target=ask, args=("a",))
    first.start()
    assert predictor.first_started.wait(30)
    others = [threading.Thread(target=ask, args=(t,)) for t in "bcdef"]
    for thread in others:
        thread.start()
    while sum(len(r.texts) for r in batcher._open.values()) < 5:
        threading.Event().wait(0.01)
    predictor.go.set()
    for thread in [first, *others]:
        thread.join(30)
    assert results == {t: t.upper() for t in "abcdef"}  # each caller gets its own answer
    assert predictor.calls[0] == ["a"] and sorted(predictor.calls[1]) == list("bcdef")  # one pass for five
