"""Day one: before a task's first trained adapter the bot guesses its top 3 from the label names
(and descriptions), says that it is guessing, and a guess is one click; then the adapter serves."""

from __future__ import annotations

import json

import camel
import storage
from tests.bot.published import menu_options
from bot.settings import TaskSettings
from bot.slack import blocks
from camel.zero_shot import ZeroShotClassifier
from tests.bot.conftest import (
    ADMIN,
    MOOD_CHANNEL,
    MOOD_LABELS,
    SUPPORT_LABELS,
    USER,
    BotUnderTest,
    corrections,
    wait_until,
)
from tests.bot.test_commands import _ask


def _elements(call_blocks: list[dict]) -> list[dict]:
    return [e for b in call_blocks if b["type"] == "actions" for e in b["elements"]]


def _guess_for(bot: BotUnderTest, ts: str) -> storage.StoredPrediction:
    message = wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=MOOD_CHANNEL, ts=ts),
        what="message stored",
    )
    return wait_until(lambda: storage.messages.latest_prediction(bot.db, message.id, "mood"), what="guess stored")


def test_an_untrained_task_guesses_its_top_3_and_says_so(bot: BotUnderTest) -> None:
    text = "i love this app so much"
    bot.send_message(text, "1700000100.000100", channel=MOOD_CHANNEL)
    call = bot.fake.wait_for("chat.postMessage")[0]
    assert call.params["channel"] == MOOD_CHANNEL and call.params["thread_ts"] == "1700000100.000100"
    assert "only guessing from the label names" in call.params["text"]
    stored = _guess_for(bot, "1700000100.000100")
    # The guess is the cosine top 3 against the label prototypes on the shared base, stored unclaimed.
    base = camel.load_base(bot.settings.model.base_model)
    expected = ZeroShotClassifier(base, MOOD_LABELS).predict([text])[0]
    assert [label for label, _ in stored.top3] == [label for label, _ in expected.top3]
    assert stored.label == expected.label and stored.abstained and stored.adapter_version is None
    elements = _elements(call.params["blocks"])
    guesses = [e for e in elements if e["type"] == "button"]
    assert [e["value"] for e in guesses] == [f"mood|{label}" for label, _ in expected.top3]
    assert len({e["action_id"] for e in guesses}) == 3  # Slack refuses duplicate action ids in a block
    offered = menu_options(bot, call.params["blocks"], MOOD_CHANNEL, call.response["ts"])
    guessed = [f"mood|{label}" for label, _ in expected.top3]  # the guesses first, then "New label…"
    assert offered == guessed + [f"mood|{x}" for x in MOOD_LABELS if f"mood|{x}" not in guessed] + [
        "mood|__new_label__"
    ]
    wait_until(
        lambda: storage.messages.find_prediction_by_reply(bot.db, channel=MOOD_CHANNEL, reply_ts=call.response["ts"]),
        what="reply linked",
    )
    # A guess is one click: the second guess button stores that label as the person's correction.
    second = guesses[1]
    block_id = next(b["block_id"] for b in call.params["blocks"] if b["type"] == "actions")
    bot.send_action(
        {"action_id": second["action_id"], "block_id": block_id, "value": second["value"], "type": "button"},
        channel=MOOD_CHANNEL,
        message_ts=call.response["ts"],
    )
    wait_until(lambda: corrections(bot.db, task="mood", label=expected.top3[1][0], source="menu"), what="correction")
    assert bot.predictors.guess(storage.tasks.get_task(bot.db, "support"), text) is None  # a trained adapter serves it


def test_the_prototypes_follow_the_labels_and_descriptions(bot: BotUnderTest) -> None:
    registry = bot.runtime.predictors
    assert registry.guesser is not None
    bot.send_message("what a sad day", "1700000101.000100", channel=MOOD_CHANNEL)
    bot.fake.wait_for("chat.postMessage", 1)
    assert registry.guesser.built_for("mood") == (tuple(MOOD_LABELS), (), 0)
    before = registry.guesser.classifier(storage.tasks.get_task(bot.db, "mood")).prototypes.clone()
    assert "now means" in _ask(bot, "describe negative angry or sad about it", user=ADMIN, channel=MOOD_CHANNEL)
    bot.send_message("what a sad day again", "1700000102.000100", channel=MOOD_CHANNEL)
    bot.fake.wait_for("chat.postMessage", 2)
    assert registry.guesser.built_for("mood") == (tuple(MOOD_LABELS), (("negative", "angry or sad about it"),), 0)
    after = registry.guesser.classifier(storage.tasks.get_task(bot.db, "mood")).prototypes
    assert not after[0].equal(before[0]) and after[1:].equal(before[1:])  # only the described label moved
    storage.tasks.add_labels(bot.db, "mood", ["mixed"])
    bot.send_message("so so", "1700000103.000100", channel=MOOD_CHANNEL)
    call = bot.fake.wait_for("chat.postMessage", 3)[2]
    assert "mood|mixed" in menu_options(bot, call.params["blocks"], MOOD_CHANNEL, call.response["ts"])
    assert registry.guesser.built_for("mood")[0] == (*MOOD_LABELS, "mixed")


def test_predict_command_guesses_too(bot: BotUnderTest) -> None:
    answer = _ask(bot, "predict i love it", channel=MOOD_CHANNEL)
    assert "only guessing from the label names" in answer
    assert sum(f"*{label}*" in answer for label in MOOD_LABELS) == 3


def test_a_quiet_untrained_task_stays_quiet(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir) -> None:
    from tests.bot.conftest import running_bot

    tasks = [
        TaskSettings(name="support", kind="intent", labels=SUPPORT_LABELS),
        TaskSettings(name="mood", kind="sentiment", labels=MOOD_LABELS, channels=[MOOD_CHANNEL], quiet=True),
    ]
    with running_bot(tmp_path, fake_slack, tiny_bert_dir, support_adapter_dir, tasks=tasks) as bot:
        bot.send_message("i love it", "1700000104.000100", channel=MOOD_CHANNEL)
        wait_until(
            lambda: storage.messages.find_message(
                bot.db, workspace="T0CAMEL", channel=MOOD_CHANNEL, ts="1700000104.000100"
            ),
            what="message stored",
        )
        bot.wait_until_handled()
        assert bot.fake.calls_of("chat.postMessage") == [] and bot.fake.calls_of("reactions.add") == []


def test_guess_blocks_name_the_message_and_offer_the_menu() -> None:
    built = blocks.guess_blocks(7, "mood", [("positive", 0.8), ("neutral", 0.3), ("negative", -0.1)])
    assert blocks.message_id_from(built[1]["block_id"]) == 7
    assert [e["text"]["text"] for e in built[1]["elements"][:3]] == ["positive", "neutral", "negative"]
    assert "%" not in json.dumps(built)  # similarities are not probabilities: no percentages shown
    assert USER not in json.dumps(built)


def test_background_tiers() -> None:
    from bot.loop.zero_shot import background_tier

    assert [background_tier(n) for n in (0, 49, 50, 99, 100, 399, 400, 999, 1000, 5000)] == [
        0, 0, 50, 50, 100, 200, 400, 800, 1000, 1000,
    ]  # fmt: skip


def test_guesses_centre_on_the_tasks_own_stored_messages(bot: BotUnderTest) -> None:
    registry = bot.runtime.predictors
    assert registry.guesser is not None
    for i in range(49):  # other channels' messages never count for this task
        storage.messages.record_message(
            bot.db, workspace="T0CAMEL", channel="C0OTHER", ts=f"1700001{i:03d}.000100", text="x"
        )
    for i in range(48):
        storage.messages.record_message(
            bot.db, workspace="T0CAMEL", channel=MOOD_CHANNEL, ts=f"1700002{i:03d}.000100", text=f"happy sad {i}"
        )
    bot.send_message("love it", "1700000200.000100", channel=MOOD_CHANNEL)  # the 49th: not enough yet
    bot.fake.wait_for("chat.postMessage", 1)
    assert registry.guesser.built_for("mood") == (tuple(MOOD_LABELS), (), 0)
    plain = registry.guesser.classifier(storage.tasks.get_task(bot.db, "mood"))
    assert plain.message_centre is None
    bot.send_message("hate it", "1700000201.000100", channel=MOOD_CHANNEL)  # the 50th
    bot.fake.wait_for("chat.postMessage", 2)
    assert registry.guesser.built_for("mood") == (tuple(MOOD_LABELS), (), 50)
    centred = registry.guesser.classifier(storage.tasks.get_task(bot.db, "mood"))
    assert centred.message_centre is not None and not centred.prototypes.equal(plain.prototypes)
    stored = _guess_for(bot, "1700000201.000100")
    expected = centred.predict(["hate it"])[0]
    assert [label for label, _ in stored.top3] == [label for label, _ in expected.top3]
