"""Changing `[model] base_model` under a running deployment: the old adapter keeps serving on its
own base until a round on the new base passes the gate (which trains afresh from all labels); a
failing candidate leaves it serving until an admin accepts one; zero-shot on the new base when
the old base's folder is gone; the old base's cache states are dropped once no task uses it; an
adapter of another base is never marked rejected."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from slack_sdk import WebClient

import camel
import storage
from bot.demo.local_slack import FakeSlackAPI
from bot.loop.registry import PredictorRegistry
from bot.slack.publisher import SlackPublisher
from camel.cache import _base_tag_of
from tests.loop.conftest import CHANNEL, TASK, WORDS, install_adapter, label_messages, make_settings, shuffled_positions


def _switch(loop_env, new_base: Path):
    """The same data folder and database, with `[model] base_model` set to another folder."""
    settings, db = loop_env
    return make_settings(Path(settings.data_dir), new_base), db


def _tags_on_disk(settings) -> set[str | None]:
    from safetensors import safe_open

    tags = set()
    for shard in Path(settings.feature_cache_dir).glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as opened:
            tags |= {_base_tag_of(key) for key in opened.keys()}
    return tags


def test_the_old_adapter_serves_on_its_base_until_a_round_on_the_new_base_passes(
    loop_env, new_loop, tiny_bert_dir: Path, tiny_xlmr_dir: Path
) -> None:
    old_settings, db = loop_env
    install_adapter(old_settings, db, 1)
    old_fp, new_fp = camel.load_base(str(tiny_bert_dir)).fingerprint, camel.load_base(str(tiny_xlmr_dir)).fingerprint
    settings, db = _switch(loop_env, tiny_xlmr_dir)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    assert loop.sync() == []
    assert predictors.version(TASK) == 1 and predictors.get(TASK).adapter.base.fingerprint == old_fp
    assert len(predictors.bases.others()) == 1  # the registry holds two bases while the task migrates
    predictors.get(TASK).answer(["refund charged twice", "card come when"])
    predictors.get(TASK).flush()  # the old base's states reach the disk, as serving does
    assert camel.base_tag(old_fp) in _tags_on_disk(settings)

    stored = label_messages(db, 20)
    loop.start()
    result = loop.run_round(TASK, "manual")
    run = storage.runs.last_run(db, TASK)
    assert run.n_new == run.n_train == len([1 for _ in stored]) - run.n_heldout  # afresh, from every label
    assert (result.outcome, result.version) == ("promoted", 2), result.reason
    assert predictors.version(TASK) == 2 and predictors.get(TASK).adapter.base.fingerprint == new_fp
    assert predictors.bases.others() == []  # no task uses the old base: released
    assert storage.adapters.get_adapter(db, TASK, 1).status == "retired"  # replaced, never rejected

    loop.apply_retention()
    assert _tags_on_disk(settings) == {camel.base_tag(new_fp)}  # the old base's states are gone


def test_a_failing_candidate_leaves_the_old_adapter_serving_until_an_admin_accepts_it(
    loop_env, new_loop, tiny_bert_dir: Path, tiny_xlmr_dir: Path
) -> None:
    old_settings, db = loop_env
    install_adapter(old_settings, db, 1)
    settings, db = _switch(loop_env, tiny_xlmr_dir)
    counts = {"card_arrival": 20, "feelings": 20, "refund": 40}
    label_messages(db, counts, train_labels=shuffled_positions(counts, seed=3))  # noise: cannot pass the gate
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    with FakeSlackAPI() as slack:
        loop = new_loop(settings, predictors, publisher=SlackPublisher(WebClient(token="xoxb-t", base_url=slack.url)))
        loop.start()
        result = loop.run_round(TASK, "manual")
        assert (result.outcome, result.version) == ("rejected", 2), result.error
        reason = storage.adapters.get_adapter(db, TASK, 2).reason
        assert "v1 (trained on the previous base tiny-bert0" in reason and "/camel rollback 2" in reason
        assert predictors.version(TASK) == 1  # the old adapter keeps serving on its own base
        told = slack.wait_for("chat.postMessage", 1)[0].params
        assert told["channel"] == CHANNEL and "rejected v2" in told["text"] and "keeps serving" in told["text"]
        accepted = loop.rollback(TASK, 2, actor="U0ADMIN")  # the admin accepts the candidate
        assert accepted.status == "active" and predictors.version(TASK) == 2
        assert predictors.get(TASK).adapter.base.path == str(tiny_xlmr_dir.resolve())
        assert storage.adapters.get_adapter(db, TASK, 1).status == "retired"


def test_a_task_whose_old_base_is_gone_answers_zero_shot_on_the_new_base(
    loop_env, new_loop, tiny_bert_dir: Path, tiny_xlmr_dir: Path, tmp_path: Path
) -> None:
    _settings, db = loop_env
    old_base = shutil.copytree(tiny_bert_dir, tmp_path / "old-base")
    install_adapter(make_settings(Path(_settings.data_dir), old_base), db, 1)
    camel.base.release_base(str(old_base))
    shutil.rmtree(old_base)
    settings, db = _switch(loop_env, tiny_xlmr_dir)
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    [notice] = loop.sync()
    assert "v1 was trained on base model old-base" in notice and "whose folder is gone" in notice
    assert predictors.version(TASK) is None
    guess = predictors.guess(storage.tasks.get_task(db, TASK), "refund charged twice")
    assert guess is not None and len(guess.top3) == 3  # never without answers
    assert loop.sync() == []  # said once; not retried on every poll
    record = storage.adapters.get_adapter(db, TASK, 1)
    assert (record.status, record.reason) == ("active", "installed by the test")  # not broken: never rejected
    assert not [e for e in storage.events.list_audit(db) if e.action == "adapter_fallback"]


def _bad_base(kind: str, folder: Path) -> Path:
    if kind == "wrong folder":
        return folder / "does-not-exist"
    folder.mkdir()
    if kind == "pickle-only weights":
        (folder / "config.json").write_text('{"model_type": "bert"}')
        (folder / "pytorch_model.bin").write_bytes(b"a pickle is never loaded")
    else:
        (folder / "config.json").write_text('{"model_type": "gpt2"}')
        (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("wrong folder", "base model folder not found"),
        ("pickle-only weights", "has no model.safetensors (only safetensors weights are loaded)"),
        ("unsupported architecture", "is not a supported encoder (model_type 'gpt2'"),
    ],
)
def test_a_base_that_does_not_load_leaves_the_previous_base_serving(
    loop_env, new_loop, tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str, said: str
) -> None:
    old_settings, db = loop_env
    install_adapter(old_settings, db, 1)
    settings, db = _switch(loop_env, _bad_base(kind, tmp_path / "bad-base"))
    predictors = PredictorRegistry(settings.model.base_model, settings.feature_cache_dir)
    loop = new_loop(settings, predictors)
    with caplog.at_level(logging.ERROR):
        assert loop.sync() == []
        assert predictors.bases.current_or_none() is None and predictors.bases.current_or_none() is None
    assert predictors.version(TASK) == 1
    assert predictors.get(TASK).answer(["refund charged twice"])[0].label in WORDS
    lines = [r.getMessage() for r in caplog.records if "base model does not load" in r.getMessage()]
    assert len(lines) == 1 and said in lines[0] and "keep serving on the base their adapter was trained on" in lines[0]
    assert storage.adapters.get_adapter(db, TASK, 1).status == "active"
