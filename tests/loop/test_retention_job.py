"""In the running bot: the nightly retention pass, and erased texts
leaving the serving process's feature cache."""

from __future__ import annotations

import shutil
from dataclasses import replace

import camel
import storage
from bot.loop import versions
from bot.loop.options import summary_path
from bot.loop.registry import PredictorRegistry
from bot.settings import RetentionSettings
from tests.loop.conftest import CHANNEL, TASK, install_adapter

LONG_AGO = "2020-01-01T00:00:00.000000+00:00"


def _age(db, sql: str, *params: object) -> None:
    with storage.db.transaction(db) as conn:
        conn.execute(sql, params)


def test_retention_pass_deletes_old_predictions_run_files_and_versions_and_caps_the_cache(loop_env, new_loop) -> None:
    settings, db = loop_env
    settings = replace(settings, retention=RetentionSettings(keep_versions=1, cache_max_bytes=0))
    first = install_adapter(settings, db, 1)
    for version in range(2, 5):  # v2..v4, each promoted in turn: v4 active, v3 its parent
        folder = versions.version_dir(settings.data_dir, TASK, version)
        shutil.copytree(first, folder)
        storage.adapters.register_adapter(
            db,
            storage.NewAdapterVersion(
                task=TASK, version=version, path=str(folder), parent_version=version - 1, run_id=None, metrics={}
            ),
        )
        storage.adapters.activate_adapter(db, TASK, version, reason="test")
    old = storage.messages.record_message(db, workspace="T1", channel=CHANNEL, ts="1.0", text="refund old", user="U1")
    new = storage.messages.record_message(db, workspace="T1", channel=CHANNEL, ts="2.0", text="refund new", user="U1")
    for mid in (old, new):
        storage.messages.record_prediction(
            db,
            storage.NewPrediction(
                message_id=mid, task=TASK, adapter_version=4, label="refund", confidence=0.9, top3=[], latency_ms=1.0
            ),
        )
    _age(db, "UPDATE predictions SET created_at = ? WHERE message_id = ?", LONG_AGO, old)
    _age(db, "UPDATE messages SET received_at = ? WHERE id = ?", LONG_AGO, old)
    run_id = storage.runs.start_run(db, TASK, "manual")
    storage.runs.finish_run(db, run_id, outcome="skipped")
    _age(db, "UPDATE runs SET finished_at = ? WHERE id = ?", LONG_AGO, run_id)
    files = [summary_path(settings.data_dir, run_id), summary_path(settings.data_dir, run_id).with_suffix(".log")]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")

    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    loop.sync()
    predictors.get(TASK).answer(["refund old", "card come now"])
    predictors.get(TASK).flush()
    assert predictors.cache.disk_bytes() > 0

    summary = loop.apply_retention()
    assert summary is not None
    assert summary.predictions == 1 and summary.unlabelled_texts == 1
    assert not any(path.exists() for path in files) and len(summary.run_files) == 2
    assert summary.pruned == {TASK: [1]}  # v4 active, v3 its parent, v2 the newest other one kept
    assert not first.exists() and versions.version_dir(settings.data_dir, TASK, 2).is_dir()
    assert storage.retention.pruned_versions(db, TASK) == [1]
    assert summary.cache is not None and predictors.cache.disk_bytes() == 0
    assert (
        storage.messages.get_message(db, old).text == "" and storage.messages.get_message(db, new).text == "refund new"
    )
    assert predictors.version(TASK) == 4 and predictors.get(TASK).answer(["refund"])[0].label


def test_the_retention_job_is_scheduled_when_the_loop_starts(loop_env, new_loop) -> None:
    settings, db = loop_env
    loop = new_loop(settings, PredictorRegistry(settings.model.base_model, settings.feature_cache_dir))
    loop.start()
    try:
        job = loop.triggers.scheduler.get_job("retention")
        assert job is not None and job.next_run_time is not None
        assert job.func == loop.apply_retention
    finally:
        loop.stop()


def test_the_running_bot_forgets_erased_texts_from_its_cache(loop_env, new_loop) -> None:
    settings, db = loop_env
    install_adapter(settings, db, 1)
    text = "refund charged twice fee"
    storage.messages.record_message(db, workspace="T1", channel=CHANNEL, ts="1.0", text=text, user="U_GONE")
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    loop.sync()
    predictors.get(TASK).answer([text])
    digest = camel.text_digest(text)
    assert any(key.startswith(digest) for key in predictors.cache._memory)
    loop.forget_deleted()  # nothing erased yet
    assert any(key.startswith(digest) for key in predictors.cache._memory)
    storage.privacy.erase_user(db, "U_GONE", actor="test")
    assert loop.forget_deleted() >= 1
    assert not any(key.startswith(digest) for key in predictors.cache._memory)
    assert predictors.cache.pending == 0 or not any(k.startswith(digest) for k in predictors.cache._pending)
    assert loop.forget_deleted() == 0  # up to date: the list is fetched only when it grew


def test_the_training_child_forgets_erased_texts_after_opening_the_cache(loop_env) -> None:
    from bot.loop.round import forget_deleted

    settings, db = loop_env
    text = "refund charged twice fee"
    storage.messages.record_message(db, workspace="T1", channel=CHANNEL, ts="1.0", text=text, user="U_GONE")
    base = camel.load_base(settings.model.base_model)
    writer = camel.FeatureCache(base, settings.feature_cache_dir)
    writer.states([text, "card come now"], 1, 32)
    writer.flush()  # a shard written before the erasure, not compacted yet
    storage.privacy.erase_user(db, "U_GONE", actor="test")
    child_cache = camel.FeatureCache(base, settings.feature_cache_dir)  # what the child opens
    digest = camel.text_digest(text)
    assert any(k.startswith(digest) for k in child_cache._on_disk)
    assert forget_deleted(db, child_cache) >= 1
    assert not any(k.startswith(digest) for k in child_cache._on_disk)
    from camel.cache import _shard_keys

    before = set(child_cache._shard_paths())
    child_cache.states([text, "card come later"], 1, 32)  # computed again (a stale resolution)...
    child_cache.flush()
    written = set(child_cache._shard_paths()) - before
    assert len(written) == 1
    keys = _shard_keys(written.pop())
    assert keys and not any(k.startswith(digest) for k in keys)  # ...but never stored again
