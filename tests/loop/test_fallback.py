"""A broken active adapter at start or on reload -> the newest version that loads
serves, storage records it, and the one message to admins says what really serves."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest
from slack_sdk import WebClient

import camel
import storage
from bot.demo.local_slack import FakeSlackAPI
from bot.loop import versions
from bot.loop.registry import PredictorRegistry
from bot.slack.publisher import SlackPublisher
from tests.loop.conftest import TASK, WORDS, install_adapter


def _truncate_weights(folder: Path) -> None:
    weights = folder / camel.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _garble_weights(folder: Path) -> None:
    weights = folder / camel.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    weights.write_bytes(bytes(data))


def _reorder_labels(folder: Path) -> None:
    # Consistent in both files, so only the manifest can tell the adapter would serve wrong names.
    labels = json.loads((folder / camel.LABELS_FILE).read_text())
    config = json.loads((folder / camel.CONFIG_FILE).read_text())
    config["labels"] = labels[::-1]
    (folder / camel.LABELS_FILE).write_text(json.dumps(labels[::-1]))
    (folder / camel.CONFIG_FILE).write_text(json.dumps(config))


BREAKAGES: dict[str, Callable[[Path], None]] = {
    "truncated weights": _truncate_weights,
    "garbled weights": _garble_weights,
    "bad config": lambda f: (f / camel.CONFIG_FILE).write_text("{not json"),
    "empty config": lambda f: (f / camel.CONFIG_FILE).write_text(""),
    "bad labels": lambda f: (f / camel.LABELS_FILE).write_text('["refund"'),
    "reordered labels": _reorder_labels,
    "folder deleted": lambda f: shutil.rmtree(f),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> dict[int, Path]:
    """Two adapter folders trained once for the module; each test copies them in."""
    from tests.loop.conftest import make_settings

    settings = make_settings(tmp_path_factory.mktemp("fallback") / "data", tiny_bert_dir)
    db = storage.open_store(settings.db_path)
    storage.tasks.upsert_task(db, storage.TaskSpec(TASK, kind="intent", labels=["card_arrival", "feelings", "refund"]))
    folders = {v: install_adapter(settings, db, v, seed=v) for v in (1, 2)}
    db.close()
    return folders


def _install(settings, db, trained: dict[int, Path]) -> dict[int, Path]:
    """v1 and v2 registered, v2 active (v1 retired), as after a promotion."""
    folders = {}
    for version, source in trained.items():
        folder = versions.version_dir(settings.data_dir, TASK, version)
        shutil.copytree(source, folder)
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task=TASK,
                version=version,
                path=str(folder),
                parent_version=version - 1 or None,
                run_id=None,
                metrics={},
            ),
        )
        storage.adapters.activate_adapter(db, TASK, version, reason="test")
        folders[version] = folder
    return folders


def _messages(slack: FakeSlackAPI) -> list[str]:
    time.sleep(0.3)  # a second message would be posted by now
    return [str(c.params["text"]) for c in slack.calls_of("chat.postMessage")]


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_start_with_a_broken_active_version_serves_the_newest_that_loads(loop_env, new_loop, trained, breakage) -> None:
    settings, db = loop_env
    folders = _install(settings, db, trained)
    BREAKAGES[breakage](folders[2])
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    with FakeSlackAPI() as slack:
        loop = new_loop(
            settings, predictors, publisher=SlackPublisher(WebClient(token="xoxb-test", base_url=slack.url))
        )
        loop.start()
        try:
            assert predictors.version(TASK) == 1
            assert predictors.get(TASK).answer(["refund fee charged"])[0].label in WORDS
            slack.wait_for("chat.postMessage", 1)
            posted = _messages(slack)
        finally:
            loop.stop()
    assert storage.tasks.get_task(db, TASK).active_version == 1
    v2 = storage.adapters.get_adapter(db, TASK, 2)
    assert v2.status == "rejected" and v2.reason.startswith("does not load")
    assert [e.action for e in storage.events.list_audit(db)].count("adapter_fallback") == 1
    assert len(posted) == 1, posted
    assert "v2 does not load" in posted[0] and "Now serving v1" in posted[0]
    assert "keeps serving" not in posted[0]
    assert loop.reload_errors == [] or loop.reload_errors == [posted[0]]


def test_a_bad_metrics_file_alone_never_blocks_serving(loop_env, new_loop, trained) -> None:
    settings, db = loop_env
    folders = _install(settings, db, trained)
    (folders[2] / camel.METRICS_FILE).write_text("{garbage")
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    with FakeSlackAPI() as slack:
        loop = new_loop(
            settings, predictors, publisher=SlackPublisher(WebClient(token="xoxb-test", base_url=slack.url))
        )
        loop.start()
        try:
            assert predictors.version(TASK) == 2 and loop.reload_errors == []
            assert _messages(slack) == []
        finally:
            loop.stop()
    assert storage.tasks.get_task(db, TASK).active_version == 2


def test_reload_to_a_broken_version_falls_back_and_says_so_once(loop_env, new_loop, trained) -> None:
    settings, db = loop_env
    folders = _install(settings, db, trained)
    storage.adapters.activate_adapter(db, TASK, 1, reason="test: serve v1 first")
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    with FakeSlackAPI() as slack:
        loop = new_loop(
            settings, predictors, publisher=SlackPublisher(WebClient(token="xoxb-test", base_url=slack.url))
        )
        assert loop.sync() == [] and predictors.version(TASK) == 1
        _reorder_labels(folders[2])
        storage.adapters.activate_adapter(db, TASK, 2, reason="promoted by a round")
        errors = loop.sync()
        assert len(errors) == 1 and "Now serving v1" in errors[0]
        assert predictors.version(TASK) == 1 and storage.tasks.get_task(db, TASK).active_version == 1
        assert loop.sync() == []  # recorded: v2 is rejected, v1 active again
        slack.wait_for("chat.postMessage", 1)
        assert len(_messages(slack)) == 1


def test_when_no_version_loads_the_message_says_nothing_serves(loop_env, new_loop, trained) -> None:
    settings, db = loop_env
    folders = _install(settings, db, trained)
    _garble_weights(folders[2])
    shutil.rmtree(folders[1])
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    errors = loop.sync()
    assert predictors.get(TASK) is None
    assert len(errors) == 1 and "no adapter version loads" in errors[0] and "predicts nothing" in errors[0]
    assert loop.sync() == errors  # retried on the next poll, audited once
    assert [e.action for e in storage.events.list_audit(db)].count("adapter_fallback") == 1


def test_start_removes_version_folders_whose_round_never_committed(loop_env, new_loop, trained) -> None:
    settings, db = loop_env
    _install(settings, db, trained)
    orphan = versions.version_dir(settings.data_dir, TASK, 3)
    shutil.copytree(trained[2], orphan)  # published, then killed before finish_round committed
    run_id = storage.runs.start_run(db, TASK, "manual")  # never finished
    loop = new_loop(settings, PredictorRegistry(settings.model.base_model, settings.feature_cache_dir))
    notes = loop.recover()
    assert not orphan.exists() and any("v0003" in n for n in notes)
    run = storage.runs.get_run(db, run_id)
    assert run.outcome == "failed" and storage.tasks.get_task(db, TASK).active_version == 2


def _rolled_back_to_v1(settings, db, trained: dict[int, Path]) -> dict[int, Path]:
    """v1 and v2 registered, v1 active again after an admin's rollback (v2 retired)."""
    folders = _install(settings, db, trained)
    storage.adapters.activate_adapter(db, TASK, 1, reason="rollback by an admin")
    return folders


def test_start_after_a_rollback_to_a_broken_version_serves_the_nearest_later_one(loop_env, new_loop, trained) -> None:
    settings, db = loop_env
    folders = _rolled_back_to_v1(settings, db, trained)
    _garble_weights(folders[1])
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    errors = new_loop(settings, predictors).sync()
    assert predictors.version(TASK) == 2
    assert storage.tasks.get_task(db, TASK).active_version == 2
    assert storage.adapters.get_adapter(db, TASK, 1).status == "rejected"
    assert len(errors) == 1 and "v1 does not load" in errors[0]
    assert "Now serving v2, the nearest later version that loads" in errors[0]
    assert "predicts nothing" not in errors[0] and "v1 is marked rejected" in errors[0]


def test_activating_a_broken_earlier_version_while_running_keeps_the_later_one_truthfully(
    loop_env, new_loop, trained
) -> None:
    settings, db = loop_env
    folders = _install(settings, db, trained)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    assert loop.sync() == [] and predictors.version(TASK) == 2
    shutil.rmtree(folders[1])
    storage.adapters.activate_adapter(db, TASK, 1, reason="rollback by an admin")
    errors = loop.sync()
    assert len(errors) == 1 and "Now serving v2" in errors[0]
    assert "keeps serving from memory" not in errors[0] and "no adapter version loads" not in errors[0]
    assert predictors.version(TASK) == 2 and storage.tasks.get_task(db, TASK).active_version == 2
    assert loop.sync() == []


def test_the_nearest_earlier_version_wins_over_a_later_one(loop_env, new_loop, trained) -> None:
    settings, db = loop_env
    folders = _install(settings, db, trained)
    v3 = versions.version_dir(settings.data_dir, TASK, 3)
    shutil.copytree(trained[2], v3)
    storage.adapters.register_adapter(
        db, storage.NewAdapterVersion(task=TASK, version=3, path=str(v3), parent_version=2, run_id=None, metrics={})
    )
    storage.adapters.activate_adapter(db, TASK, 3, reason="promoted")
    storage.adapters.activate_adapter(db, TASK, 2, reason="rollback by an admin")
    _truncate_weights(folders[2])
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    errors = new_loop(settings, predictors).sync()
    assert predictors.version(TASK) == 1 and storage.tasks.get_task(db, TASK).active_version == 1
    assert "Now serving v1, the nearest earlier version that loads" in errors[0]


def test_rejected_and_pruned_versions_never_serve_by_fallback(loop_env, trained) -> None:
    from bot.loop.registry import fallback_candidates

    settings, db = loop_env
    _install(settings, db, trained)
    for version in (3, 4, 5, 6):
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task=TASK, version=version, path=f"/nowhere/v{version}", parent_version=2, run_id=None, metrics={}
            ),
        )
        storage.adapters.activate_adapter(db, TASK, version, reason="promoted")
    storage.adapters.activate_adapter(db, TASK, 2, reason="rollback by an admin")
    storage.adapters.set_adapter_status(db, TASK, 4, "rejected", "an admin's doubt")
    storage.retention.mark_adapter_pruned(db, TASK, 6)
    assert [v for v, _ in fallback_candidates(db, TASK, 2)] == [2, 1, 3, 5]


def test_a_version_trained_on_another_base_is_not_rejected(loop_env, new_loop, trained, tmp_path) -> None:
    from tests.loop.conftest import install_adapter, make_settings
    from tests.tiny_model import make_tiny_bert

    settings, db = loop_env
    _install(settings, db, trained)
    other = make_settings(tmp_path / "other", make_tiny_bert(tmp_path / "other-bert", seed=7))
    other_db = storage.open_store(other.db_path)
    storage.tasks.upsert_task(other_db, storage.TaskSpec(TASK, kind="intent", labels=sorted(WORDS)))
    source = install_adapter(other, other_db, 3, seed=3)
    other_db.close()
    v3 = versions.version_dir(settings.data_dir, TASK, 3)
    shutil.copytree(source, v3)
    storage.adapters.register_adapter(
        db, storage.NewAdapterVersion(task=TASK, version=3, path=str(v3), parent_version=2, run_id=None, metrics={})
    )
    storage.adapters.activate_adapter(db, TASK, 3, reason="trained elsewhere")
    # With its base's folder present, v3 would serve on its own base (a second base in memory);
    # gone, no base can serve it: the nearest version that loads serves, and v3 is not rejected.
    from camel.base import release_base

    release_base(str(tmp_path / "other-bert"))
    shutil.rmtree(tmp_path / "other-bert")
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    errors = new_loop(settings, predictors).sync()
    assert predictors.version(TASK) == 2 and storage.tasks.get_task(db, TASK).active_version == 2
    v3_record = storage.adapters.get_adapter(db, TASK, 3)
    assert v3_record.status == "retired", v3_record
    assert "whose folder is gone" in errors[0] and "is marked rejected" not in errors[0]
    assert "v3 was trained on another base model: not marked rejected" in errors[0]
