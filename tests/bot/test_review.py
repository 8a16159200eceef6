"""/camel review [n] over signed HTTP: this channel's most useful unlabelled messages
(scores computed in the background after a new version is served), answered with source "review";
labelled, other channels', deleted and purged messages never appear."""

from __future__ import annotations

import json
from pathlib import Path

import storage
from bot.loop import review_scoring
from bot.slack import blocks
from tests.bot.conftest import ADMIN, SUPPORT_CHANNEL, USER, BotUnderTest, corrections, wait_until

OTHER_CHANNEL = "C0OTHER"
TEXTS = ["refund charged twice", "where is my new card", "great love happy", "fee money failed", "card come yet"]


def _post(bot: BotUnderTest, text: str, ts: str, channel: str = SUPPORT_CHANNEL, user: str = USER) -> int:
    bot.send_message(text, ts, channel=channel, user=user)
    found = wait_until(
        lambda: storage.messages.find_message(bot.db, workspace="T0CAMEL", channel=channel, ts=ts),
        what="message stored",
    )
    wait_until(lambda: storage.messages.latest_prediction(bot.db, found.id, "support"), what="prediction stored")
    return int(found.id)


def _review(bot: BotUnderTest, text: str = "review", channel: str = SUPPORT_CHANNEL) -> dict:
    before = len(bot.fake.calls_of("response_url"))
    bot.send_command(text, channel=channel)
    answer = bot.fake.wait_for("response_url", before + 1)[before].params
    assert answer["response_type"] == "ephemeral"
    return dict(answer)


def _items(answer: dict) -> list[dict]:
    return [b for b in answer.get("blocks") or [] if b["type"] == "actions"]


def _channel_messages(bot: BotUnderTest) -> list[int]:
    storage.tasks.bind_channel(bot.db, "support", OTHER_CHANNEL)
    ids = [_post(bot, text, f"17000003{i:02d}.000100") for i, text in enumerate(TEXTS)]
    _post(bot, "SECRET other channel refund", "1700000399.000100", channel=OTHER_CHANNEL)
    return ids


def test_review_shows_this_channels_most_useful_unlabelled_messages(bot: BotUnderTest) -> None:
    ids = _channel_messages(bot)
    storage.corrections.add_correction(
        bot.db, message_id=ids[0], task="support", label="refund", source="menu", user=USER
    )
    assert review_scoring.score_task(bot.db, bot.predictors, "support") == len(TEXTS)  # 4 here + 1 elsewhere
    answer = _review(bot, "review 3")
    items = _items(answer)
    assert len(items) == 3
    shown = {blocks.message_id_from(item["block_id"]) for item in items}
    assert shown <= set(ids[1:])  # never the labelled one, never the other channel's
    body = json.dumps(answer["blocks"])
    assert "SECRET" not in body and "https://camel.fake.slack/archives/C0SUPPORT/p" in body
    first = items[0]["elements"]
    assert [e["type"] for e in first] == ["button", "button", "button", "external_select"]
    assert first[-1]["action_id"] == blocks.REVIEW_MENU
    # The other channel's review shows only its own message.
    other = _items(_review(bot, channel=OTHER_CHANNEL))
    assert len(other) == 1 and blocks.message_id_from(other[0]["block_id"]) not in ids

    # Answering goes through the correction path with source "review" ...
    chosen = blocks.message_id_from(items[0]["block_id"])
    option = {"text": {"type": "plain_text", "text": "refund"}, "value": blocks.encode_value("support", "refund")}
    bot.send_action(
        {"action_id": blocks.REVIEW_MENU, "block_id": items[0]["block_id"], "selected_option": option},
        ephemeral=True,
    )
    stored = wait_until(lambda: corrections(bot.db, source="review"), what="review correction")
    assert (stored[0]["message_id"], stored[0]["user"]) == (chosen, USER)
    assert "(review)" in bot.fake.wait_for("response_url", 3)[2].params["text"]
    # ... and the message is not asked again.
    again = {blocks.message_id_from(i["block_id"]) for i in _items(_review(bot, "review 5"))}
    assert chosen not in again and ids[0] not in again


def test_review_without_scores_bad_input_and_erased_messages(bot: BotUnderTest) -> None:
    assert "Nothing to review" in _review(bot)["text"]
    assert "takes a number" in _review(bot, "review lots")["text"]
    assert "1 to 10" in _review(bot, "review 11")["text"]
    _post(bot, "refund charged twice", "1700000500.000100", user="U0GONE")
    review_scoring.score_task(bot.db, bot.predictors, "support")
    assert len(_items(_review(bot))) == 1
    storage.privacy.erase_user(bot.db, "U0GONE", actor=ADMIN)
    assert storage.review.count_review_scores(bot.db, "support") == 0
    assert "Nothing to review" in _review(bot)["text"]


def test_permalink_is_built_from_ids_when_slack_cannot_give_it(bot: BotUnderTest) -> None:
    _post(bot, "refund charged twice", "1700000600.000100")
    review_scoring.score_task(bot.db, bot.predictors, "support")
    bot.fake.fail_next("chat.getPermalink", times=5, retry_after=0)
    body = json.dumps(_review(bot)["blocks"])
    assert "https://slack.com/archives/C0SUPPORT/p1700000600000100" in body


def test_scores_are_recomputed_in_the_background_when_a_new_version_serves(
    bot_with_learning, support_adapter_dir: Path
):
    bot = bot_with_learning
    loop = bot.runtime.loop
    assert loop.review.wait(30)
    _post(bot, "refund charged twice", "1700000700.000100")
    _post(bot, "where is my new card", "1700000701.000100")
    storage.adapters.register_adapter(
        bot.db,
        storage.NewAdapterVersion(
            task="support", version=2, path=str(support_adapter_dir), parent_version=1, run_id=None, metrics={}
        ),
    )
    storage.adapters.activate_adapter(bot.db, "support", 2, reason="test: a promotion")
    loop.sync()
    assert loop.review.wait(60)
    assert storage.review.review_scores_version(bot.db, "support") == 2
    assert storage.review.count_review_scores(bot.db, "support") == 2
