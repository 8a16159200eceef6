"""Import and export of labelled data (CSV, JSONL) and of the correction audit trail.

CSV is UTF-8 with a `text,label,task` header and minimal quoting, so text with commas, quotes
and newlines survives and the file opens cleanly in a spreadsheet (a BOM added by one is
accepted on import). An import checks every row before writing any, then writes all of them
in one transaction. Imported rows become messages of workspace "import", channel = the file
name and ts = line number plus a hash of the text, so importing the same file twice adds
nothing new, and a changed row becomes a new message instead of silently keeping old text.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from storage.db import rows, transaction, utc_now
from storage.errors import ImportFormatError, UnknownTaskError
from storage.records import Task
from storage.resolution import resolve_labels
from storage.tasks import get_task, require_task

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
IMPORT_WORKSPACE = "import"
MAX_REPORTED_ROWS = 10
CORRECTION_FIELDS = ("id", "created_at", "withdrawn_at", "task", "message_id", "workspace", "channel",
                     "ts", "user", "is_admin", "source", "label")
Row = tuple[int, dict[str, Any]]  # (line number, fields)


def _format_of(path: Path, fmt: str | None) -> str:
    chosen = fmt or FORMATS.get(path.suffix.lower())
    if chosen not in ("csv", "jsonl"):
        raise ImportFormatError(f"{path}: unknown format {fmt or path.suffix!r}; use csv or jsonl")
    return chosen


def _read_csv(handle: Any) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    missing = {"text", "label"} - set(reader.fieldnames or [])
    if missing:
        raise ImportFormatError(f"line 1: the header must have columns text,label[,task]; missing {', '.join(sorted(missing))}")
    start = reader.line_num + 1
    for record in reader:
        if None in record:
            yield start, {"error": "more fields than the header"}
        else:
            yield start, record
        start = reader.line_num + 1


def _read_jsonl(handle: Any) -> Iterator[Row]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, {"error": f"invalid JSON ({exc.msg})"}
            continue
        yield number, record if isinstance(record, dict) else {"error": "not a JSON object"}


def _read_rows(path: Path, fmt: str) -> list[Row]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return list(_read_csv(handle) if fmt == "csv" else _read_jsonl(handle))
    except OSError as exc:
        raise ImportFormatError(f"cannot read {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFormatError(f"{path}: not a readable UTF-8 {fmt} file ({exc})") from exc


def _problem(record: dict[str, Any], task: str, tasks: dict[str, Task | None], db: sqlite_utils.Database) -> str | None:
    if "error" in record:
        return str(record["error"])
    text, label, row_task = record.get("text"), record.get("label"), record.get("task") or task
    if not isinstance(text, str) or not text.strip():
        return "empty text"
    if not isinstance(row_task, str):
        return f"unknown task {row_task!r}"
    known = tasks[row_task] if row_task in tasks else tasks.setdefault(row_task, get_task(db, row_task))
    if known is None:
        return f"unknown task {row_task!r}"
    if not isinstance(label, str) or label not in known.labels:
        return f"label {label!r} is not a label of task {row_task!r}"
    return None


def _validated_rows(db: sqlite_utils.Database, source: Path, task: str, fmt: str | None) -> list[Row]:
    """Every row of the file, or an ImportFormatError naming the bad rows by line number."""
    records = _read_rows(source, _format_of(source, fmt))
    tasks: dict[str, Task | None] = {}
    bad = [f"line {n}: {p}" for n, r in records if (p := _problem(r, task, tasks, db)) is not None]
    if bad:
        more = f"; and {len(bad) - MAX_REPORTED_ROWS} more" if len(bad) > MAX_REPORTED_ROWS else ""
        raise ImportFormatError(
            f"{source}: {len(bad)} bad rows, nothing imported: {'; '.join(bad[:MAX_REPORTED_ROWS])}{more}"
        )
    return records


def import_labelled(db: sqlite_utils.Database, path: str | Path, *, task: str, fmt: str | None = None,
                    user: str = "import") -> int:
    """Import every row of a labelled file or none of them; returns the number of rows imported."""
    source = Path(path)
    require_task(db, task)
    records = _validated_rows(db, source, task, fmt)
    now = utc_now()
    with transaction(db) as conn:
        for number, record in records:
            text = record["text"]
            ts = f"{number:07d}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"
            conn.execute(
                """INSERT INTO messages (workspace, channel, ts, user, text, received_at)
                   VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (workspace, channel, ts) DO NOTHING""",
                (IMPORT_WORKSPACE, source.name, ts, text, now),
            )
            message_id = conn.execute(
                "SELECT id FROM messages WHERE workspace = ? AND channel = ? AND ts = ?",
                (IMPORT_WORKSPACE, source.name, ts),
            ).fetchone()[0]
            conn.execute(
                """INSERT INTO corrections (message_id, task, label, source, user, is_admin, created_at)
                   VALUES (?, ?, ?, 'import', ?, 0, ?)""",
                (message_id, record.get("task") or task, record["label"], user, now),
            )
    return len(records)


def _write_atomically(path: Path, fmt: str, fields: tuple[str, ...], records: list[dict[str, Any]]) -> int:
    """Write to a temporary file and rename it, so a failed export never leaves half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            if fmt == "csv":
                writer = csv.DictWriter(handle, fieldnames=fields, quoting=csv.QUOTE_MINIMAL)
                writer.writeheader()
                writer.writerows(records)
            else:
                handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ImportFormatError(f"cannot write {path}: {exc.strerror}") from exc
    return len(records)


def export_labelled(db: sqlite_utils.Database, task: str, path: str | Path, *, fmt: str | None = None,
                    channel: str | None = None) -> int:
    """Write the task's resolved labels (one row per message); returns the number of rows.

    `channel` keeps only the messages posted in that channel: a task bound to several channels
    (private ones among them) must not hand one channel's text to the people of another.
    """
    target = Path(path)
    chosen = _format_of(target, fmt)
    if get_task(db, task) is None:
        raise UnknownTaskError(f"unknown task {task!r}")
    labelled = resolve_labels(db, task).labelled
    if channel is not None:
        inside = {int(r["id"]) for r in rows(db, "SELECT id FROM messages WHERE channel = ?", (channel,))}
        labelled = [m for m in labelled if m.message_id in inside]
    records = [{"text": m.text, "label": m.label, "task": task} for m in labelled]
    return _write_atomically(target, chosen, ("text", "label", "task"), records)


def export_corrections(db: sqlite_utils.Database, path: str | Path, *, fmt: str | None = None) -> int:
    """Write every correction ever made, withdrawn ones included, oldest first."""
    target = Path(path)
    chosen = _format_of(target, fmt)
    found = rows(
        db,
        """SELECT c.id, c.created_at, c.withdrawn_at, c.task, c.message_id, m.workspace, m.channel,
                  m.ts, c.user, c.is_admin, c.source, c.label
           FROM corrections AS c JOIN messages AS m ON m.id = c.message_id ORDER BY c.id""",
    )
    return _write_atomically(target, chosen, CORRECTION_FIELDS, [dict(r) for r in found])
