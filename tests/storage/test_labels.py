"""Labels that change in Slack (storage.labels): previews, the history, what moves, what is refused."""

from __future__ import annotations

import json

import pytest
import sqlite_utils

import storage
from tests.storage.conftest import message, prediction


def _correct(db: sqlite_utils.Database, message_id: int, label: str, user: str = "U1") -> int:
    return storage.corrections.add_correction(
        db, message_id=message_id, task="support", label=label, source="menu", user=user
    )


def test_rename_moves_corrections_and_predictions_and_keeps_the_name_at_the_time(db: sqlite_utils.Database) -> None:
    first, second = message(db, "1.0"), message(db, "2.0")
    _correct(db, first, "card_arrival")
    _correct(db, second, "card_arrival", "U2")
    _correct(db, second, "top_up", "U3")
    prediction(db, first)  # a stored "top_up" prediction
    storage.tasks.set_description(db, "support", "top_up", "adding money")

    change = storage.labels.preview(db, "support", "rename", "top_up", "card_top_up")
    assert (change.messages, change.corrections) == (1, 1)
    event = storage.labels.apply(db, change, "UADMIN")

    task = storage.tasks.get_task(db, "support")
    assert task.labels == ["card_arrival", "lost_or_stolen_card", "card_top_up"]
    assert task.descriptions == {"card_top_up": "adding money"}
    assert event.kind == "rename" and (event.old_name, event.new_name, event.actor) == (
        "top_up",
        "card_top_up",
        "UADMIN",
    )
    stored = db.conn.execute("SELECT label, original_label FROM corrections WHERE user = 'U3'").fetchone()
    assert tuple(stored) == ("card_top_up", "top_up")
    assert storage.messages.latest_prediction(db, first, "support").label == "card_top_up"
    assert storage.labels.name_map(db, "support") == {"top_up": "card_top_up"}
    assert storage.labels.current_name(db, "support", "top_up") == "card_top_up"
    assert [e.action for e in storage.events.list_audit(db)][0] == "label_rename"


def test_merge_sums_top3_moves_emoji_and_a_used_name_is_never_reused(db: sqlite_utils.Database) -> None:
    first = message(db, "1.0")
    _correct(db, first, "lost_or_stolen_card")
    storage.tasks.upsert_task(
        db,
        storage.TaskSpec("support", kind="intent", labels=[], emoji_map={"lost": "lost_or_stolen_card"}),
    )
    storage.labels.change(db, "support", "merge", "U1", "lost_or_stolen_card", "card_arrival")
    task = storage.tasks.get_task(db, "support")
    assert task.labels == ["card_arrival", "top_up"] and task.emoji_map == {"lost": "card_arrival"}
    assert storage.resolution.resolve_labels(db, "support").labelled[0].label == "card_arrival"
    problem = storage.labels.name_problem(db, "support", "lost_or_stolen_card")
    assert problem is not None and "now means `card_arrival`" in problem and "cannot be reused" in problem
    # the settings file still lists the old name: it is followed, not added back
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["lost_or_stolen_card", "x1"]))
    assert storage.tasks.get_task(db, "support").labels == ["card_arrival", "top_up", "x1"]


def test_merged_top3_shares_add_up(db: sqlite_utils.Database) -> None:
    first = message(db, "1.0")
    prediction(db, first)
    with storage.db.transaction(db) as conn:
        conn.execute(
            "UPDATE predictions SET top3 = ?", (json.dumps([["top_up", 0.5], ["card_arrival", 0.3], ["x", 0.2]]),)
        )
    storage.tasks.add_labels(db, "support", ["x"])
    storage.labels.change(db, "support", "merge", "U1", "top_up", "card_arrival")
    assert storage.messages.latest_prediction(db, first, "support").top3 == [("card_arrival", 0.8), ("x", 0.2)]


def test_retire_leaves_training_and_comes_back_with_its_description_and_emoji(db: sqlite_utils.Database) -> None:
    for i, label in enumerate(["top_up", "top_up", "card_arrival"]):
        _correct(db, message(db, f"{i}.0"), label)
    storage.tasks.set_description(db, "support", "card_arrival", "where is my card")
    retire = storage.labels.preview(db, "support", "retire", "card_arrival")
    assert (retire.messages, retire.corrections) == (1, 1)
    storage.labels.apply(db, retire, "UADMIN")
    task = storage.tasks.get_task(db, "support")
    assert "card_arrival" not in task.labels and "card" not in task.emoji_map
    assert storage.labels.retired(db, "support") == ["card_arrival"]
    assert {m.label for m in storage.resolution.resolve_labels(db, "support").labelled} == {"top_up"}
    assert "bring it back" in (storage.labels.name_problem(db, "support", "card_arrival") or "")
    # a restart with the settings file naming it does not bring it back
    storage.tasks.upsert_task(db, storage.TaskSpec("support", kind="intent", labels=["card_arrival"]))
    assert "card_arrival" not in storage.tasks.get_task(db, "support").labels

    storage.labels.change(db, "support", "unretire", "UADMIN", "card_arrival")
    task = storage.tasks.get_task(db, "support")
    assert "card_arrival" in task.labels and task.emoji_map["card"] == "card_arrival"
    assert task.descriptions["card_arrival"] == "where is my card"
    assert [e.kind for e in storage.labels.history(db, "support")] == ["retire", "unretire"]


def test_refusals_say_why(db: sqlite_utils.Database) -> None:
    problems = {
        name: storage.labels.name_problem(db, "support", name)
        for name in ["card arrival", "a|b", "__confirm__", "x" * 65, "top_up", "", "__new_label__"]
    }
    assert "spaces" in problems["card arrival"] and "`|`" in problems["a|b"]
    assert "reserved" in problems["__confirm__"] and "at most 64" in problems["x" * 65]
    assert "already a label" in problems["top_up"] and "empty" in problems[""]
    assert "kept for the bot's own actions" in problems["__new_label__"]
    assert storage.labels.name_problem(db, "support", "crypto_withdrawal") is None
    storage.labels.change(db, "support", "retire", "U1", "top_up")
    with pytest.raises(storage.InvalidValueError, match="retired: bring it back before merging"):
        storage.labels.preview(db, "support", "merge", "card_arrival", "top_up")
    with pytest.raises(storage.InvalidValueError, match="at least 2 labels"):
        storage.labels.preview(db, "support", "retire", "card_arrival")
    with pytest.raises(storage.UnknownLabelError):
        storage.labels.preview(db, "support", "rename", "nope", "yes")


def test_a_stale_preview_is_refused_and_nothing_changes(db: sqlite_utils.Database) -> None:
    rename = storage.labels.preview(db, "support", "rename", "top_up", "card_top_up")
    retire = storage.labels.preview(db, "support", "retire", "top_up")
    storage.labels.apply(db, retire, "U1")
    with pytest.raises(storage.InvalidValueError, match="preview the change again"):
        storage.labels.apply(db, rename, "U2")
    assert [e.kind for e in storage.labels.history(db, "support")] == ["retire"]


def test_add_with_a_description_and_the_new_labels_policy(db: sqlite_utils.Database) -> None:
    assert storage.tasks.get_task(db, "support").new_labels == "propose"
    storage.labels.change(db, "support", "add", "U1", new_name="crypto_withdrawal", description="sending coins out")
    task = storage.tasks.get_task(db, "support")
    assert task.labels[-1] == "crypto_withdrawal" and task.descriptions["crypto_withdrawal"] == "sending coins out"
    assert storage.labels.set_policy(db, "support", "members").new_labels == "members"
    with pytest.raises(storage.InvalidValueError, match="admins, members, propose"):
        storage.labels.set_policy(db, "support", "everyone")


def test_first_decision_on_a_proposal_wins(db: sqlite_utils.Database) -> None:
    msg = message(db, "1.0")
    proposal = storage.labels.propose(db, "support", "crypto", "coins", "U7", msg)
    with pytest.raises(storage.InvalidValueError, match="already proposed"):
        storage.labels.propose(db, "support", "crypto", "coins", "U8", msg)
    storage.labels.set_proposal_messages(db, proposal.id, [("D1", "1.1"), ("D2", "2.2")])
    decided, first = storage.labels.decide(db, proposal.id, "UA", approve=True)
    assert first and decided.status == "approved" and decided.decided_by == "UA"
    again, second = storage.labels.decide(db, proposal.id, "UB", approve=False)
    assert not second and again.status == "approved" and again.decided_by == "UA"
    assert again.admin_messages == [("D1", "1.1"), ("D2", "2.2")]
    assert "crypto" in storage.tasks.get_task(db, "support").labels
    assert storage.labels.history(db, "support")[0].actor == "UA"


def test_an_import_naming_an_old_label_is_stored_under_todays_name(db: sqlite_utils.Database, tmp_path) -> None:
    storage.labels.change(db, "support", "rename", "U1", "top_up", "card_top_up")
    storage.labels.change(db, "support", "retire", "U1", "lost_or_stolen_card")
    good = tmp_path / "old.csv"
    good.write_text("text,label\nput money on my card,top_up\nwhere is it,card_arrival\n")
    report = storage.transfer.import_file(db, good, task="support", actor="U1")
    assert report.new == 2 and report.renamed == {"top_up": "card_top_up"}
    labels = {m.text: m.label for m in storage.resolution.resolve_labels(db, "support").labelled}
    assert labels["put money on my card"] == "card_top_up"
    retired = tmp_path / "retired.csv"
    retired.write_text("text,label\nmy card is gone,lost_or_stolen_card\n")
    with pytest.raises(storage.ImportFormatError, match="not a label"):
        storage.transfer.import_file(db, retired, task="support")
