"""Reading labelled CSV files for the command line, with one-line errors for every bad file."""

from __future__ import annotations

import csv
import os

from camel.errors import DataFileError


def read_labelled_csv(
    path: str, text_col: str = "text", label_col: str = "label", min_labels: int = 2
) -> tuple[list[str], list[str]]:
    """(texts, labels) from a UTF-8 CSV with a header row; refuses empty cells, a row with more
    cells than the header and too few labels, naming the line where the bad row starts."""
    rows = _rows(path)
    if not rows:
        raise DataFileError(f"{path}: no header row (the file is empty)")
    (_first, header), body = rows[0], rows[1:]
    columns = [_column(path, header, name) for name in (text_col, label_col)]
    texts: list[str] = []
    labels: list[str] = []
    for line, row in body:
        if not any(cell.strip() for cell in row):
            continue  # blank lines at the end of hand-written files are harmless
        if len(row) > len(header):
            # An unquoted comma in a text ("my card, it has not arrived,card_arrival") would
            # otherwise shift a piece of the text into the label. Same words as storage's import.
            raise DataFileError(f"{path}: line {line}: more fields than the header")
        text, label = (row[i].strip() if i < len(row) else "" for i in columns)
        if not text:
            raise DataFileError(f"{path}: line {line}: empty text in column {text_col!r}")
        if not label:
            raise DataFileError(f"{path}: line {line}: empty label in column {label_col!r}")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DataFileError(f"{path}: no labelled rows")
    distinct = sorted(set(labels))
    if len(distinct) < min_labels:
        raise DataFileError(
            f"{path}: needs at least {min_labels} different labels, found {len(distinct)} ({', '.join(distinct)})"
        )
    return texts, labels


def _rows(path: str) -> list[tuple[int, list[str]]]:
    """(line where the row starts, cells): a quoted cell may span lines, so rows are not lines."""
    if not os.path.isfile(path):
        raise DataFileError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            rows: list[tuple[int, list[str]]] = []
            start = 1
            for row in reader:
                rows.append((start, row))
                start = reader.line_num + 1
            return rows
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: not valid UTF-8 (byte {exc.start}: {exc.reason})") from exc
    except csv.Error as exc:
        raise DataFileError(f"{path}: malformed CSV: {exc}") from exc
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read: {exc.strerror}") from exc


def _column(path: str, header: list[str], name: str) -> int:
    names = [cell.strip() for cell in header]
    if name not in names:
        raise DataFileError(f"{path}: no column {name!r} (columns: {', '.join(names)})")
    return names.index(name)
