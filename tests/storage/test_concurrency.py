"""Real processes sharing one database file: no lost rows, no "database is locked", crash safety."""

from __future__ import annotations

import signal
import threading
import subprocess
import sys
from pathlib import Path

import storage

ROOT = Path(__file__).resolve().parents[2]


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.writer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_writer_processes_and_a_reader_lose_nothing(db_path: Path) -> None:
    writers = {name: _spawn("write", str(db_path), name, "3") for name in ("U_A", "U_B")}
    db = storage.open_store(db_path)
    reads = 0
    while any(p.poll() is None for p in writers.values()):
        storage.resolution.resolve_labels(db, "support")
        reads += 1
    written = {}
    for name, process in writers.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "locked" not in err
        written[name] = int(out.strip())
    assert reads > 0 and all(count > 50 for count in written.values())
    per_user = dict(db.execute("SELECT user, COUNT(*) FROM corrections GROUP BY user").fetchall())
    assert per_user == written
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 50
    assert len(storage.resolution.resolve_labels(db, "support").labelled) == 50
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_writer_killed_mid_transaction_leaves_no_partial_rows(db_path: Path) -> None:
    process = _spawn("hang", str(db_path))
    try:
        assert process.stdout.readline().strip() == "in-transaction"
        # The uncommitted rows are already on disk in the WAL, so recovery really has work to do.
        assert db_path.with_name(db_path.name + "-wal").stat().st_size > 1_000_000
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    db = storage.open_store(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("SELECT COUNT(*) FROM messages WHERE ts LIKE 'partial-%'").fetchone()[0] == 0
    assert storage.messages.find_message(db, workspace="W", channel="C1", ts="committed").text == "before the kill"
    storage.messages.record_message(db, workspace="W", channel="C1", ts="after", text="the write lock is free again")
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2


def test_threads_sharing_one_connection_lose_nothing(db_path: Path) -> None:
    db = storage.open_store(db_path)
    mid = storage.messages.record_message(db, workspace="W", channel="C1", ts="1", text="shared")
    errors: list[BaseException] = []

    def correct(name: str) -> None:
        try:
            for _ in range(100):
                storage.corrections.add_correction(
                    db, message_id=mid, task="support", label="top_up", source="menu", user=name
                )
                storage.resolution.resolve_labels(db, "support")
        except BaseException as exc:  # collected so the main thread can fail the test with it
            errors.append(exc)

    threads = [threading.Thread(target=correct, args=(f"U{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert db.execute("SELECT COUNT(*) FROM corrections").fetchone()[0] == 400


def test_opening_the_store_again_in_one_process_keeps_the_first_connections_locks(db_path: Path) -> None:
    """open_store must never open() and close() the database file itself: closing any descriptor
    drops this process's POSIX locks, and then another process that closes its connection takes
    the file as unused, checkpoints and deletes the WAL that our connections still write to."""
    first = storage.open_store(db_path)
    storage.open_store(db_path)
    code = f"import storage; storage.open_store({str(db_path)!r}).close()"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
    storage.messages.record_message(first, workspace="W", channel="C1", ts="after", text="seen by others")
    code = (
        f"import storage; m = storage.messages.find_message(storage.open_store({str(db_path)!r}), workspace='W', "
        f"channel='C1', ts='after'); print(m.text if m else None)"
    )
    seen = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300, capture_output=True, text=True
    )
    assert seen.stdout.strip() == "seen by others"
