"""`camel-bot import/export/delete-user/purge` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

import storage
from bot.cli import main
from tests.storage.conftest import message


def test_import_then_export_through_the_cli(db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.csv"
    source.write_text('text,label\n"card, where?",card_arrival\n"two\nlines",top_up\n', encoding="utf-8")
    assert main(["import", str(source), "--task", "support", "--db", str(db_path)]) == 0
    assert "imported 2 labelled rows" in capsys.readouterr().out
    out = tmp_path / "out.csv"
    assert main(["export", str(out), "--task", "support", "--db", str(db_path)]) == 0
    assert (
        out.read_bytes().decode("utf-8")
        == 'text,label,task\r\n"card, where?",card_arrival,support\r\n"two\nlines",top_up,support\r\n'
    )
    trail = tmp_path / "trail.jsonl"
    assert main(["export", str(trail), "--corrections", "--db", str(db_path)]) == 0
    assert len(trail.read_text().splitlines()) == 2
    assert storage.events.list_audit(storage.open_store(db_path))[0].action == "import"


def test_cli_errors_are_one_line_and_exit_2(db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,unknown\n")
    assert main(["import", str(bad), "--task", "support", "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("camel-bot import: error: ") and "line 2: label 'unknown'" in err
    assert err.count("\n") == 1
    assert main(["export", str(tmp_path / "x.csv"), "--task", "support", "--db", str(tmp_path / "none.db")]) == 2
    assert "no database at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["export", str(tmp_path / "x.csv"), "--db", str(db_path)])
    assert usage.value.code == 2


def test_delete_user_and_purge_through_the_cli(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = storage.open_store(db_path)
    message(db, "1", user="U_GONE")
    db.close()
    assert main(["delete-user", "U_GONE", "--db", str(db_path)]) == 0
    assert "U_GONE's data: 1 messages" in capsys.readouterr().out
    assert main(["purge", "--older-than-days", "30", "--db", str(db_path)]) == 0
    assert "older than 30 days: 0 messages" in capsys.readouterr().out
    actions = [e.action for e in storage.events.list_audit(storage.open_store(db_path))]
    assert actions == ["purge_unlabelled_text", "delete_user_data"]
