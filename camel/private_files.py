"""Owner-only, durable files and folders: adapters and cached hidden states derive from users' messages."""

from __future__ import annotations

import os

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_private_dirs(path: str) -> None:
    """Create missing folders as 0700 whatever the umask; `path` itself is made 0700 too."""
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, FOLDER_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, FOLDER_MODE)
    os.chmod(path, FOLDER_MODE)


def fsync_path(path: str) -> None:
    """Flush a file's or a folder's entries to disk (a folder after a rename in it)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
