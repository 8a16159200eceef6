"""Import is idempotent on (task, text, label), says what was new, refuses empty files, and audits
in its own transaction, so a rerun after a failure adds nothing twice."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlite_utils

import storage


def _write(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def _corrections(db: sqlite_utils.Database) -> int:
    return int(db.execute("SELECT COUNT(*) FROM corrections").fetchone()[0])


def test_importing_the_same_file_three_times_adds_its_rows_once(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _write(tmp_path / "two.csv", "text,label\nmy card,card_arrival\ntop me up,top_up\n")
    reports = [storage.transfer.import_file(db, path, task="support") for _ in range(3)]
    assert [(r.rows, r.new) for r in reports] == [(2, 2), (2, 0), (2, 0)]
    assert _corrections(db) == 2
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2


def test_a_second_import_is_not_counted_as_new_labels(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _write(tmp_path / "two.csv", "text,label\nmy card,card_arrival\ntop me up,top_up\n")
    storage.transfer.import_file(db, path, task="support")
    after_first = datetime.now(timezone.utc)
    storage.transfer.import_file(db, path, task="support")
    assert storage.resolution.count_new_labels_since(db, "support", after_first) == 0


def test_the_same_rows_in_another_file_and_order_are_the_same_rows(db: sqlite_utils.Database, tmp_path: Path) -> None:
    storage.transfer.import_file(
        db, _write(tmp_path / "a.csv", "text,label\nmy card,card_arrival\ntop me up,top_up\n"), task="support"
    )
    other = _write(
        tmp_path / "b.jsonl",
        '{"text": "top me up", "label": "top_up"}\n'
        '{"text": "my card", "label": "card_arrival"}\n{"text": "my card", "label": "top_up"}\n'
        '{"text": "lost it", "label": "lost_or_stolen_card"}\n{"text": "lost it", "label": "lost_or_stolen_card"}\n',
    )
    report = storage.transfer.import_file(db, other, task="support")
    assert (report.rows, report.new, report.duplicates) == (5, 2, 3)  # a new label for "my card", and "lost it" once
    assert _corrections(db) == 4
    # "my card" stays one message with two labels (a dispute to resolve), not two messages.
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 3


def test_rows_imported_by_an_older_camel_bot_count_as_already_there(db: sqlite_utils.Database, tmp_path: Path) -> None:
    mid = storage.messages.record_message(
        db, workspace="import", channel="old.csv", ts="0000002-abcdef", text="my card"
    )
    storage.corrections.add_correction(
        db, message_id=mid, task="support", label="card_arrival", source="import", user="import"
    )
    report = storage.transfer.import_file(
        db, _write(tmp_path / "new.csv", "text,label\nmy card,card_arrival\n"), task="support"
    )
    assert report.new == 0 and _corrections(db) == 1


@pytest.mark.parametrize("body", ["", "text,label\n", "\ufefftext,label\r\n"])
def test_an_empty_or_header_only_file_is_an_error_and_writes_nothing(
    db: sqlite_utils.Database, tmp_path: Path, body: str
) -> None:
    with pytest.raises(storage.ImportFormatError, match="no rows to import"):
        storage.transfer.import_file(db, _write(tmp_path / "empty.csv", body), task="support", actor="U_ADMIN")
    with pytest.raises(storage.ImportFormatError, match="no rows to import"):
        storage.transfer.import_file(db, _write(tmp_path / "empty.jsonl", "\n\n"), task="support", actor="U_ADMIN")
    assert storage.events.list_audit(db) == [] and _corrections(db) == 0


def test_the_audit_row_is_written_in_the_import_transaction(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _write(tmp_path / "two.csv", "text,label\nmy card,card_arrival\ntop me up,top_up\n")
    report = storage.transfer.import_file(db, path, task="support", actor="U_ADMIN")
    entry = storage.events.list_audit(db)[0]
    assert (entry.actor, entry.action) == ("U_ADMIN", "import")
    assert entry.detail == {"path": str(path), "task": "support", "rows": 2, "new": report.new}
    # One transaction: an audit that cannot be written takes the import's rows with it.
    other = _write(tmp_path / "three.csv", "text,label\nsomething else,top_up\n")
    with pytest.raises(storage.InvalidValueError):
        storage.transfer.import_file(db, other, task="support", actor="")
    assert _corrections(db) == 2


def test_import_labelled_returns_the_number_of_new_rows(db: sqlite_utils.Database, tmp_path: Path) -> None:
    path = _write(tmp_path / "two.csv", "text,label\nmy card,card_arrival\ntop me up,top_up\n")
    assert storage.transfer.import_labelled(db, path, task="support") == 2
    assert storage.transfer.import_labelled(db, path, task="support") == 0


def test_opening_a_missing_store_without_create_makes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "data" / "camel.db"
    with pytest.raises(storage.StorageError, match="no database at"):
        storage.open_store(target, create=False)
    assert not target.parent.exists()
