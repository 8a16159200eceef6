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
