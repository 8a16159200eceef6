"""Files 0600 and folders 0700 whatever the umask; a warning for a readable secrets file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import storage
from tests.storage.conftest import add_task, message


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_store_its_wal_and_shm_and_its_folder_are_private(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "camel-data" / "camel.db"
    db = storage.open_store(path)
    add_task(db)
    message(db, "1")
    assert _mode(path.parent) == 0o700
    for name in ("camel.db", "camel.db-wal", "camel.db-shm"):
        assert _mode(path.parent / name) == 0o600, name


def test_opening_an_existing_world_readable_store_makes_it_private(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "camel.db"
    storage.open_store(path).close()
    path.chmod(0o644)
    storage.open_store(path)
    assert _mode(path) == 0o600


def test_exports_are_private(db: object, tmp_path: Path, loose_umask: None) -> None:
    target = tmp_path / "out" / "labels.csv"
    storage.transfer.export_labelled(db, "support", target)
    storage.transfer.export_corrections(db, tmp_path / "trail.jsonl")
    assert _mode(target) == 0o600 and _mode(tmp_path / "trail.jsonl") == 0o600


def test_make_private_tightens_a_whole_data_folder(tmp_path: Path, loose_umask: None) -> None:
    root = tmp_path / "camel-data"
    (root / "runs").mkdir(parents=True)
    (root / "runs" / "run-000001.log").write_text("log")
    (root / "scheduler.db").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    assert len(storage.files.loose_permissions(root)) == 4
    changed = storage.files.make_private(root)
    assert sorted(Path(p).name for p in changed) == ["camel-data", "run-000001.log", "runs", "scheduler.db"]
    assert storage.files.loose_permissions(root) == []
    assert _mode(outside) == 0o755  # a symlink is not followed out of the folder


@pytest.mark.parametrize("mode,warns", [(0o600, False), (0o400, False), (0o640, True), (0o644, True), (0o604, True)])
def test_a_group_or_world_readable_secrets_file_is_warned_about(tmp_path: Path, mode: int, warns: bool) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('SLACK_BOT_TOKEN = "xoxb-not-shown"\n')
    secrets.chmod(mode)
    warning = storage.files.secrets_file_warning(secrets)
    assert (warning is not None) == warns
    if warning:
        assert f"{mode:04o}" in warning and "chmod 600" in warning and "xoxb" not in warning and "\n" not in warning


def test_unwritable_paths_names_what_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writable = tmp_path / "data" / "camel.db"  # missing: judged by tmp_path, which is writable
    blocked = tmp_path / "ro"
    blocked.mkdir()
    real_access = os.access
    # A read-only mount cannot be made without root and a bind mount; os.access is what reports it.
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == blocked else real_access(p, mode))
    assert storage.files.unwritable_paths([writable]) == []
    assert storage.files.unwritable_paths([blocked / "camel.db", blocked]) == [
        f"{blocked / 'camel.db'}: not writable (its folder {blocked})",
        f"{blocked}: not writable",
    ]
