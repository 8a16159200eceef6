"""One `camel-bot serve` per data folder: an exclusive flock on <data_dir>/serve.lock.

Two servers on one folder would both answer every event and both fire every scheduled job.
The kernel releases a flock when its holder dies, however it dies, so a stale lock file never
blocks a restart, and pid reuse or containers where every process is pid 1 do not matter: the
pid written into the file is only there to name the running server in the refusal.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from bot.errors import BotError

LOCK_NAME = "serve.lock"


class AlreadyServing(BotError):
    """Another serve holds the data folder's lock."""


def hold(data_dir: str) -> IO[str]:
    """Take the lock (keep the returned file open for as long as the server runs)."""
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise AlreadyServing(
            f"another camel-bot serve (pid {holder}) is running on data folder {folder}; stop it first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
