"""Label descriptions (migration 4): stored with the task, one line, only for its labels; the config seed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

import storage


def test_descriptions_are_set_kept_and_removed(db: sqlite_utils.Database) -> None:
    task = storage.tasks.set_description(db, "support", "card_arrival", "  when   will my\ncard arrive ")
    assert task.descriptions == {"card_arrival": "when will my card arrive"}
    # an upsert that does not name descriptions keeps them, like emoji and channels
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["top_up"]))
    assert storage.tasks.get_task(db, "support").descriptions == {"card_arrival": "when will my card arrive"}
    storage.tasks.upsert_task(
        db, storage.TaskSpec("support", kind="intent", labels=[], descriptions={"top_up": "adding money"})
    )
    assert storage.tasks.get_task(db, "support").descriptions == {"top_up": "adding money"}
    assert storage.tasks.set_description(db, "support", "top_up", None).descriptions == {}


def test_bad_descriptions_are_refused_with_one_line(db: sqlite_utils.Database) -> None:
    with pytest.raises(storage.UnknownLabelError, match="not a label"):
        storage.tasks.set_description(db, "support", "refund", "money back")
    with pytest.raises(storage.InvalidValueError, match="empty"):
        storage.tasks.set_description(db, "support", "top_up", "   ")
    with pytest.raises(storage.InvalidValueError, match="at most 200"):
        storage.tasks.set_description(db, "support", "top_up", "x" * 201)
    with pytest.raises(storage.UnknownLabelError):
        storage.tasks.upsert_task(db, storage.TaskSpec("support", labels=[], descriptions={"nope": "x"}))
    assert storage.tasks.get_task(db, "support").descriptions == {}


def test_config_seed_round_trips(db: sqlite_utils.Database) -> None:
    assert storage.tasks.config_seed(db, "support") is None
    storage.tasks.set_config_seed(db, "support", {"kind": "intent", "descriptions": {"top_up": "x"}})
    assert storage.tasks.config_seed(db, "support") == {"kind": "intent", "descriptions": {"top_up": "x"}}
    with pytest.raises(storage.UnknownTaskError):
        storage.tasks.set_config_seed(db, "nope", {})


def test_a_version_6_database_gains_empty_descriptions(tmp_path: Path) -> None:
    path = tmp_path / "camel.db"
    old = storage.open_store(path)
    storage.tasks.upsert_task(old, storage.TaskSpec("support", kind="intent", labels=["a", "b"]))
    old.close()
    conn = sqlite3.connect(path)  # back to the schema before migration 7, as an older camel-bot left it
    conn.execute("ALTER TABLE tasks DROP COLUMN descriptions")
    conn.execute("ALTER TABLE tasks DROP COLUMN config_seed")
    # and without what migration 10 (labels that change in Slack) added
    for table in ("label_events", "retired_labels", "label_proposals"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE corrections DROP COLUMN original_label")
    conn.execute("ALTER TABLE tasks DROP COLUMN new_labels")
    conn.execute("PRAGMA user_version = 6")
    conn.commit()
    conn.close()
    db = storage.open_store(path)
    assert storage.db.schema_version(db) == storage.SCHEMA_VERSION  # 7 and every later migration
    task = storage.tasks.get_task(db, "support")
    assert task.labels == ["a", "b"] and task.descriptions == {} and storage.tasks.config_seed(db, "support") is None
    db.close()


def test_recent_texts_are_the_newest_of_the_given_channels(db: sqlite_utils.Database) -> None:
    for i, channel in enumerate(["C1", "C2", "C1", "C3", "C1"]):
        storage.messages.record_message(
            db, workspace="T1", channel=channel, ts=f"17000000{i:02d}.000100", text=f"m{i} {channel}"
        )
    assert storage.messages.recent_texts(db, ["C1", "C3"], limit=3) == ["m4 C1", "m3 C3", "m2 C1"]
    assert storage.messages.recent_texts(db, []) == [] and storage.messages.recent_texts(db, ["C9"]) == []
