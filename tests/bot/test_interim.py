"""Interim versions: right after a correction the serving head is refitted on every label, checked
by the gate and served hot, without waiting for the threshold, the debounce or a round. Real loop
(APScheduler, SQLite), the tiny BERT, real safetensors folders."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import torch

from camel.cache import text_digest

import storage
from bot.loop import LearningLoop, round as round_module, versions
from bot.loop.interim import MIN_GAP_S, InterimRefitter, InterimResult
from bot.settings import Settings
from bot.loop.registry import fallback_candidates
from tests.bot.conftest import SUPPORT_LABELS, BotUnderTest, training_texts, wait_until


def _label_all(bot: BotUnderTest, texts: list[str], labels: list[str], first_ts: int) -> list[int]:
    ids = []
    for i, (text, label) in enumerate(zip(texts, labels)):
        message_id = storage.messages.record_message(
            bot.db, workspace="T0CAMEL", channel="C0SUPPORT", ts=f"{first_ts + i}.000100", text=text
        )
        storage.corrections.add_correction(
            bot.db, message_id=message_id, task="support", label=label, source="menu", user="U0ALICE"
        )
        ids.append(message_id)
    return ids


def _loop(bot: BotUnderTest) -> LearningLoop:
    assert bot.runtime.loop is not None
    return bot.runtime.loop


def test_a_correction_serves_an_interim_version_at_once(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    texts, labels = training_texts(per_label=12)
    _label_all(bot, texts, labels, 1700001000)
    parent = bot.predictors.serving("support")
    assert parent is not None and parent.version == 1
    # As the Slack side does after storing a correction; the threshold (25 in a real team) is not waited for.
    _loop(bot).note_new_labels("support")
    wait_until(lambda: bot.predictors.version("support") == 2, timeout=120, what="interim v2 served")
    record = storage.adapters.get_adapter(bot.db, "support", 2)
    assert record is not None and record.status == "active" and record.parent_version == 1
    assert record.metrics["interim"]["parent"] == 1 and record.metrics["interim"]["blocks_of"] == 1
    assert record.metrics["gate"]["promote"] is True
    served = bot.predictors.get("support")
    old = parent.predictor.adapter
    assert served is not None and Path(record.path).is_dir()
    # Only the classifier moved: the blocks (and so the features) are the parent's.
    assert all(
        torch.equal(a, b) for a, b in zip(served.adapter.blocks.state_dict().values(), old.blocks.state_dict().values())
    )
    assert not torch.equal(served.adapter.classifier.weight, old.classifier.weight)
    bot.send_command("history")
    assert "interim: v1's classifier refitted" in bot.command_replies(1)[0]


def test_a_newer_interim_prunes_the_one_it_replaces_and_rounds_are_not_skipped(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    loop = _loop(bot)
    texts, labels = training_texts(per_label=12)
    _label_all(bot, texts, labels, 1700002000)
    first = loop.interim.refit("support")
    assert first.outcome == "promoted" and first.version == 2, first
    # A new label the head has never seen: the refit gives it a row (its messages' mean feature).
    storage.tasks.add_labels(bot.db, "support", ["brand_new"])
    _label_all(bot, [f"brand new thing {i}" for i in range(8)], ["brand_new"] * 8, 1700003000)
    second = loop.interim.refit("support")
    assert second.outcome == "promoted" and second.version == 3, second
    served = bot.predictors.get("support")
    assert served is not None and served.adapter.labels == [*SUPPORT_LABELS, "brand_new"]
    v2 = storage.adapters.get_adapter(bot.db, "support", 2)
    assert v2 is not None and not Path(v2.path).exists() and 2 in storage.retention.pruned_versions(bot.db, "support")
    # Fallback and rollback skip the pruned interim: the round's v1 stands behind v3.
    assert [v for v, _ in fallback_candidates(bot.db, "support", 3)] == [3, 1]
    # The round that follows counts labels from v1's round, not from the interim's creation.
    v1 = storage.adapters.get_adapter(bot.db, "support", 1)
    v3 = storage.adapters.get_adapter(bot.db, "support", 3)
    assert round_module.trained_until(bot.db, v3) == round_module.trained_until(bot.db, v1)
    assert versions.blocks_version(v3) == 1


def test_an_interim_of_a_head_that_stopped_serving_is_not_served(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    loop = _loop(bot)
    texts, labels = training_texts(per_label=12)
    _label_all(bot, texts, labels, 1700004000)
    assert loop.interim.refit("support").version == 2
    # What a rollback does while the next refit computes: v1 serves again.
    loop.rollback("support", 1, actor="test")
    assert bot.predictors.version("support") == 1
    again = loop.interim.refit("support")  # over v1, which serves now
    assert again.outcome == "promoted" and again.parent == 1 and bot.predictors.version("support") == again.version


def test_an_erased_texts_features_leave_the_refit_cache(bot_with_learning: BotUnderTest) -> None:
    bot = bot_with_learning
    loop = _loop(bot)
    texts, labels = training_texts(per_label=12)
    _label_all(bot, texts, labels, 1700005000)
    assert loop.interim.refit("support").outcome == "promoted"
    erased = texts[0]
    digest = text_digest(erased)
    assert any(digest in known for known in loop.interim.features._by_blocks.values())
    storage.messages.forget_message(bot.db, workspace="T0CAMEL", channel="C0SUPPORT", ts="1700005000.000100", actor="t")
    loop.forget_deleted()  # what the reload poll runs
    assert not any(digest in known for known in loop.interim.features._by_blocks.values())


class _Timed:
    """A stand-in refit (the real one needs a served adapter) that records when each ran; the
    first one holds until the test lets it go, so corrections surely arrive while it runs."""

    def __init__(self) -> None:
        self.runs: list[tuple[float, float]] = []
        self.began = threading.Event()
        self.release = threading.Event()

    def __call__(self, task: str) -> InterimResult:
        began = time.monotonic()
        self.began.set()
        self.release.wait(timeout=60)
        self.runs.append((began, time.monotonic()))
        return InterimResult(task, "skipped", "timed stand-in")


def _refitter(refit: _Timed) -> InterimRefitter:
    refitter = InterimRefitter(Settings(), None, None, threading.Lock())  # type: ignore[arg-type]
    refitter.refit = refit  # type: ignore[method-assign]
    return refitter


def test_corrections_during_a_refit_fold_into_one_more_that_rests_first() -> None:
    refit = _Timed()
    refitter = _refitter(refit)
    assert refitter.request("support") is True
    assert refit.began.wait(timeout=30)
    for _ in range(5):  # a flood of corrections while it runs
        assert refitter.request("support") is False
    time.sleep(0.3)  # the first refit takes at least this long
    refit.release.set()
    assert refitter.wait_idle(timeout=30)
    assert len(refit.runs) == 2  # the five folded into one more refit
    (first_start, first_end), (second_start, _) = refit.runs
    # The second waited at least max(its predecessor's time, MIN_GAP_S): refits take at most half a core.
    assert second_start - first_end >= max(MIN_GAP_S, first_end - first_start)


def test_stop_ends_a_refitter_resting_between_refits() -> None:
    refit = _Timed()
    refitter = _refitter(refit)
    refitter.request("support")
    assert refit.began.wait(timeout=30)
    refitter.request("support")  # folded: waits for the rest after the first
    refit.release.set()
    wait_until(lambda: len(refit.runs) == 1, timeout=30, what="first refit done")
    assert refitter.stop(timeout=30)
    assert len(refit.runs) == 1  # the one waiting was not run after stop
