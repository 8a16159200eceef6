"""/camel labels add|rename|merge|retire|unretire: admins only, a preview with Confirm/Cancel,
applied as previewed (audited), the serving model follows at once, /camel history shows it."""

from __future__ import annotations

from typing import Any

import storage
from bot.slack import blocks
from tests.bot.conftest import ADMIN, SUPPORT_LABELS, USER, BotUnderTest
from tests.bot.test_commands import _ask, _stored_message


def _preview(bot: BotUnderTest, text: str) -> dict[str, Any]:
    before = len(bot.fake.calls_of("response_url"))
    status, _ = bot.send_command(text, user=ADMIN)
    assert status == 200
    return dict(bot.fake.wait_for("response_url", before + 1)[before].params)


def _click(bot: BotUnderTest, preview: dict[str, Any], action_id: str, user: str = ADMIN) -> str:
    button = next(e for e in preview["blocks"][1]["elements"] if e["action_id"] == action_id)
    before = len(bot.fake.calls_of("response_url"))
    bot.send_action(
        {"action_id": action_id, "block_id": "camel_label_change", "value": button["value"]},
        user=user,
        ephemeral=True,
    )
    return str(bot.fake.wait_for("response_url", before + 1)[before].params["text"])


def test_rename_previews_what_moves_and_confirm_applies_it(bot: BotUnderTest) -> None:
    old = SUPPORT_LABELS[0]
    for i in range(3):
        message_id = _stored_message(bot, f"17000004{i:02d}.000100")
        storage.corrections.add_correction(
            bot.db, message_id=message_id, task="support", label=old, source="menu", user=USER
        )
    preview = _preview(bot, f"labels rename {old} card_delivery")
    assert "3 messages and 3 corrections move to `card_delivery`" in preview["text"]
    assert storage.tasks.get_task(bot.db, "support").labels[0] == old  # nothing changed yet
    done = _click(bot, preview, blocks.LABEL_CHANGE_CONFIRM)
    assert "renamed" in done and "card_delivery" in done
    assert storage.tasks.get_task(bot.db, "support").labels[0] == "card_delivery"
    assert storage.events.list_audit(bot.db)[0].action == "label_rename"
    serving = bot.runtime.predictors.serving("support")
    assert serving is not None and "card_delivery" in serving.predictor.label_plan().labels
    assert old not in serving.predictor.label_plan().labels
    history = _ask(bot, "history")
    assert f"`{old}` renamed to `card_delivery` by <@{ADMIN}>" in history
    # confirming the same preview again is refused: it is out of date
    assert "preview the change again" in _click(bot, preview, blocks.LABEL_CHANGE_CONFIRM)


def test_cancel_changes_nothing_and_members_cannot_change_labels(bot: BotUnderTest) -> None:
    preview = _preview(bot, f"labels retire {SUPPORT_LABELS[1]}")
    assert "stops predicting it" in preview["text"]
    assert "Cancelled" in _click(bot, preview, blocks.LABEL_CHANGE_CANCEL)
    assert "only" in _click(bot, preview, blocks.LABEL_CHANGE_CONFIRM, user=USER).lower()
    assert storage.labels.history(bot.db, "support") == []
    assert "admin" in _ask(bot, f"labels retire {SUPPORT_LABELS[1]}").lower()


def test_merge_into_a_retired_label_is_refused_with_the_reason(bot: BotUnderTest) -> None:
    retire = _preview(bot, f"labels retire {SUPPORT_LABELS[1]}")
    _click(bot, retire, blocks.LABEL_CHANGE_CONFIRM)
    answer = _ask(bot, f"labels merge {SUPPORT_LABELS[0]} {SUPPORT_LABELS[1]}", user=ADMIN)
    assert "retired: bring it back before merging" in answer
    assert "unretire" in _ask(bot, "labels frobnicate x", user=ADMIN)
    assert (
        f"Retired (never predicted; `/camel labels unretire <label>` brings one back): `{SUPPORT_LABELS[1]}`"
        in _ask(bot, "labels")
    )


def test_add_with_a_description_is_served_at_once(bot: BotUnderTest) -> None:
    preview = _preview(bot, "labels add crypto_withdrawal sending coins out of the account")
    assert "(sending coins out of the account)" in preview["text"]
    _click(bot, preview, blocks.LABEL_CHANGE_CONFIRM)
    task = storage.tasks.get_task(bot.db, "support")
    assert task.descriptions["crypto_withdrawal"] == "sending coins out of the account"
    assert "failed" not in _ask(bot, "predict sending coins out of the account")  # answered with today's labels
    serving = bot.runtime.predictors.serving("support")
    assert serving is not None and serving.predictor.label_plan().labels[-1] == "crypto_withdrawal"
