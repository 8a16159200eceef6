"""Through the real `camel-bot` entry point: every refusal is one line on
stderr and exit status 2, and nothing is created or written when a command refuses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import storage
from bot.cli import main
from tests.faults import read_only_view
from tests.storage.conftest import message
from tests.storage.test_corruption import _corrupt


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"camel-bot {command}: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def corrupt_db(db_path: Path) -> Path:
    db = storage.open_store(db_path)
    for i in range(300):
        message(db, f"ts-{i}", text=f"message number {i} " * 5, user="U_GONE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    _corrupt(db_path)
    return db_path


def test_every_data_command_refuses_a_corrupt_database_and_says_how_to_restore(
    corrupt_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("text,label\nwhere is my card,card_arrival\n")
    before = _digest(corrupt_db)
    commands = {
        "import": ["import", str(rows), "--task", "support"],
        "export": ["export", str(tmp_path / "out.csv"), "--task", "support"],
        "delete-user": ["delete-user", "U_GONE"],
        "purge": ["purge", "--older-than-days", "30"],
    }
    for name, argv in commands.items():
        assert main([*argv, "--db", str(corrupt_db)]) == 2, name
        err = _one_line_error(capsys, name)
        assert "corrupt" in err and "backup" in err, err
    assert _digest(corrupt_db) == before  # not one row written into the damaged file
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("days", ["nan", "inf", "1e10", "99999999", "-1"])
def test_purge_refuses_days_that_are_not_a_sane_number(
    db_path: Path, days: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["purge", "--older-than-days", days, "--db", str(db_path)]) == 2
    assert "older-than-days" in _one_line_error(capsys, "purge")


def test_export_under_an_existing_file_is_one_line(db_path: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(blocker / "out.csv"), "--task", "support", "--db", str(db_path)]) == 2
    _one_line_error(capsys, "export")


def test_predict_with_invalid_utf8_is_one_line(support_adapter_dir: Path, capsys) -> None:
    # A shell passes the byte 0xff as the lone surrogate \udcff (os.fsdecode).
    assert main(["predict", "--adapter", str(support_adapter_dir), "card", "card \udcff arrival"]) == 2
    assert "text argument 2 is not valid UTF-8" in _one_line_error(capsys, "predict")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--floor", "high"], "--floor must be a number from 0 to 1, got 'high'"),
        (["--floor", "1.5"], "--floor must be a number from 0 to 1"),
        (["--floor", "nan"], "--floor must be a number from 0 to 1"),
        (["--out-of-scope-label", "no_such_label"], "'no_such_label' is not one of the adapter's labels"),
        (["--db", "{db}"], "--db and --config are only used with --task"),
        (["--task", "nope", "--db", "{db}"], "nope"),
        (["--task", "support", "--db", "{missing}"], "no database at"),
    ],
)
def test_predict_with_bad_flags_is_one_line(
    support_adapter_dir: Path, db_path: Path, tmp_path: Path, flags: list[str], message: str, capsys
) -> None:
    flags = [flag.format(db=db_path, missing=tmp_path / "none.db") for flag in flags]
    assert main(["predict", "--adapter", str(support_adapter_dir), *flags, "where is my card"]) == 2
    assert message in _one_line_error(capsys, "predict")
    assert not (tmp_path / "none.db").exists()


def test_predict_with_a_task_takes_its_floor_and_flags_win(support_adapter_dir: Path, db_path: Path, capsys) -> None:
    db = storage.open_store(db_path)
    storage.tasks.upsert_task(
        db, storage.TaskSpec("support", kind="intent", labels=["card_arrival"], abstain_threshold=1.0)
    )
    db.close()
    argv = ["predict", "--adapter", str(support_adapter_dir), "--task", "support", "--db", str(db_path), "card"]
    assert main(argv) == 0
    assert "(abstains)" in capsys.readouterr().out  # the task's floor of 1.0: nothing is stated
    assert main([*argv, "--floor", "0"]) == 0
    assert "(abstains)" not in capsys.readouterr().out


def test_import_into_a_missing_database_or_task_creates_nothing(tmp_path: Path, db_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("text,label\nwhere is my card,card_arrival\n")
    missing = tmp_path / "nowhere" / "camel.db"
    assert main(["import", str(rows), "--task", "support", "--db", str(missing)]) == 2
    assert "no database at" in _one_line_error(capsys, "import")
    assert not missing.parent.exists()
    before = _digest(db_path)
    assert main(["import", str(rows), "--task", "no_such_task", "--db", str(db_path)]) == 2
    assert "no_such_task" in _one_line_error(capsys, "import")
    assert _digest(db_path) == before and not (db_path.parent / "adapters").exists()


def test_import_is_idempotent_says_what_was_new_and_refuses_an_empty_file(
    tmp_path: Path, db_path: Path, capsys
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("text,label\nwhere is my card,card_arrival\ntop me up,top_up\n")
    assert main(["import", str(rows), "--task", "support", "--db", str(db_path)]) == 0
    assert "2 new, 0 already stored" in capsys.readouterr().out
    for _ in range(2):
        assert main(["import", str(rows), "--task", "support", "--db", str(db_path)]) == 0
        assert "0 new, 2 already stored" in capsys.readouterr().out
    db = storage.open_store(db_path)
    assert db["corrections"].count == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    audits = len(storage.events.list_audit(db))
    assert main(["import", str(empty), "--task", "support", "--db", str(db_path)]) == 2
    assert "no rows" in _one_line_error(capsys, "import")
    assert len(storage.events.list_audit(db)) == audits


def test_a_read_only_data_folder_is_one_line(db_path: Path, tmp_path: Path, capsys) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("text,label\nwhere is my card,card_arrival\n")
    db = storage.open_store(db_path)
    message(db, "1", user="U_GONE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with read_only_view(db_path.parent, tmp_path / "ro") as view:
        ro_db = view / db_path.name
        for name, argv in {
            "import": ["import", str(rows), "--task", "support"],
            "delete-user": ["delete-user", "U_GONE"],
            "purge": ["purge", "--older-than-days", "0"],
        }.items():
            assert main([*argv, "--db", str(ro_db)]) == 2, name
            _one_line_error(capsys, name)


def test_delete_user_removes_the_users_states_from_the_feature_cache(
    tmp_path: Path, tiny_bert_dir: Path, capsys
) -> None:
    import camel

    data = tmp_path / "data"
    config = tmp_path / "camel-bot.toml"
    config.write_text(f'data_dir = "{data}"\nmax_predict_chars = 10\n[model]\nbase_model = "{tiny_bert_dir}"\n')
    db = storage.open_store(data / "camel.db")
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["a", "b"]))
    gone_text, kept_text = "refund charged twice please", "card come arrival"
    message(db, "1", text=gone_text, user="U_GONE")
    message(db, "2", text=kept_text, user="U_STAYS")
    db.close()
    base = camel.load_base(str(tiny_bert_dir))
    cache = camel.FeatureCache(base, str(data / "feature_cache"))
    cache.states([gone_text, gone_text[:10], kept_text], 1, 32)
    cache.flush()
    assert main(["delete-user", "U_GONE", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 messages" in out and "2 feature-cache entries" in out and "WAL checkpointed" in out
    fresh = camel.FeatureCache(base, str(data / "feature_cache"))
    keys = set(fresh._on_disk)
    assert not any(k.startswith(camel.text_digest(gone_text)) for k in keys)
    assert not any(k.startswith(camel.text_digest(gone_text[:10])) for k in keys)
    assert any(k.startswith(camel.text_digest(kept_text)) for k in keys)


def test_serve_refuses_a_corrupt_database_in_one_line(
    corrupt_db: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAMEL_BOT_DATA_DIR", str(corrupt_db.parent))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    config = tmp_path / "empty.toml"
    config.write_text("")
    before = _digest(corrupt_db)
    assert main(["serve", "--config", str(config)]) == 2
    err = _one_line_error(capsys, "serve")
    assert "corrupt" in err and "backup" in err
    assert _digest(corrupt_db) == before


def test_serve_with_tasks_configured_refuses_a_corrupt_database_without_writing_a_byte(
    corrupt_db: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real deployment names its tasks: applying them is a write, which must not reach a damaged file.
    monkeypatch.setenv("CAMEL_BOT_DATA_DIR", str(corrupt_db.parent))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    config = tmp_path / "tasks.toml"
    config.write_text(
        '[[tasks]]\nname = "support"\nkind = "intent"\nlabels = ["card_arrival", "refund"]\nchannels = ["C1"]\n'
        '[[tasks]]\nname = "mood"\nkind = "sentiment"\nlabels = ["happy", "sad"]\nchannels = ["C2"]\n'
    )
    before = _digest(corrupt_db)
    wal = corrupt_db.with_name(corrupt_db.name + "-wal")
    for _attempt in range(2):
        assert main(["serve", "--config", str(config)]) == 2
        err = _one_line_error(capsys, "serve")
        assert "corrupt" in err and "backup" in err, err
        assert _digest(corrupt_db) == before
        # The read-only check may leave an empty WAL (SQLite needs one to read); never a frame.
        assert not wal.exists() or wal.stat().st_size == 0


def test_exports_are_owner_only_whatever_the_umask(db_path: Path, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        out = tmp_path / "labels.csv"
        assert main(["export", str(out), "--task", "support", "--db", str(db_path)]) == 0
        trail = tmp_path / "trail.jsonl"
        assert main(["export", str(trail), "--corrections", "--db", str(db_path)]) == 0
    finally:
        os.umask(previous)
    assert os.stat(out).st_mode & 0o777 == 0o600 and os.stat(trail).st_mode & 0o777 == 0o600


def test_serve_on_a_read_only_data_folder_is_one_line(
    db_path: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = storage.open_store(db_path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
    config = tmp_path / "empty.toml"
    config.write_text("")
    with read_only_view(db_path.parent, tmp_path / "ro") as view:
        monkeypatch.setenv("CAMEL_BOT_DATA_DIR", str(view))
        assert main(["serve", "--config", str(config)]) == 2
        _one_line_error(capsys, "serve")
