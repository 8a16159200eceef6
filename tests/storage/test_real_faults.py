"""A database in a really read-only folder (root only; skipped elsewhere, see tests/faults.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import storage
from tests.faults import read_only_view
from tests.storage.conftest import message


def test_a_read_only_data_folder_gives_one_line_and_doctor_sees_it(db_path: Path, tmp_path: Path) -> None:
    with read_only_view(db_path.parent, tmp_path / "ro") as view:
        target = view / db_path.name
        assert storage.files.unwritable_paths([target, view / "adapters"]) != []
        with pytest.raises(storage.StorageError) as caught:
            db = storage.open_store(target)
            message(db, "ro", text="nowhere to go")
        assert "\n" not in str(caught.value)
