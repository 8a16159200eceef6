"""The learning loop on a multilingual base (tiny XLM-RoBERTa, Unigram tokenizer) with a channel
that writes Chinese: zero-shot guesses from Chinese label descriptions before the first round,
then a real round (child process) that passes the gate, is served at once and fills the cache."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import storage
from bot.loop.registry import PredictorRegistry
from tests.loop.conftest import CHANNEL, TASK
from tests.tiny_model import ZH_INTENT_WORDS, zh_sentence


@pytest.mark.parametrize("loop_base_dir", ["tiny_xlmr_dir"], indirect=True)
def test_a_chinese_channel_is_guessed_then_learned_on_a_multilingual_base(loop_env, new_loop) -> None:
    settings, db = loop_env
    descriptions = {label: "".join(words[:3]) for label, words in ZH_INTENT_WORDS.items()}
    task = storage.tasks.upsert_task(
        db, storage.TaskSpec(TASK, kind="intent", labels=sorted(ZH_INTENT_WORDS), descriptions=descriptions)
    )
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    guess = predictors.guess(task, "卡还没到")
    assert guess is not None and len(guess.top3) == 3 and guess.label in ZH_INTENT_WORDS

    rng = random.Random(5)
    truth: list[tuple[str, str]] = []
    for label in sorted(ZH_INTENT_WORDS):
        for _ in range(20):
            text = zh_sentence(label, rng)
            ts = f"{1700000000 + len(truth)}.000100"
            mid = storage.messages.record_message(db, workspace="T1", channel=CHANNEL, ts=ts, text=text, user="U0A")
            storage.corrections.add_correction(db, message_id=mid, task=TASK, label=label, source="menu", user="U0L")
            truth.append((text, label))
    loop = new_loop(settings, predictors)
    loop.start()
    result = loop.run_round(TASK, "manual")
    assert (result.outcome, result.version) == ("promoted", 1)
    assert predictors.version(TASK) == 1 and predictors.guess(task, "卡还没到") is None
    answers = predictors.get(TASK).answer([text for text, _ in truth])
    accuracy = sum(a.label == label for a, (_, label) in zip(answers, truth)) / len(truth)
    assert accuracy > 0.8
    cached = [p for p in Path(settings.feature_cache_dir).rglob("*") if p.is_file()]
    assert cached, "the round's bottom states are kept in the feature cache"
