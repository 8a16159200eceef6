"""A separate process that writes to a store, for the concurrency and crash tests.

`python -m tests.storage.writer write DB NAME SECONDS`: one correction per call on shared
messages, reading labels now and then, until SECONDS pass; prints how many it wrote.
`python -m tests.storage.writer hang DB`: commits one message, then opens a transaction,
writes many rows, prints "in-transaction" and waits to be killed.
`python -m tests.storage.writer round DB FOLDER STEP`: plays a training round's ending (start
the run, publish the version folder, record the end in one transaction) and, at STEP, prints
STEP and waits to be killed.
"""

from __future__ import annotations

import sys
import time

import storage

SHARED_MESSAGES = 50


def write(path: str, name: str, seconds: float) -> None:
    db = storage.open_store(path)
    written = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        mid = storage.messages.record_message(
            db,
            workspace="W",
            channel="C1",
            ts=f"shared-{written % SHARED_MESSAGES}",
            text=f"message {written % SHARED_MESSAGES}",
        )
        storage.corrections.add_correction(db, message_id=mid, task="support", label="top_up", source="menu", user=name)
        written += 1
        if written % 25 == 0:
            storage.resolution.resolve_labels(db, "support")
    print(written, flush=True)


def hang(path: str) -> None:
    db = storage.open_store(path)
    storage.messages.record_message(db, workspace="W", channel="C1", ts="committed", text="before the kill")
    with storage.db.transaction(db) as conn:
        for i in range(20_000):
            conn.execute(
                "INSERT INTO messages (workspace, channel, ts, text, received_at) VALUES ('W', 'C1', ?, ?, 'x')",
                (f"partial-{i}", "x" * 200),
            )
        print("in-transaction", flush=True)
        time.sleep(600)


def _wait_for_kill(step: str, at: str) -> None:
    if step == at:
        print(step, flush=True)
        time.sleep(600)


def round_end(path: str, folder: str, step: str) -> None:
    from pathlib import Path

    db = storage.open_store(path)
    run_id = storage.runs.start_run(db, "support", "manual")
    _wait_for_kill(step, "started")
    version = storage.adapters.next_version(db, "support")
    version_dir = Path(folder) / f"v{version:04d}"
    version_dir.mkdir(parents=True)
    _wait_for_kill(step, "folder")
    with storage.db.transaction(db):
        storage.rounds.finish_round(
            db,
            run_id,
            storage.RoundEnd(
                outcome="promoted",
                version=version,
                path=str(version_dir),
                parent_version=None,
                metrics={"macro_f1": 0.9},
                reason="better",
                n_train=3,
            ),
        )
        _wait_for_kill(step, "in-transaction")
    _wait_for_kill(step, "committed")
    print("done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif sys.argv[1] == "round":
        round_end(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        hang(sys.argv[2])
