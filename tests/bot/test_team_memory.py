"""Never the same mistake twice: a text people labelled gets their label again, stated as the
team's, from the moment the correction is stored (no round), through the one answer function
that Slack, `/camel predict` and `camel-bot predict --task` share. Real Bolt app over signed
HTTP, real SQLite, the tiny BERT serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import storage
from bot.cli import main
from bot.memory import TeamMemory, similarity, text_key
from tests.bot.conftest import SUPPORT_CHANNEL, SUPPORT_LABELS, BotUnderTest, corrections, wait_until
from tests.bot.test_abstention import prediction
from tests.bot.test_corrections import _menu_action, _predicted
from tests.bot.published import send_event


def _corrected(bot: BotUnderTest, ts: str, text: str) -> tuple[int, str]:
    """Post `text`, then correct the bot's answer by menu to a label it did not give; (message id, label)."""
    message_id, predicted, reply_ts = _predicted(bot, ts, text)
    label = next(name for name in SUPPORT_LABELS if name != predicted)
    bot.send_action(_menu_action(message_id, label), message_ts=reply_ts)
    wait_until(lambda: corrections(bot.db, source="menu", message_id=message_id), what="correction stored")
    return message_id, label


def test_a_corrected_text_gets_the_teams_label_at_once_in_every_spelling(bot: BotUnderTest) -> None:
    _message_id, label = _corrected(bot, "1700000500.000100", "where is my new card <@U0BOB>")
    variants = [
        "Where is my NEW card <@U0CAROL>",
        "  where  is my new\tcard <@U0DAVE> ",
        "ＷＨＥＲＥ is my new card <@U1>",
    ]
    for i, variant in enumerate(variants):
        ts = f"170000051{i}.000100"
        bot.send_message(variant, ts)
        answer = prediction(bot, ts)
        assert (answer.source, answer.label, answer.adapter_version) == ("memory", label, None)
    posted = bot.fake.wait_for("chat.postMessage", 1 + len(variants))[-1].params
    assert f"*{label}*: the team's label" in posted["text"] and "not my guess" in posted["text"]
    # What a restart or a hot reload starts with: the store alone (no state of this process).
    fresh = TeamMemory(bot.db).recall(storage.tasks.require_task(bot.db, "support"), [variants[0]])
    assert fresh[0] is not None and (fresh[0].label, fresh[0].how) == (label, "exact")


def test_a_disputed_text_is_answered_by_the_model(bot: BotUnderTest) -> None:
    message_id, label = _corrected(bot, "1700000520.000100", "refund charged twice fee")
    other = next(name for name in SUPPORT_LABELS if name != label)
    storage.corrections.add_correction(
        bot.db, message_id=message_id, task="support", label=other, source="command", user="U0BOB"
    )
    bot.send_message("refund charged twice fee", "1700000521.000100")
    answer = prediction(bot, "1700000521.000100")
    assert answer.source == "adapter" and answer.adapter_version == 1


def test_a_deleted_labelled_message_leaves_the_memory(bot: BotUnderTest) -> None:
    message_id, _label = _corrected(bot, "1700000530.000100", "great love happy")
    bot.send_message("great love happy", "1700000531.000100")
    assert prediction(bot, "1700000531.000100").source == "memory"
    bot.send_message("great love happy!", "1700000533.000100")  # a near-duplicate while it is labelled
    assert prediction(bot, "1700000533.000100").source == "memory"
    memory = bot.runtime.services.memory if bot.runtime.services is not None else None
    assert memory is not None and message_id in memory.indexed_messages("support")
    deleted = send_event(bot, "message_deleted", "EvMEMDEL", channel=SUPPORT_CHANNEL, deleted_ts="1700000530.000100")
    assert deleted == 200
    wait_until(lambda: storage.messages.get_message(bot.db, message_id).deleted_at, what="deleted")
    # The erasure path (bot.erasure) takes its row out of the in-memory near-duplicate index at
    # once, not at the next message's recall.
    wait_until(lambda: message_id not in memory.indexed_messages("support"), what="index row erased")
    bot.send_message("great love happy", "1700000532.000100")
    assert prediction(bot, "1700000532.000100").source == "adapter"
    bot.send_message("great love happy!", "1700000534.000100")  # the near-duplicate index forgot it too
    assert prediction(bot, "1700000534.000100").source == "adapter"


def test_predict_command_and_cli_say_the_teams_label(
    bot: BotUnderTest, support_adapter_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _message_id, label = _corrected(bot, "1700000540.000100", "card where new")
    bot.send_command("predict Card where NEW")
    assert f"*{label}*: the team's label for this same text" in bot.command_replies(1)[0]
    argv = ["predict", "--adapter", str(support_adapter_dir), "--task", "support", "--db", bot.settings.db_path]
    assert main([*argv, "--json", "card  where new", "great love happy"]) == 0
    remembered, modelled = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (remembered["source"], remembered["stated"], remembered["confidence"]) == ("memory", label, 1.0)
    assert modelled["source"] == "adapter"


def test_stats_show_memory_answers_apart_from_live_accuracy(bot: BotUnderTest) -> None:
    _message_id, label = _corrected(bot, "1700000550.000100", "where is my new card")
    bot.send_message("where is my new card", "1700000551.000100")
    assert prediction(bot, "1700000551.000100").source == "memory"
    bot.send_command("stats")
    stats = bot.command_replies(1)[0]
    assert "Team's memory: 1 of 2 answers in 7 days" in stats and "(n=1)" in stats  # live accuracy: the model's one


def test_text_key_folds_case_space_width_and_markup() -> None:
    assert text_key("Hi <@U1>,  ＣＡＲＤ\n&amp; <https://x.io|link>") == text_key("hi <@U2>, card & <https://y.io>")
    assert text_key("card") != text_key("card!")  # punctuation is the near-duplicates' business


def test_a_nearly_identical_text_gets_the_teams_label_and_a_different_one_the_models(bot: BotUnderTest) -> None:
    _message_id, label = _corrected(bot, "1700000560.000100", "where is my new card, it has not arrived")
    bot.send_message("where is my new card, it has not arived", "1700000561.000100")  # one typo
    near = prediction(bot, "1700000561.000100")
    assert (near.source, near.label) == ("memory", label) and bot.settings.memory_near_similarity <= near.confidence < 1
    assert "a nearly identical text" in bot.fake.wait_for("chat.postMessage", 2)[-1].params["text"]
    bot.send_message("refund charged twice fee", "1700000562.000100")
    assert prediction(bot, "1700000562.000100").source == "adapter"
    assert similarity(text_key("where is my new card"), text_key("refund charged twice fee")) < 0.5
