"""Owner-only files and folders: everything under the data folder holds users' messages or
something derived from them, so files are 0600 and folders 0700 whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def make_private_dirs(path: str | Path) -> Path:
    """Create `path` and its missing parents as 0700 (existing parents keep their mode)."""
    target = Path(path).absolute()
    missing = []
    current = target
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue
        folder.chmod(FOLDER_MODE)
    return target


def make_private_file(path: str | Path) -> None:
    """Create `path` empty as 0600 if missing, or set an existing one to 0600."""
    descriptor = os.open(str(path), os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)


def open_private(path: str | Path) -> int:
    """A descriptor of `path` for writing, created or truncated, 0600 whatever the umask."""
    descriptor = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def make_private(root: str | Path) -> list[str]:
    """Set every folder under `root` (itself included) to 0700 and every file to 0600, without
    following symlinks; returns the paths it changed. Run it on the data folder at start-up."""
    changed: list[str] = []
    top = Path(root)
    if not top.exists():
        return changed
    for path in [top, *top.rglob("*")]:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue  # removed meanwhile (a temp file, a compacted shard)
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = FOLDER_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
        if stat.S_IMODE(info.st_mode) != wanted:
            os.chmod(path, wanted)
            changed.append(str(path))
    return changed


def loose_permissions(root: str | Path) -> list[str]:
    """Paths under `root` that the group or others may access (for `doctor`), as "path (mode)"."""
    found: list[str] = []
    top = Path(root)
    if not top.exists():
        return found
    for path in [top, *top.rglob("*")]:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
            found.append(f"{path} ({stat.S_IMODE(info.st_mode):04o})")
    return found


def secrets_file_warning(path: str | Path) -> str | None:
    """A one-line warning (as ssh gives for a private key) if group or others can read or write
    the secrets file; None when only its owner can. Never reads the file."""
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    if not mode & 0o077:
        return None
    return (
        f"WARNING: secrets file {path} has permissions {mode:04o}: readable or writable by others; "
        f"run `chmod 600 {path}`"
    )


def unwritable_paths(paths: list[str | Path]) -> list[str]:
    """For `doctor`: each path (file or folder, existing or to be created) that cannot be written,
    as "path: reason". A missing path is judged by the nearest folder that exists. os.access
    also reports a read-only mount for root, which chmod-based checks would miss."""
    problems: list[str] = []
    for raw in paths:
        path = Path(raw).absolute()
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        mode = os.W_OK | (os.X_OK if existing.is_dir() else 0)
        if not os.access(existing, mode):
            where = "" if existing == path else f" (its folder {existing})"
            problems.append(f"{path}: not writable{where}")
    return problems
