"""The team's memory in the store: text keys, what a key's labelled messages say, and keys that
leave with their text (edit, deletion in Slack, purge, a user's erasure)."""

from __future__ import annotations

import sqlite_utils

import storage
from storage.db import rows


def _message(db: sqlite_utils.Database, ts: str, text: str, user: str = "U1") -> int:
    return storage.messages.record_message(db, workspace="T1", channel="C1", ts=ts, text=text, user=user)


def _label(
    db: sqlite_utils.Database, message_id: int, label: str | None, user: str = "U1", source: str = "menu"
) -> None:
    storage.corrections.add_correction(db, message_id=message_id, task="support", label=label, source=source, user=user)


def _keyed(db: sqlite_utils.Database, message_id: int, key: str) -> None:
    text = storage.messages.get_message(db, message_id).text
    assert storage.memory.set_text_keys(db, [(message_id, text, key)]) == 1


def _key_of(db: sqlite_utils.Database, message_id: int) -> str | None:
    return rows(db, "SELECT text_key FROM messages WHERE id = ?", (message_id,))[0][0]


def test_a_labelled_key_answers_and_withdrawal_counts_at_once(db: sqlite_utils.Database) -> None:
    first = _message(db, "1.1", "Where is my card?")
    assert storage.memory.unkeyed_labelled(db, "support") == []  # unlabelled: nothing to key
    _label(db, first, "card_arrival")
    assert storage.memory.unkeyed_labelled(db, "support") == [(first, "Where is my card?")]
    _keyed(db, first, "where is my card?")
    said = storage.memory.labels_by_key(db, "support", ["where is my card?", "other"])
    assert list(said) == ["where is my card?"]
    assert (said["where is my card?"].label, said["where is my card?"].disputed) == ("card_arrival", False)
    storage.corrections.withdraw_correction(db, message_id=first, task="support", user="U1", source="menu")
    assert storage.memory.labels_by_key(db, "support", ["where is my card?"]) == {}


def test_disputed_keys_have_no_label_and_the_latest_label_of_a_text_wins(db: sqlite_utils.Database) -> None:
    a, b = _message(db, "1.1", "top me up"), _message(db, "1.2", "top me up ")
    _label(db, a, "top_up")
    _keyed(db, a, "top me up")
    _keyed(db, b, "top me up")
    _label(db, b, "card_arrival", user="U2")  # a later message with the same text, labelled otherwise
    assert storage.memory.labels_by_key(db, "support", ["top me up"])["top me up"].label == "card_arrival"
    _label(db, b, None, user="U3", source="reject")  # someone rejects: the text is disputed
    said = storage.memory.labels_by_key(db, "support", ["top me up"])["top me up"]
    assert said.disputed and said.label is None


def test_a_key_leaves_with_its_text(db: sqlite_utils.Database) -> None:
    edited, deleted = _message(db, "1.1", "my card is lost"), _message(db, "1.2", "card lost again")
    for message_id, key in ((edited, "my card is lost"), (deleted, "card lost again")):
        _label(db, message_id, "lost_or_stolen_card")
        _keyed(db, message_id, key)
    storage.messages.update_message_text(db, workspace="T1", channel="C1", ts="1.1", text="never mind")
    assert _key_of(db, edited) is None  # the key described the old text
    storage.messages.forget_message(db, workspace="T1", channel="C1", ts="1.2", actor="slack")
    assert _key_of(db, deleted) is None
    assert storage.memory.labels_by_key(db, "support", ["my card is lost", "card lost again"]) == {}
    # A key computed from a text that changed meanwhile is not stored.
    assert storage.memory.set_text_keys(db, [(edited, "my card is lost", "my card is lost")]) == 0


def test_purge_and_user_erasure_take_the_keys(db: sqlite_utils.Database) -> None:
    unlabelled = _message(db, "1.1", "hello there", user="U7")
    _keyed(db, unlabelled, "hello there")
    storage.privacy.purge_unlabelled(db, older_than_days=0, actor="test")
    assert _key_of(db, unlabelled) is None
    mine = _message(db, "1.2", "top up failed", user="U8")
    _label(db, mine, "top_up", user="U8")
    _keyed(db, mine, "top up failed")
    storage.privacy.erase_user(db, "U8", actor="test")
    assert rows(db, "SELECT COUNT(*) FROM messages WHERE text_key = 'top up failed'")[0][0] == 0


def test_memory_answers_are_stored_as_such_and_left_out_of_live_accuracy(db: sqlite_utils.Database) -> None:
    by_model, by_memory = _message(db, "1.1", "card?"), _message(db, "1.2", "card!")
    for message_id, source, version in ((by_model, "adapter", 1), (by_memory, "memory", None)):
        stored = storage.messages.record_prediction(
            db,
            storage.NewPrediction(
                message_id=message_id,
                task="support",
                adapter_version=version,
                label="top_up",
                confidence=1.0,
                top3=[("top_up", 1.0)],
                latency_ms=1.0,
                source=source,
            ),
        )
        assert stored.source == source
        _label(db, message_id, "card_arrival")
    assert storage.messages.latest_prediction(db, by_memory, "support").source == "memory"
    live = storage.live.live_accuracy(db, "support", days=1)
    assert (live["n"], live["correct"]) == (1, 0)  # the model's one miss; the memory's answer is not judged
    assert storage.memory.answers_by_source(db, "support", since="2000-01-01") == {"adapter": 1, "memory": 1}
