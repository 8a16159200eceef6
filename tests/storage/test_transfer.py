"""Import/export round trips, bad rows, the correction trail, and the privacy functions."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import storage
from tests.storage.conftest import add_task, message

AWKWARD_TEXTS = [
    "plain text",
    "comma, inside",
    'a "quoted" word',
    "line one\nline two\r\nline three",
    "ünïcödé 卡片 💳 — ok",
    "  leading and trailing spaces  ",
    "=SUM(A1)",
]


def _seed(db) -> None:
    for i, text in enumerate(AWKWARD_TEXTS):
        mid = message(db, str(i), text=text)
        storage.corrections.add_correction(
            db, message_id=mid, task="support", label=["top_up", "card_arrival"][i % 2], source="menu", user="U1"
        )


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_then_import_round_trips_exactly(db, tmp_path: Path, suffix: str) -> None:
    _seed(db)
    first = tmp_path / f"first{suffix}"
    assert storage.transfer.export_labelled(db, "support", first) == len(AWKWARD_TEXTS)
    fresh = storage.open_store(":memory:")
    add_task(fresh)
    assert storage.transfer.import_labelled(fresh, first, task="support") == len(AWKWARD_TEXTS)
    second = tmp_path / f"second{suffix}"
    storage.transfer.export_labelled(fresh, "support", second)
    assert second.read_bytes() == first.read_bytes()
    imported = [(m.text, m.label) for m in storage.resolution.resolve_labels(fresh, "support").labelled]
    assert imported == [(m.text, m.label) for m in storage.resolution.resolve_labels(db, "support").labelled]


def test_csv_export_reads_back_with_the_csv_module(db, tmp_path: Path) -> None:
    _seed(db)
    path = tmp_path / "out.csv"
    storage.transfer.export_labelled(db, "support", path)
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8", newline="") as handle:
        assert [r["text"] for r in csv.DictReader(handle)] == AWKWARD_TEXTS


def test_importing_the_same_file_twice_adds_no_messages(db, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\nmy card,card_arrival\ntop me up,top_up\n", encoding="utf-8")
    storage.transfer.import_labelled(db, path, task="support")
    storage.transfer.import_labelled(db, path, task="support")
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2
    assert len(storage.resolution.resolve_labels(db, "support").labelled) == 2


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(db, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        'text,label\nfine,top_up\n"multi\nline",top_up\n,top_up\nok,no_such_label\nok,top_up,extra\n',
        encoding="utf-8",
    )
    with pytest.raises(storage.ImportFormatError) as caught:
        storage.transfer.import_labelled(db, path, task="support")
    message_text = str(caught.value)
    assert "3 bad rows, nothing imported" in message_text
    assert "line 5: empty text" in message_text
    assert "line 6: label 'no_such_label' is not a label" in message_text
    assert "line 7: more fields than the header" in message_text
    assert "\n" not in message_text
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_bad_jsonl_lines_are_reported(db, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"text": "a", "label": "top_up"}\n\nnot json\n[1]\n{"text": "b", "label": "top_up", "task": "x"}\n'
    )
    with pytest.raises(
        storage.ImportFormatError, match=r"line 3: invalid JSON.*line 4: not a JSON object.*line 5: unknown task 'x'"
    ):
        storage.transfer.import_labelled(db, path, task="support")
    assert db.execute("SELECT COUNT(*) FROM corrections").fetchone()[0] == 0


def test_unusable_files_give_one_line_errors(db, tmp_path: Path) -> None:
    with pytest.raises(storage.ImportFormatError, match="unknown format"):
        storage.transfer.import_labelled(db, tmp_path / "x.xlsx", task="support")
    with pytest.raises(storage.ImportFormatError, match="cannot read"):
        storage.transfer.import_labelled(db, tmp_path / "missing.csv", task="support")
    header = tmp_path / "header.csv"
    header.write_text("words,tag\nhi,top_up\n")
    with pytest.raises(storage.ImportFormatError, match="missing label, text"):
        storage.transfer.import_labelled(db, header, task="support")
    with pytest.raises(storage.UnknownTaskError):
        storage.transfer.import_labelled(db, header, task="nope")


def test_correction_trail_includes_withdrawn_rows(db, tmp_path: Path) -> None:
    mid = message(db, "1")
    storage.corrections.add_correction(db, message_id=mid, task="support", label="top_up", source="reaction", user="U1")
    storage.corrections.withdraw_correction(db, message_id=mid, task="support", user="U1", source="reaction")
    storage.corrections.add_correction(
        db, message_id=mid, task="support", label="card_arrival", source="menu", user="U1"
    )
    path = tmp_path / "trail.jsonl"
    assert storage.transfer.export_corrections(db, path) == 2
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["source"], r["label"], r["withdrawn_at"] is not None, r["ts"]) for r in rows] == [
        ("reaction", "top_up", True, "1"),
        ("menu", "card_arrival", False, "1"),
    ]
    assert storage.transfer.export_corrections(db, tmp_path / "trail.csv") == 2


def test_delete_user_data_removes_their_messages_and_corrections(db) -> None:
    theirs, other = message(db, "1", user="U_GONE"), message(db, "2", user="U_STAY")
    storage.corrections.add_correction(
        db, message_id=theirs, task="support", label="top_up", source="menu", user="U_STAY"
    )
    storage.corrections.add_correction(
        db, message_id=other, task="support", label="top_up", source="menu", user="U_GONE"
    )
    storage.corrections.add_correction(
        db, message_id=other, task="support", label="top_up", source="menu", user="U_STAY"
    )
    result = storage.privacy.delete_user_data(db, "U_GONE", actor="ADMIN")
    assert result == {"user": "U_GONE", "messages": 1, "predictions": 0, "corrections": 2, "inbox": 0}
    assert storage.messages.get_message(db, theirs) is None and storage.messages.get_message(db, other) is not None
    assert db.execute("SELECT user FROM corrections").fetchall() == [("U_STAY",)]
    assert storage.events.list_audit(db)[0].action == "delete_user_data"


def test_purge_blanks_only_old_unlabelled_text(db) -> None:
    old = datetime.now(timezone.utc) - timedelta(days=40)
    unlabelled = storage.messages.record_message(db, workspace="W", channel="C1", ts="1", text="old", received_at=old)
    labelled = storage.messages.record_message(db, workspace="W", channel="C1", ts="2", text="kept", received_at=old)
    recent = storage.messages.record_message(db, workspace="W", channel="C1", ts="3", text="new")
    storage.corrections.add_correction(
        db, message_id=labelled, task="support", label="top_up", source="menu", user="U1"
    )
    assert storage.privacy.purge_unlabelled_text(db, older_than_days=30, actor="ADMIN") == 1
    assert [storage.messages.get_message(db, m).text for m in (unlabelled, labelled, recent)] == ["", "kept", "new"]
    assert storage.events.list_audit(db)[0].detail == {"older_than_days": 30, "messages": 1, "inbox": 0}


def test_export_to_a_path_under_an_existing_file_is_one_line(db, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(storage.ImportFormatError, match="cannot write") as caught:
        storage.transfer.export_labelled(db, "support", blocker / "labels.csv")
    assert "\n" not in str(caught.value)
    with pytest.raises(storage.ImportFormatError, match="cannot write"):
        storage.transfer.export_corrections(db, blocker / "sub" / "trail.jsonl")
