"""The label-resolution policy, the held-out split, new-label counts and live accuracy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import storage
from tests.storage.conftest import message


def correct(db, mid: int, label: str | None, user: str, source: str = "reaction", admin: bool = False) -> int:
    return storage.corrections.add_correction(
        db, message_id=mid, task="support", label=label, source=source, user=user, is_admin=admin
    )


def predict(db, mid: int, label: str) -> int:
    return storage.messages.record_prediction(
        db,
        storage.NewPrediction(
            message_id=mid,
            task="support",
            adapter_version=1,
            label=label,
            confidence=0.7,
            top3=[(label, 0.7)],
            latency_ms=5.0,
        ),
    ).id


def labels_of(db, **kwargs) -> dict[int, str]:
    return {m.message_id: m.label for m in storage.resolution.resolve_labels(db, "support", **kwargs).labelled}


def test_withdrawn_reaction_does_not_count(db) -> None:
    mid = message(db, "1")
    correct(db, mid, "top_up", "U1")
    assert (
        storage.corrections.withdraw_correction(
            db, message_id=mid, task="support", user="U1", source="reaction", label="top_up"
        )
        == 1
    )
    assert labels_of(db) == {}
    correct(db, mid, "card_arrival", "U1", source="menu")
    assert labels_of(db) == {mid: "card_arrival"}


def test_a_users_latest_correction_replaces_their_earlier_one(db) -> None:
    mid = message(db, "1")
    correct(db, mid, "top_up", "U1")
    correct(db, mid, "card_arrival", "U1", source="command")
    resolution = storage.resolution.resolve_labels(db, "support")
    assert labels_of(db) == {mid: "card_arrival"}
    assert resolution.disputed == []


def test_two_users_disagreeing_is_a_dispute_won_by_the_majority(db) -> None:
    mid = message(db, "1")
    correct(db, mid, "top_up", "U1")
    correct(db, mid, "card_arrival", "U2")
    correct(db, mid, "top_up", "U3")
    resolution = storage.resolution.resolve_labels(db, "support")
    assert labels_of(db) == {mid: "top_up"}
    [dispute] = resolution.disputed
    assert (dispute.message_id, dispute.label, dispute.votes) == (mid, "top_up", {"top_up": 2.0, "card_arrival": 1.0})


def test_a_tie_goes_to_the_most_recent_correction(db) -> None:
    mid = message(db, "1")
    correct(db, mid, "card_arrival", "U1")
    correct(db, mid, "top_up", "U2")
    assert labels_of(db) == {mid: "top_up"}
    correct(db, mid, "card_arrival", "U1", source="menu")  # U1 restates: their vote is now the newest
    assert labels_of(db) == {mid: "card_arrival"}
    assert storage.resolution.resolve_labels(db, "support").disputed[0].votes == {"card_arrival": 1.0, "top_up": 1.0}


def test_admin_weight_outvotes_users(db) -> None:
    mid = message(db, "1")
    correct(db, mid, "lost_or_stolen_card", "ADMIN", admin=True)
    correct(db, mid, "top_up", "U1")
    correct(db, mid, "top_up", "U2")
    assert labels_of(db, admin_weight=1.0) == {mid: "top_up"}
    assert labels_of(db, admin_weight=3.0) == {mid: "lost_or_stolen_card"}


def test_confirmation_counts_as_the_predicted_label(db) -> None:
    mid = message(db, "1")
    predict(db, mid, "card_arrival")
    correct(db, mid, None, "U1", source="confirm")
    assert labels_of(db) == {mid: "card_arrival"}
    predict(db, mid, "top_up")  # a later prediction does not change what U1 confirmed
    assert labels_of(db) == {mid: "card_arrival"}


def test_rejection_is_no_vote_but_a_dispute(db) -> None:
    mid, other = message(db, "1"), message(db, "2")
    predict(db, mid, "card_arrival")
    correct(db, mid, "card_arrival", "U1", source="reject")
    correct(db, other, "top_up", "U1")
    correct(db, other, None, "U2", source="reject")
    resolution = storage.resolution.resolve_labels(db, "support")
    assert labels_of(db) == {other: "top_up"}
    assert [(d.message_id, d.label, d.rejections) for d in resolution.disputed] == [
        (mid, None, 1),
        (other, "top_up", 1),
    ]


def test_split_is_deterministic_and_near_the_fraction() -> None:
    splits = [storage.resolution.split_for("W1", "C1", f"17000000{i:02d}.0001", 0.2) for i in range(100)]
    assert splits == [storage.resolution.split_for("W1", "C1", f"17000000{i:02d}.0001", 0.2) for i in range(100)]
    keys = [storage.resolution.split_for("W", "C", str(i)) for i in range(5000)]
    assert 0.17 < keys.count("heldout") / 5000 < 0.23
    assert storage.resolution.split_for("W", "C", "1", 0.0) == "train"


def test_split_of_a_message_does_not_change_as_data_grows(db) -> None:
    first = [message(db, str(i)) for i in range(50)]
    for mid in first:
        correct(db, mid, "top_up", "U1")
    before = {m.message_id: m.split for m in storage.resolution.resolve_labels(db, "support").labelled}
    for i in range(50, 120):
        correct(db, message(db, str(i)), "card_arrival", "U1")
    after = {m.message_id: m.split for m in storage.resolution.resolve_labels(db, "support").labelled}
    assert {mid: after[mid] for mid in first} == before
    assert set(before.values()) == {"train", "heldout"}


def test_new_labels_count_only_votes_after_the_run_started(db) -> None:
    old = message(db, "1")
    correct(db, old, "top_up", "U1")
    run_started = datetime.now(timezone.utc)
    for i in range(2, 5):
        correct(db, message(db, str(i)), "card_arrival", "U1")
    assert storage.resolution.count_new_labels_since(db, "support", None) == 4
    assert storage.resolution.count_new_labels_since(db, "support", run_started) == 3
    assert storage.resolution.count_new_labels_since(db, "support", run_started.isoformat()) == 3
    assert storage.resolution.count_new_labels_since(db, "support", run_started + timedelta(hours=1)) == 0


def test_live_accuracy_judges_the_prediction_people_saw(db) -> None:
    right, wrong, unlabelled = message(db, "1"), message(db, "2"), message(db, "3")
    predict(db, right, "top_up")
    predict(db, wrong, "top_up")
    predict(db, unlabelled, "top_up")
    correct(db, right, None, "U1", source="confirm")
    correct(db, wrong, "card_arrival", "U1", source="menu")
    result = storage.live.live_accuracy(db, "support", days=7)
    assert (result["n"], result["correct"], result["accuracy"]) == (2, 1, 0.5)
    assert result["per_label"]["top_up"] == {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    assert result["per_label"]["card_arrival"]["f1"] == 0.0


def _count_by_full_resolution(db, since: str | None) -> int:
    """What count_new_labels_since computed before it resolved only the messages voted on since."""
    labelled = storage.resolution.resolve_labels(db, "support").labelled
    return len(labelled) if since is None else sum(1 for m in labelled if m.resolved_at > since)


def test_new_label_counts_resolve_only_recent_votes_and_agree_with_a_full_resolution(db) -> None:
    import random

    rng = random.Random(7)
    mids = [message(db, str(i)) for i in range(25)]
    times: list[str] = []
    for n in range(150):
        mid, user = rng.choice(mids), rng.choice(["U1", "U2", "U3", "U4"])
        label = rng.choice([*storage.tasks.get_task(db, "support").labels, None])  # None: a rejection
        source = "reject" if label is None else rng.choice(["reaction", "menu", "command"])
        correct(db, mid, label, user, source=source, admin=rng.random() < 0.2)
        if label is not None and rng.random() < 0.1:
            storage.corrections.withdraw_correction(
                db, message_id=mid, task="support", user=user, source=source, label=label
            )
        times.append(db.execute("SELECT MAX(created_at) FROM corrections").fetchone()[0])
        if n == 90:  # a purged text and a retired label leave the counts as they leave training
            db.execute("UPDATE messages SET text = '' WHERE id = ?", (mids[3],))
            storage.labels.change(db, "support", "retire", "UADMIN", old_name="lost_or_stolen_card")
    for since in [None, *times[::10], times[-1]]:
        expected = _count_by_full_resolution(db, since)
        assert storage.resolution.count_new_labels_since(db, "support", since) == expected
        for threshold in (1, expected, expected + 1):
            assert storage.resolution.new_labels_reach(db, "support", since, threshold) == (expected >= threshold)


def test_below_the_threshold_the_trigger_check_resolves_nothing(db, monkeypatch) -> None:
    for i in range(5):
        correct(db, message(db, str(i)), "top_up", "U1")

    def resolving_everything(*args, **kwargs):  # the per-correction cost this check must not pay
        raise AssertionError("resolved every label to answer a count below the threshold")

    monkeypatch.setattr(storage.resolution, "resolve_labels", resolving_everything)
    monkeypatch.setattr(storage.resolution, "resolve_messages", resolving_everything)
    assert storage.resolution.new_labels_reach(db, "support", None, 25) is False
