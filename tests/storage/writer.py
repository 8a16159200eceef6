"""A separate process that writes to a store, for the concurrency and crash tests.

`python -m tests.storage.writer write DB NAME SECONDS`: one correction per call on shared
messages, reading labels now and then, until SECONDS pass; prints how many it wrote.
`python -m tests.storage.writer hang DB`: commits one message, then opens a transaction,
writes many rows, prints "in-transaction" and waits to be killed.
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
        mid = storage.record_message(
            db,
            workspace="W",
            channel="C1",
            ts=f"shared-{written % SHARED_MESSAGES}",
            text=f"message {written % SHARED_MESSAGES}",
        )
        storage.add_correction(db, message_id=mid, task="support", label="top_up", source="menu", user=name)
        written += 1
        if written % 25 == 0:
            storage.resolve_labels(db, "support")
    print(written, flush=True)


def hang(path: str) -> None:
    db = storage.open_store(path)
    storage.record_message(db, workspace="W", channel="C1", ts="committed", text="before the kill")
    with storage.transaction(db) as conn:
        for i in range(20_000):
            conn.execute(
                "INSERT INTO messages (workspace, channel, ts, text, received_at) VALUES ('W', 'C1', ?, ?, 'x')",
                (f"partial-{i}", "x" * 200),
            )
        print("in-transaction", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        hang(sys.argv[2])
