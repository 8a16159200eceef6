"""One answer path: `camel-bot predict` says what the bot says in Slack for the same adapter and
texts, and the version stored with an answer is the version whose adapter gave it, even when a
hot swap lands while it is being computed. Real Bolt app over signed HTTP, real CLI entry point."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import camel
import storage
from bot.cli import main
from tests.bot.conftest import SUPPORT_LABELS, BotUnderTest
from tests.bot.test_abstention import calibration, prediction, register_calibrated, serve_with_calibration

# Under the test bot's max_predict_chars (40), so Slack classifies them whole, as the CLI does.
TEXTS = ["refund charged twice fee", "where is my new card", "great love happy sad hate"]


def _slack_answers(bot: BotUnderTest, first_ts: int) -> list[storage.StoredPrediction]:
    stored = []
    for i, text in enumerate(TEXTS):
        ts = f"{first_ts + i}.000100"
        bot.send_message(text, ts)
        stored.append(prediction(bot, ts))
    return stored


def _cli_answers(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["predict", *argv, "--json", *TEXTS]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _same(slack: storage.StoredPrediction, cli: dict[str, Any]) -> bool:
    """The stored answer and the printed one agree (up to float noise of a differently batched pass)."""
    return (
        slack.label == cli["stated"]
        and slack.abstained == cli["abstained"]
        and slack.confidence == pytest.approx(cli["confidence"], abs=1e-4)
        and [label for label, _ in slack.top3] == [label for label, _ in cli["top3"]]
        and [p for _, p in slack.top3] == pytest.approx([p for _, p in cli["top3"]], abs=1e-4)
    )


def test_the_command_line_answers_as_slack_does(
    bot: BotUnderTest, support_adapter_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_with_calibration(bot, support_adapter_dir, tmp_path, calibration(threshold=0.65, temperature=2.0))
    serving = bot.predictors.serving("support")
    assert serving is not None
    # Declare out of scope whatever the (weak, tiny) model ranks first for the last text.
    out_of_scope = serving.predictor.answer([TEXTS[-1]])[0].label
    storage.tasks.upsert_task(
        bot.db,
        storage.TaskSpec(
            "support", kind="intent", labels=SUPPORT_LABELS, abstain_threshold=0.3, out_of_scope_label=out_of_scope
        ),
    )
    slack = _slack_answers(bot, 1700000300)
    assert slack[-1].label == out_of_scope and not slack[-1].abstained  # "not one of mine" was stated
    assert slack[0].abstained and not slack[1].abstained
    adapter = str(tmp_path / "v0002")

    from_task = _cli_answers(["--adapter", adapter, "--task", "support", "--db", bot.settings.db_path], capsys)
    # Each outcome once (the tiny model's calibrated confidences: about 0.62, 0.68 and the out-of-scope label).
    assert [answer["outcome"] for answer in from_task] == ["abstain", "label", "out_of_scope"]
    assert all(answer["threshold"] == 0.65 for answer in from_task)  # calibrated 0.65 over the task's floor 0.3
    assert all(_same(s, c) for s, c in zip(slack, from_task, strict=True)), (slack, from_task)

    from_flags = _cli_answers(["--adapter", adapter, "--floor", "0.3", "--out-of-scope-label", out_of_scope], capsys)
    assert from_flags == from_task

    # Without a task or flags: the adapter's own calibration and no out-of-scope label.
    plain = _cli_answers(["--adapter", adapter], capsys)
    assert all(a["outcome"] != "out_of_scope" and a["threshold"] == 0.65 for a in plain)


def test_the_version_stored_is_the_one_whose_adapter_answered_while_a_swap_races(
    bot: BotUnderTest, support_adapter_dir: Path, tmp_path: Path
) -> None:
    # v2 abstains on everything (threshold 1.0); v1, uncalibrated with the test task's floor 0, never does.
    register_calibrated(bot, support_adapter_dir, tmp_path, calibration(threshold=1.0))
    serving_v1 = bot.predictors.get("support")
    assert serving_v1 is not None and bot.predictors.version("support") == 1
    v1 = serving_v1.adapter
    forward = v1.forward
    swapped = threading.Event()

    def swap_to_v2() -> None:  # what the loop's reload does when a round promotes v2
        storage.adapters.activate_adapter(bot.db, "support", 2, reason="test")
        assert bot.predictors.sync(bot.db) == []

    def forward_then_swap(*args: Any, **kwargs: Any) -> Any:
        """v1's forward pass, then v2 goes live before the answer is stored (once)."""
        result = forward(*args, **kwargs)
        if not swapped.is_set():
            swapped.set()
            swapper = threading.Thread(target=swap_to_v2)
            swapper.start()
            swapper.join(60)
        return result

    v1.forward = forward_then_swap  # type: ignore[method-assign]
    try:
        bot.send_message("refund charged twice fee", "1700000400.000100")
        raced = prediction(bot, "1700000400.000100")
    finally:
        del v1.forward
    assert swapped.is_set() and bot.predictors.version("support") == 2
    assert not raced.abstained and raced.adapter_version == 1  # v1 answered, so v1 is recorded
    bot.send_message("refund charged twice fee", "1700000401.000100")
    after = prediction(bot, "1700000401.000100")
    assert after.abstained and after.adapter_version == 2
    assert camel.CALIBRATION_FILE in bot.predictors.get("support").adapter.extra_files
