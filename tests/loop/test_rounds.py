"""Real rounds through the child process: the gate, hot reload, reports, rollback."""

from __future__ import annotations


import pytest
from slack_sdk import WebClient

import storage
from bot.errors import RollbackError
from bot.demo.local_slack import FakeSlackAPI
from bot.loop.registry import PredictorRegistry
from bot.slack.publisher import SlackPublisher
from tests.loop.conftest import CHANNEL, TASK, WORDS, label_messages, shuffled_positions


def test_gate_rejects_shuffled_labels_promotes_good_and_rollback_reloads(loop_env, new_loop) -> None:
    settings, db = loop_env
    # Imbalanced on purpose: the majority baseline is 50%, which label noise cannot beat.
    counts = {"card_arrival": 20, "feelings": 20, "refund": 40}
    stored = label_messages(db, counts, train_labels=shuffled_positions(counts, seed=3))
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    with FakeSlackAPI() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.url)
        loop = new_loop(settings, predictors, publisher=SlackPublisher(client))
        loop.start()
        try:
            shuffled = loop.run_round(TASK, "manual")
            assert (shuffled.outcome, shuffled.version) == ("rejected", 1)
            assert "does not beat the majority baseline" in storage.adapters.get_adapter(db, TASK, 1).reason
            assert storage.tasks.get_task(db, TASK).active_version is None and predictors.get(TASK) is None

            for mid, label in stored:  # the same annotator fixes every label
                storage.corrections.add_correction(
                    db, message_id=mid, task=TASK, label=label, source="menu", user="U0LABEL"
                )
            good = loop.run_round(TASK, "threshold")
            assert (good.outcome, good.version) == ("promoted", 2)
            assert predictors.version(TASK) == 2  # live right after the child exits
            assert predictors.get(TASK).answer(["refund charged twice fee"])[0].label == "refund"

            posts = slack.wait_for("chat.postMessage", 2)
            texts = [c.params["text"] for c in posts]
            assert "rejected v1" in texts[0] and "promoted v2" in texts[1]
            assert "majority baseline" in texts[0] and all(c.params["channel"] == CHANNEL for c in posts)
            slack.wait_for("files.completeUploadExternal", 2)
            assert all(body.startswith(b"\x89PNG") for body in slack.uploads.values())

            with pytest.raises(RollbackError, match="no earlier version"):
                loop.rollback(TASK, None, actor="U0ADMIN")
            rolled = loop.rollback(TASK, 1, actor="U0ADMIN")  # an admin may overrule the gate
            assert rolled.status == "active" and predictors.version(TASK) == 1
            assert storage.tasks.get_task(db, TASK).active_version == 1
            assert storage.adapters.get_adapter(db, TASK, 2).status == "retired"
            entry = storage.events.list_audit(db, limit=1)[0]
            assert (entry.action, entry.actor, entry.detail["version"]) == ("rollback", "U0ADMIN", 1)
            with pytest.raises(RollbackError, match="no adapter version 9"):
                loop.rollback(TASK, 9, actor="U0ADMIN")
        finally:
            loop.stop()


def test_round_with_too_little_data_is_skipped(loop_env, new_loop) -> None:
    settings, db = loop_env
    mid = storage.messages.record_message(db, workspace="T1", channel=CHANNEL, ts="1.1", text="refund fee")
    storage.corrections.add_correction(db, message_id=mid, task=TASK, label="refund", source="menu", user="U0LABEL")
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    run = loop.run_round(TASK, "manual")
    assert run.outcome == "skipped"
    assert "too little data" in run.error and storage.adapters.list_adapters(db, TASK) == []
    assert sorted(WORDS)  # the task keeps its configured labels


def test_a_round_fills_the_cache_with_the_engine_serving_runs(loop_env, new_loop) -> None:
    import dataclasses
    from pathlib import Path

    import camel
    from bot.loop.options import summary_path

    settings, db = loop_env
    settings = dataclasses.replace(settings, model=dataclasses.replace(settings.model, engine="ort-fp32"))
    label_messages(db, {"card_arrival": 12, "feelings": 12, "refund": 12})
    predictors = PredictorRegistry(
        settings.model.base_model,
        settings.feature_cache_dir,
        engine="ort-fp32",
        engines_dir=settings.paths.engines,
        trainable_layers=settings.model.trainable_layers,
    )
    loop = new_loop(settings, predictors)
    loop.start()
    try:
        run = loop.run_round(TASK, "manual")
    finally:
        loop.stop()
    assert predictors.engine().name == "ort-fp32"
    child_log = summary_path(settings.data_dir, run.id).with_suffix(".log").read_text()
    assert "bottom engine ort-fp32: [model] engine = ort-fp32" in child_log  # the child got --engine ort-fp32
    # The parent exported the depth serving splits at when it checked the engine; the child reused
    # it (it exports only other depths it needs, such as the full encoder for label-name priors).
    split = camel.load_base(settings.model.base_model).num_layers - settings.model.trainable_layers
    exports = [line for line in child_log.splitlines() if "exported the bottom" in line]
    assert not [line for line in exports if line.endswith(f"-split{split}.onnx")]
    assert any(p.name.endswith(f"-split{split}.onnx") for p in Path(settings.paths.engines).glob("*.onnx"))
    base = camel.load_base(settings.model.base_model)
    ort_keys = camel.FeatureCache(base, settings.feature_cache_dir, engine=predictors.engine().engine)
    fp32_keys = camel.FeatureCache(base, settings.feature_cache_dir)
    text = storage.messages.recent_texts(db, [CHANNEL], limit=1)[0]
    assert ort_keys.key(text, split, 64) in ort_keys._on_disk  # the round's states, under ort-fp32's keys
    assert fp32_keys.key(text, split, 64) not in fp32_keys._on_disk
