"""`camel-bot doctor`: quick_check, writable paths, loose
permissions, the secrets file, and the disk each part of the data folder uses."""

from __future__ import annotations

import shutil
import hashlib
from pathlib import Path

import pytest

import storage
from bot.cli.checks import iter_checks
from tests.faults import read_only_view
from tests.storage.conftest import add_task, message
from tests.storage.test_corruption import _corrupt


def _data_folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    db = storage.open_store(data / "camel.db")
    add_task(db)
    for i in range(300):
        message(db, f"ts-{i}", text=f"message number {i} " * 5)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return data


def _results(data: Path, tiny_bert_dir: Path, **env: str) -> dict[str, list]:
    config = data.parent / "doctor.toml"
    config.write_text(f'[model]\nbase_model = "{tiny_bert_dir}"\n')
    found: dict[str, list] = {}
    for result in iter_checks(str(config), {"CAMEL_BOT_DATA_DIR": str(data), **env}):
        found.setdefault(result.name, []).append(result)
    return found


def test_doctor_runs_quick_check_and_says_how_to_restore(tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = _data_folder(tmp_path)
    healthy = _results(data, tiny_bert_dir)["database"][0]
    assert healthy.ok and "quick_check ok" in healthy.detail
    _corrupt(data / "camel.db")
    before = hashlib.sha256((data / "camel.db").read_bytes()).hexdigest()
    database = _results(data, tiny_bert_dir)["database"][0]
    assert not database.ok and "backup" in database.fix
    assert hashlib.sha256((data / "camel.db").read_bytes()).hexdigest() == before  # checked read-only


def test_doctor_reports_loose_permissions_and_a_readable_secrets_file(tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = _data_folder(tmp_path)
    storage.files.make_private(data)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('SLACK_BOT_TOKEN = "xoxb-x"\n')
    secrets.chmod(0o600)
    config_env = {"CAMEL_BOT_SECRETS_FILE": str(secrets)}
    found = _results(data, tiny_bert_dir, **config_env)
    assert found["permissions"][0].ok and found["secrets file"][0].ok
    data.chmod(0o755)
    (data / "camel.db").chmod(0o644)
    secrets.chmod(0o644)
    found = _results(data, tiny_bert_dir, **config_env)
    assert not found["permissions"][0].ok and "camel.db (0644)" in found["permissions"][0].detail
    assert not found["secrets file"][0].ok and "chmod 600" in found["secrets file"][0].fix


def test_doctor_shows_the_disk_each_part_uses(tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = _data_folder(tmp_path)
    use = _results(data, tiny_bert_dir)["disk use"][0]
    assert use.ok
    for part in ("database", "feature cache", "adapters", "run logs", "job store"):
        assert part in use.detail
    assert "cap 2.0 GB" in use.detail


def test_doctor_sees_a_read_only_data_folder(tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = _data_folder(tmp_path)
    with read_only_view(data, tmp_path / "ro") as view:
        writable = _results(view, tiny_bert_dir)["writable"][0]
    assert not writable.ok and "not writable" in writable.detail


@pytest.mark.parametrize("check", ["writable", "permissions", "disk use"])
def test_new_checks_pass_on_a_fresh_install_folder(tmp_path: Path, tiny_bert_dir: Path, check: str) -> None:
    results = _results(tmp_path / "not-created-yet", tiny_bert_dir)
    assert all(r.ok for r in results[check]), [r.line() for r in results[check]]


def test_doctor_says_which_engine_runs_the_bottom_and_why(tmp_path: Path, tiny_bert_dir: Path) -> None:
    data = _data_folder(tmp_path)
    config = data.parent / "doctor.toml"
    config.write_text(f'[model]\nbase_model = "{tiny_bert_dir}"\nengine = "ort-fp32"\n')
    (engine,) = [r for r in iter_checks(str(config), {"CAMEL_BOT_DATA_DIR": str(data)}) if r.name == "engine"]
    assert engine.ok and engine.detail.startswith("ort-fp32: [model] engine = ort-fp32")
    assert "agrees with torch-fp32" in engine.detail
    assert list((data / "engines").glob("*.onnx"))  # the export serve will load
    # An engine asked for that cannot run here is a problem doctor names, with the reason.
    shutil.rmtree(data / "engines")
    (data / "engines").write_text("a file where the exports folder should be")
    (engine,) = [r for r in iter_checks(str(config), {"CAMEL_BOT_DATA_DIR": str(data)}) if r.name == "engine"]
    assert not engine.ok and engine.detail.startswith("torch-fp32") and "skipped ort-fp32" in engine.detail
    assert "cannot use engine folder" in engine.detail and "[model] engine" in engine.fix
    # The command the fix names is built like every other suggestion (tests/bot/test_doctor_suggestions.py).
    assert [c.text for c in engine.commands] == [f"camel-bot serve --config {config}"]
    assert engine.commands[0].text in engine.fix


def _chinese_channel(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    db = storage.open_store(data / "camel.db")
    add_task(db)
    # Markup is not writing: the mention, link and emoji code are not read.
    message(db, "ts-1", text="<@U024BE7LH> 我的卡还没到 <https://example.com/track|跟踪> :smile:")
    message(db, "ts-2", text="退款失败了吗")
    db.close()
    return data


def test_doctor_says_when_the_base_cannot_read_a_channel(tmp_path: Path, tiny_bert_dir: Path) -> None:
    found = _results(_chinese_channel(tmp_path), tiny_bert_dir)["reading"]
    assert len(found) == 1 and not found[0].ok
    expected = "task support, channel C1: 100% of 12 characters unknown to the base (Han 100%; 2 messages)"
    assert expected in found[0].detail
    assert "[model] unknown_chars_alert" in found[0].fix and "[model] base_model" in found[0].fix
    assert "README.md#teams-writing-other-languages" in found[0].fix


def test_doctor_reading_is_fine_with_a_base_that_reads_the_channel(tmp_path: Path, tiny_xlmr_dir: Path) -> None:
    found = _results(_chinese_channel(tmp_path), tiny_xlmr_dir)["reading"]
    assert len(found) == 1 and found[0].ok, found[0].line()
    assert "(alert above 10%)" in found[0].detail


def _data_with_an_adapter(tmp_path: Path, base_dir: Path) -> Path:
    """A data folder whose task's active v1 was trained on `base_dir`."""
    from tests.bot.conftest import SUPPORT_LABELS, training_texts

    import camel

    data = tmp_path / "data"
    db = storage.open_store(data / "camel.db")
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=SUPPORT_LABELS, channels=["C1"]))
    texts, labels = training_texts()
    config = camel.CamelConfig(base_model=str(base_dir), trainable_layers=1, bottleneck=8)
    adapter = camel.train(texts, labels, config=config, args=camel.TrainingArgs(max_epochs=1, num_threads=1)).adapter
    folder = data / "adapters" / "support" / "v0001"
    camel.save_adapter(adapter, str(folder))
    storage.adapters.register_adapter(
        db,
        storage.NewAdapterVersion(
            task="support", version=1, path=str(folder), parent_version=None, run_id=None, metrics={}
        ),
    )
    storage.adapters.activate_adapter(db, "support", 1, reason="test")
    db.close()
    return data


def test_doctor_says_what_a_base_change_will_do(tmp_path: Path, tiny_bert_dir: Path, tiny_xlmr_dir: Path) -> None:
    data = _data_with_an_adapter(tmp_path, tiny_bert_dir)
    same = _results(data, tiny_bert_dir)["adapter support"][0]
    assert same.ok and "v1 loads" in same.detail
    changed = _results(data, tiny_xlmr_dir)["adapter support"][0]
    assert changed.ok, changed.line()  # not a broken adapter
    assert f"base change: v1 was trained on {tiny_bert_dir.name} (" in changed.detail
    assert "keeps serving on its own base (a second base model in memory)" in changed.detail
    assert "The next round trains afresh from all 0 labels" in changed.detail and "compaction" in changed.detail


def test_doctor_says_a_task_whose_old_base_is_gone_will_answer_zero_shot(
    tmp_path: Path, tiny_bert_dir: Path, tiny_xlmr_dir: Path
) -> None:
    import shutil

    import camel

    old_base = shutil.copytree(tiny_bert_dir, tmp_path / "old-base")
    data = _data_with_an_adapter(tmp_path, old_base)
    camel.base.release_base(str(old_base))
    shutil.rmtree(old_base)
    changed = _results(data, tiny_xlmr_dir)["adapter support"][0]
    assert changed.ok, changed.line()
    assert "base change: v1 was trained on old-base (" in changed.detail
    assert "that base's folder is gone, so the task answers with zero-shot guesses on the new base" in changed.detail


def test_after_the_cap_is_applied_doctor_finds_the_feature_cache_within_it(tmp_path: Path, tiny_bert_dir: Path) -> None:
    """The nightly job compacts the cache to [retention] cache_max_bytes; doctor then counts the
    folder's bytes and must find it within the cap (headers counted, it was 12% over with the tiny model)."""
    import camel

    data = _data_folder(tmp_path)
    cache = camel.FeatureCache(camel.load_base(str(tiny_bert_dir)), str(data / "feature_cache"))
    texts = [f"card {i}" for i in range(400)]  # short texts: the headers weigh most against the states
    for start in range(0, len(texts), 100):
        cache.states(texts[start : start + 100], 2, 16)
        cache.flush()
    cap = cache.disk_bytes() // 2
    cache.compact(max_bytes=cap)
    assert 0 < cache.disk_bytes() <= cap
    config = data.parent / "doctor.toml"
    found: dict[str, list] = {}
    config.write_text(f'[model]\nbase_model = "{tiny_bert_dir}"\n[retention]\ncache_max_bytes = {cap}\n')
    for result in iter_checks(str(config), {"CAMEL_BOT_DATA_DIR": str(data)}):
        found.setdefault(result.name, []).append(result)
    use = found["disk use"][0]
    assert use.ok, use.line()
