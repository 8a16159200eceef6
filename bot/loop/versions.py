"""Where adapter versions live on disk, and the per-task lock that guards them.

Layout: `<data_dir>/adapters/<task>/v0001/`, `v0002/`, ... A round writes into a hidden temp
folder next to them and renames it into place, so a version folder either exists whole or not
at all. Anything hidden left behind in a task's folder is the debris of a killed round; it is
only removed while holding that task's lock, so a round still running elsewhere is never
robbed of its half-written folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import storage
from bot.errors import TaskBusyError
from bot.settings import DataPaths
from storage.files import make_private_dirs

VERSION_NAME = re.compile(r"^v(\d{4,})$")
TEMP_PREFIX = ".tmp-"


def adapters_root(data_dir: str | os.PathLike[str]) -> Path:
    return Path(DataPaths(str(data_dir)).adapters)


def version_name(version: int) -> str:
    return f"v{version:04d}"


def version_dir(data_dir: str | os.PathLike[str], task: str, version: int) -> Path:
    return adapters_root(data_dir) / task / version_name(version)


def temp_dir(data_dir: str | os.PathLike[str], task: str, version: int) -> Path:
    """A unique hidden folder beside the final one (same file system, so rename is atomic)."""
    name = f"{TEMP_PREFIX}{version_name(version)}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return adapters_root(data_dir) / task / name


def versions_on_disk(data_dir: str | os.PathLike[str], task: str) -> list[int]:
    folder = adapters_root(data_dir) / task
    if not folder.is_dir():
        return []
    found = (VERSION_NAME.match(entry.name) for entry in folder.iterdir() if entry.is_dir())
    return sorted(int(m.group(1)) for m in found if m)


# `.tmp-v0005-<pid>-<id>` and camel's own temp sibling of it while it writes (`..tmp-v0005-...`).
TEMP_NAME = re.compile(r"^\.+tmp-v(\d{4,})-")


def free_version(data_dir: str | os.PathLike[str], task: str, db_next: int) -> int:
    """The next version number not used by the database, by a folder a killed round left, nor by
    a temp folder being written now (a round's child and an interim refit publish side by side)."""
    on_disk = versions_on_disk(data_dir, task)
    folder = adapters_root(data_dir) / task
    writing = [m for m in (TEMP_NAME.match(e.name) for e in folder.iterdir()) if m] if folder.is_dir() else []
    return max([db_next] + [v + 1 for v in on_disk] + [int(m.group(1)) + 1 for m in writing])


def publish(temp: Path, final: Path) -> None:
    """Rename the finished temp folder to its version name and make the rename durable."""
    if final.exists():
        raise FileExistsError(f"adapter folder already exists: {final}")
    os.rename(temp, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def interim_of(record: storage.AdapterVersion | None) -> int | None:
    """The parent version an interim version refitted the head of (None: not an interim)."""
    info = (record.metrics or {}).get("interim") if record is not None else None
    return int(info["parent"]) if isinstance(info, dict) and "parent" in info else None


def blocks_version(record: storage.AdapterVersion) -> int:
    """The round's version whose top blocks (and so features) this version has: itself, or the
    one its chain of interims started from (`bot.loop.interim`)."""
    info = (record.metrics or {}).get("interim")
    if isinstance(info, dict) and "blocks_of" in info:
        return int(info["blocks_of"])
    return record.version


def remove_temp_folders(data_dir: str | os.PathLike[str], task: str) -> list[Path]:
    """Delete hidden leftovers in one task's folder; the caller holds the task's lock."""
    folder = adapters_root(data_dir) / task
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def lock_path(data_dir: str | os.PathLike[str], task: str) -> Path:
    return Path(DataPaths(str(data_dir)).locks) / f"{task}.lock"


@contextmanager
def task_lock(data_dir: str | os.PathLike[str], task: str) -> Iterator[None]:
    """Hold the task's training lock (an flock: released by the kernel if the holder dies)."""
    path = lock_path(data_dir, task)
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # owner-only like the rest of the data folder
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TaskBusyError(f"a training round for task {task!r} is already running") from None
        yield
    finally:
        os.close(fd)
