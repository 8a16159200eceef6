"""Fixtures for the storage tests: an in-memory store and a file store, each with one task."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils

import storage

LABELS = ["card_arrival", "lost_or_stolen_card", "top_up"]


def add_task(db: sqlite_utils.Database) -> None:
    storage.tasks.upsert_task(
        db,
        storage.TaskSpec(
            "support",
            kind="intent",
            labels=LABELS,
            channels=["C1"],
            emoji_map={"card": "card_arrival", "white_check_mark": "__confirm__", "x": "__reject__"},
        ),
    )


@pytest.fixture
def db() -> sqlite_utils.Database:
    store = storage.open_store(":memory:")
    add_task(store)
    yield store
    store.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "camel.db"
    store = storage.open_store(path)
    add_task(store)
    store.close()
    return path


def message(db: sqlite_utils.Database, ts: str, text: str = "where is my card", user: str = "U0") -> int:
    return storage.messages.record_message(db, workspace="W1", channel="C1", ts=ts, text=text, user=user)


def prediction(db: sqlite_utils.Database, message_id: int) -> int:
    """A stored "top_up" prediction (confidence 0.9, no adapter) of the message; its id."""
    return storage.messages.record_prediction(
        db,
        storage.NewPrediction(
            message_id=message_id,
            task="support",
            adapter_version=None,
            label="top_up",
            confidence=0.9,
            top3=[("top_up", 0.9)],
            latency_ms=1.0,
        ),
    ).id
