"""One set of bad CSV files (tests/fixtures/bad_csv, with the problem each must be refused for)
against both readers: camel's, behind `train` and `eval`, and storage's, behind `import`. They stay
in their packages (which never import each other) but refuse the same rows with the same words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import storage
from bot.cli import main
from camel.data import read_labelled_csv
from camel.errors import DataFileError
from tests.storage.conftest import add_task

BAD_CSV = Path(__file__).parent / "fixtures" / "bad_csv"
EXPECTED: dict[str, str] = json.loads((BAD_CSV / "expected.json").read_text())


def test_the_fixture_lists_every_file() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in BAD_CSV.glob("*.csv"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_train_and_eval_refuse_the_row_by_its_line(name: str) -> None:
    path = BAD_CSV / name
    with pytest.raises(DataFileError) as caught:
        read_labelled_csv(str(path))
    assert str(caught.value).startswith(f"{path}: {EXPECTED[name]}"), caught.value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_import_refuses_the_same_row_in_the_same_words(name: str) -> None:
    db = storage.open_store(":memory:")
    add_task(db)
    try:
        with pytest.raises(storage.ImportFormatError) as caught:
            storage.transfer.import_labelled(db, BAD_CSV / name, task="support")
        assert f"nothing imported: {EXPECTED[name]}" in str(caught.value), caught.value
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    finally:
        db.close()


def test_train_on_a_row_with_an_extra_cell_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    path = BAD_CSV / "more_cells_than_header.csv"
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "adapter")]) == 2
    err = capsys.readouterr().err
    assert err == f"camel-bot train: error: {path}: line 3: more fields than the header\n", err
    assert not (tmp_path / "adapter").exists()
