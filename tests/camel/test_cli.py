"""`camel-bot train | eval | predict` through bot.cli.main, bad CSVs, and one real subprocess."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.camel.helpers import dataset

ROOT = Path(__file__).resolve().parents[2]


def _write_csv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, labels = dataset()
    return _write_csv(
        tmp_path_factory.mktemp("cli") / "train.csv", [[text, label] for text, label in zip(texts, labels)]
    )


@pytest.fixture(scope="module")
def adapter_dir(labelled_csv: Path, tiny_bert_dir: Path) -> Path:
    out = labelled_csv.parent / "adapter"
    status = main(
        [
            "train",
            "--data",
            str(labelled_csv),
            "--out",
            str(out),
            "--base-model",
            str(tiny_bert_dir),
            "--trainable-layers",
            "1",
            "--seed",
            "3",
            "--threads",
            "1",
            "--epochs",
            "3",
        ]
    )
    assert status == 0
    return out


def test_train_writes_an_adapter_and_shows_progress(adapter_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (adapter_dir / "adapter.safetensors").is_file()
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["config"]["trainable_layers"] == 1


def test_progress_bar_goes_to_stderr(
    labelled_csv: Path, tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "train",
            "--data",
            str(labelled_csv),
            "--out",
            str(tmp_path / "a"),
            "--base-model",
            str(tiny_bert_dir),
            "--epochs",
            "1",
            "--threads",
            "1",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0 and "training" in captured.err and "step" in captured.err
    assert captured.out.startswith(f"wrote {tmp_path / 'a'}: 4 labels, 24 examples")


def test_train_from_an_adapter_extends_its_labels(adapter_dir: Path, tmp_path: Path) -> None:
    data = _write_csv(tmp_path / "more.csv", [["exchange rate fee", "exchange_rate"], ["refund please", "refund"]])
    status = main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "v2"),
            "--from",
            str(adapter_dir),
            "--epochs",
            "1",
            "--no-progress",
        ]
    )
    assert status == 0
    labels = json.loads((tmp_path / "v2" / "labels.json").read_text())
    assert labels[-1] == "exchange_rate" and len(labels) == 5


def test_eval_prints_a_report_and_json(
    adapter_dir: Path, labelled_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--adapter", str(adapter_dir), "--data", str(labelled_csv)]) == 0
    assert capsys.readouterr().out.startswith("examples 24  accuracy ")
    assert main(["eval", "--adapter", str(adapter_dir), "--data", str(labelled_csv), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 24 and 0.0 <= metrics["accuracy"] <= 1.0


def test_predict_prints_one_line_per_text(adapter_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--adapter", str(adapter_dir), "refund please", "card lost"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in {"card_arrival", "lost_card", "top_up", "refund"}
    assert main(["predict", "--adapter", str(adapter_dir), "--json", "hello"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "hello"


def test_train_from_an_adapter_refuses_a_different_k(
    adapter_dir: Path, labelled_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "train",
            "--data",
            str(labelled_csv),
            "--out",
            str(tmp_path / "v2"),
            "--from",
            str(adapter_dir),
            "--trainable-layers",
            "2",
            "--no-progress",
        ]
    )
    assert status == 2
    assert (
        "cannot continue training with trainable_layers=2: the adapter was built with trainable_layers=1"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("nocol.csv", "words,label\nhi,a\nyo,b\n", "no column 'text' (columns: words, label)"),
        ("empty_text.csv", "text,label\nhi,a\n ,b\n", "line 3: empty text in column 'text'"),
        ("one_label.csv", "text,label\nhi,a\nyo,a\n", "needs at least 2 different labels, found 1 (a)"),
        ("latin1.csv", b"text,label\ncaf\xe9,a\nyo,b\n", "not valid UTF-8"),
        ("empty.csv", "", "no header row"),
    ],
)
def test_bad_csv_is_one_line_on_stderr_and_exit_2(
    name: str, content: str | bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    status = main(["train", "--data", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("camel-bot train: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_missing_file_and_missing_adapter_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--adapter", str(tmp_path), "--data", str(tmp_path / "none.csv")]) == 2
    assert "none.csv: file not found" in capsys.readouterr().err
    assert main(["predict", "--adapter", str(tmp_path / "nope"), "hi"]) == 2
    assert "adapter folder not found" in capsys.readouterr().err


def test_real_subprocess_reports_bad_data_as_one_line_and_exit_2(adapter_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "one_label.csv"
    data.write_text("text,label\nrefund please,refund\n", encoding="utf-8")
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "eval",
            "--adapter",
            str(adapter_dir),
            "--data",
            str(data),
            "--label-col",
            "category",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"camel-bot eval: error: {data}: no column 'category' (columns: text, label)"
    ]
