"""Deleted and edited messages, lone surrogates, stopped workspaces and paused channels."""

from __future__ import annotations

import sqlite_utils

import storage


def _store() -> tuple[object, int]:
    db = storage.open_store(":memory:")
    storage.tasks.upsert_task(db, storage.TaskSpec("t", labels=["a", "b"], channels=["C1"]))
    message_id = storage.messages.record_message(db, workspace="T", channel="C1", ts="1.1", text="old words", user="U1")
    storage.corrections.add_correction(db, message_id=message_id, task="t", label="a", source="menu", user="U2")
    return db, message_id


def test_forget_message_blanks_text_deletes_corrections_keeps_a_tombstone_and_audits() -> None:
    db, message_id = _store()
    assert storage.messages.forget_message(db, workspace="T", channel="C1", ts="1.1", actor="slack") == {
        "message_id": message_id,
        "corrections": 1,
    }
    stored = storage.messages.get_message(db, message_id)
    assert stored is not None and stored.text == "" and stored.deleted_at is not None
    assert storage.resolution.resolve_labels(db, "t").labelled == []
    # A late redelivery of the original message does not bring its text back.
    assert storage.messages.record_message(db, workspace="T", channel="C1", ts="1.1", text="old words") == message_id
    assert storage.messages.get_message(db, message_id).text == ""
    entry = storage.events.list_audit(db)[0]
    assert entry.action == "message_deleted" and "old words" not in str(entry.detail)
    assert storage.messages.forget_message(db, workspace="T", channel="C1", ts="9.9", actor="slack") is None


def test_update_message_text_replaces_the_trainable_text() -> None:
    db, message_id = _store()
    updated = storage.messages.update_message_text(db, workspace="T", channel="C1", ts="1.1", text="new words")
    assert updated is not None and updated.text == "new words"
    assert [m.text for m in storage.resolution.resolve_labels(db, "t").labelled] == ["new words"]
    assert storage.messages.update_message_text(db, workspace="T", channel="C1", ts="9.9", text="x") is None


def test_lone_surrogates_are_stored_as_replacement_characters() -> None:
    db, _ = _store()
    message_id = storage.messages.record_message(
        db, workspace="T", channel="C1", ts="2.2", text="card \ud83d late \udc00"
    )
    assert storage.messages.get_message(db, message_id).text == "card \ufffd late \ufffd"
    assert storage.messages.storable_text("ok \U0001f600") == "ok \U0001f600"  # a real pair is kept


def test_workspace_stop_and_resume_are_audited_and_idempotent() -> None:
    db, _ = _store()
    assert storage.lifecycle.stop_workspace(db, "T", reason="app_uninstalled", actor="slack") is True
    assert storage.lifecycle.stop_workspace(db, "T", reason="tokens_revoked", actor="slack") is False
    assert storage.lifecycle.workspace_stop(db, "T").reason == "app_uninstalled"
    assert [s.workspace for s in storage.lifecycle.list_workspace_stops(db)] == ["T"]
    assert storage.lifecycle.resume_workspace(db, "T", actor="slack") is True
    assert storage.lifecycle.workspace_stop(db, "T") is None
    assert [e.action for e in storage.events.list_audit(db)][:2] == ["workspace_resumed", "workspace_stopped"]


def test_pausing_a_channel_keeps_its_binding() -> None:
    db, _ = _store()
    assert storage.lifecycle.pause_channel(db, "C9", reason="removed", actor="U1") is None  # not bound
    pause = storage.lifecycle.pause_channel(db, "C1", reason="archived", actor="U1")
    assert pause is not None and (pause.task, pause.reason) == ("t", "archived")
    assert storage.tasks.task_for_channel(db, "C1").name == "t"
    assert [p.channel for p in storage.lifecycle.list_channel_pauses(db)] == ["C1"]
    assert storage.lifecycle.resume_channel(db, "C1", actor="U1") is True
    assert (
        storage.lifecycle.channel_pause(db, "C1") is None
        and storage.lifecycle.resume_channel(db, "C1", actor="U1") is False
    )


def test_a_deleted_or_edited_text_goes_on_the_deletion_list_for_the_feature_cache(db: sqlite_utils.Database) -> None:
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["a", "b"]))
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="1.0", text="my secret card number")
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="2.0", text="typo tetx")
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="3.0", text="shared text")
    storage.messages.record_message(db, workspace="T1", channel="C2", ts="4.0", text="shared text")

    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="1.0", actor="slack")
    storage.messages.update_message_text(db, workspace="T1", channel="C1", ts="2.0", text="typo text")
    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="3.0", actor="slack")

    hashes, _ = storage.deletions.deleted_text_hashes(db)
    assert storage.transfer.text_sha256("my secret card number") in hashes
    assert storage.transfer.text_sha256("typo tetx") in hashes
    # another message still holds this text, so its cached states are not erased data
    assert storage.transfer.text_sha256("shared text") not in hashes


def test_a_deleted_or_edited_message_loses_its_review_score(db: sqlite_utils.Database) -> None:
    # The stored score and embedding describe the text; /camel review must not rank by the old one.
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["a", "b"], channels=["C1"]))
    deleted = storage.messages.record_message(db, workspace="T1", channel="C1", ts="1.0", text="to be deleted")
    edited = storage.messages.record_message(db, workspace="T1", channel="C1", ts="2.0", text="to be edited")
    storage.review.store_review_scores(
        db, "support", 1, [(m, 0.5, [("a", 0.5), ("b", 0.5)], b"\x00" * 8) for m in (deleted, edited)]
    )
    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="1.0", actor="slack")
    storage.messages.update_message_text(db, workspace="T1", channel="C1", ts="2.0", text="edited text")
    assert storage.review.count_review_scores(db, "support") == 0


def test_a_deletion_handled_before_its_message_leaves_a_tombstone(db: sqlite_utils.Database) -> None:
    # Inbox workers run concurrently: message_deleted may be handled before the message event.
    assert storage.messages.forget_message(db, workspace="T1", channel="C1", ts="9.0", actor="slack") is None
    stored = storage.messages.find_message(db, workspace="T1", channel="C1", ts="9.0")
    assert stored is not None and stored.deleted_at is not None and stored.text == ""
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="9.0", text="the secret it said")
    again = storage.messages.find_message(db, workspace="T1", channel="C1", ts="9.0")
    assert again is not None and again.text == "" and again.deleted_at is not None


def test_a_prefix_another_message_still_starts_with_stays_off_the_deletion_list(db: sqlite_utils.Database) -> None:
    # The cache holds states of each text and of its first N characters; only those no remaining
    # message has (as its text, or as its own first N characters) are erased data.
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["a", "b"]))
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="1.0", text="card lost yesterday")
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="2.0", text="card lost today")
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="3.0", text="card lost")
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="4.0", text="card")
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="5.0", text="card lost and found")

    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="1.0", actor="slack", prefix_lengths=[9, 4])
    hashes, _ = storage.deletions.deleted_text_hashes(db)
    assert set(hashes) == {storage.transfer.text_sha256("card lost yesterday")}  # "card lost", "card": still held

    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="5.0", actor="slack", prefix_lengths=[9, 4])
    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="2.0", actor="slack", prefix_lengths=[9, 4])
    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="3.0", actor="slack", prefix_lengths=[9, 4])
    hashes, _ = storage.deletions.deleted_text_hashes(db)
    # "card lost" went with the last message holding it; "card" is still message 4's whole text.
    assert set(hashes) == {
        storage.transfer.text_sha256(t)
        for t in ("card lost yesterday", "card lost and found", "card lost today", "card lost")
    }


def _waiting(db: sqlite_utils.Database, event_id: str, event: dict) -> None:
    import json

    body = json.dumps({"type": "event_callback", "event_id": event_id, "event": event}, ensure_ascii=True)
    storage.inbox.enqueue_event(db, event_id=event_id, kind="message", body=body, channel=event["channel"])


def test_an_edit_takes_the_old_text_out_of_the_waiting_events_and_keeps_the_new_one(
    db: sqlite_utils.Database,
) -> None:
    storage.messages.record_message(db, workspace="T1", channel="C1", ts="1.0", text="secret ünïcode words")
    _waiting(db, "EvMSG", {"type": "message", "channel": "C1", "ts": "1.0", "text": "secret ünïcode words"})
    edit = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "ts": "9.0",
        "message": {"type": "message", "text": "fixed", "ts": "1.0"},
        "previous_message": {"type": "message", "text": "secret ünïcode words", "ts": "1.0"},
    }
    _waiting(db, "EvEDIT", edit)
    _waiting(db, "EvOTHER", {"type": "message", "channel": "C1", "ts": "2.0", "text": "another message"})
    storage.messages.update_message_text(db, workspace="T1", channel="C1", ts="1.0", text="fixed")
    bodies = {r["event_id"]: r for r in storage.db.rows(db, "SELECT event_id, body, outcome FROM inbox")}
    assert bodies["EvMSG"]["body"] == "" and bodies["EvMSG"]["outcome"] == "erased"  # it would bring the text back
    import json

    assert json.loads(bodies["EvEDIT"]["body"])["event"]["message"]["text"] == "fixed"
    assert "previous_message" not in json.loads(bodies["EvEDIT"]["body"])["event"]
    assert "another message" in bodies["EvOTHER"]["body"] and bodies["EvOTHER"]["outcome"] is None


def test_a_deletion_finishes_every_waiting_event_about_the_message(db: sqlite_utils.Database) -> None:
    _waiting(db, "EvMSG", {"type": "message", "channel": "C1", "ts": "1.0", "text": "secret"})
    _waiting(db, "EvBAD", {"type": "message", "channel": "C1", "ts": "3.0", "text": "x"})
    with storage.db.transaction(db) as conn:  # a body that is not JSON is left to its worker
        conn.execute("UPDATE inbox SET body = 'not json' WHERE event_id = 'EvBAD'")
    assert storage.messages.forget_message(db, workspace="T1", channel="C1", ts="1.0", actor="slack") is None
    found = {r["event_id"]: (r["body"], r["outcome"]) for r in storage.db.rows(db, "SELECT * FROM inbox")}
    assert found == {"EvMSG": ("", "erased"), "EvBAD": ("not json", None)}
